// Package push delivers balance changes to the trading platform exactly
// once.
//
// cTrader's changebalance has no idempotency key, and a timeout after
// sending can mean applied or not. So a push is a row with a state machine,
// created in the same database transaction that books the money, and
// delivered by a job:
//
//	queued ──▶ sending ──▶ applied                      (200 with a receipt)
//	                   ├─▶ rejected                     (a refusal that applied nothing and will not pass; or may pass, but no send is left)
//	                   ├─▶ queued                       (a refusal that applied nothing and may pass: sent again)
//	                   └─▶ in_doubt ──▶ resolved_applied      (look-up found it, or an operator)
//	                                ├─▶ queued                (look-up proved it absent: sent again)
//	                                └─▶ resolved_not_applied  (look-up proved it absent and no send is left, or an operator)
//
// sending is committed before the call, and the platform receives our push
// id as externalId. Only a definite answer settles a push; anything
// ambiguous — a timeout, a reset, a 5xx, a crash while sending — makes it
// in_doubt, and it is never sent again blindly. An in-doubt push is resolved
// by looking its id up on the platform where the connector can (only after
// the original request can no longer land), otherwise by an operator who sees
// the evidence. Every transition is recorded in push_events and counted.
//
// A push proved not applied — by a refusal that applied nothing and may
// pass later (a rate limit, a change that was never sent), or by a look-up
// that found nothing after an ambiguous answer — goes back to queued and is
// sent again with the same id, after a growing delay, while Options.MaxSends
// and Options.ResendWindow leave a send. Only then does it end: rejected
// after a refusal, resolved_not_applied after a look-up. A business refusal
// (not enough money, unknown account, bad amount) ends it at once. So every
// send begins only when no earlier send can still be applied, and the
// platform holds each change at most once.
//
// When a push settles (applied, rejected, resolved either way) the owner of
// the money is called inside the transaction that records it, so that it can
// complete its own state or compensate its ledger booking atomically.
package push

import (
	"embed"
	"io/fs"
	"time"

	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the push part of the database (versions 00100–00199).
var Schema = sqlstore.Schema{Name: "push", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// State is where a push is.
type State string

// The states of a push.
const (
	Queued             State = "queued"
	Sending            State = "sending"
	Applied            State = "applied"
	Rejected           State = "rejected"
	InDoubt            State = "in_doubt"
	ResolvedApplied    State = "resolved_applied"
	ResolvedNotApplied State = "resolved_not_applied"
)

// Final reports whether no further transition can happen.
func (s State) Final() bool {
	switch s {
	case Applied, Rejected, ResolvedApplied, ResolvedNotApplied:
		return true
	}
	return false
}

// WasApplied reports whether a final state means the platform holds the
// change.
func (s State) WasApplied() bool { return s == Applied || s == ResolvedApplied }

// Delayed reports whether a push that is not final has had a send that did
// not settle it: it is in doubt, waits to be sent again, or is being sent
// again.
func (p Push) Delayed() bool {
	switch p.State {
	case InDoubt:
		return true
	case Queued:
		return p.Sends > 0
	case Sending:
		return p.Sends > 1
	}
	return false
}

// States lists every state.
var States = []State{Queued, Sending, Applied, Rejected, InDoubt, ResolvedApplied, ResolvedNotApplied}

// Push is one balance change on its way to the platform.
type Push struct {
	ID      string // our id; sent as externalId
	Owner   string // who owns the money, e.g. "deposit"; selects the Owner hook
	OwnerID string // the owner's id, e.g. the deposit's id
	Change  platform.BalanceChange
	State   State
	// Sends counts the calls made to the platform: one, plus one per resend
	// after a refusal or a look-up that proved nothing was applied.
	Sends            int
	BalanceHistoryID int64
	// Evidence accumulates what is known about ambiguous outcomes, for the
	// operator who must decide an in-doubt push.
	Evidence    string
	SendingAt   time.Time // when the latest send began
	LookupAfter time.Time // an in-doubt push is looked up from then on
	// FirstSendingAt is when the first send began; Options.ResendWindow
	// counts from it.
	FirstSendingAt time.Time
	// SendAfter is when a push queued to be sent again may be sent; zero
	// for a push not sent yet.
	SendAfter  time.Time
	ResolvedBy string // "lookup" or the operator
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Event is one recorded transition.
type Event struct {
	At       time.Time
	From, To State
	Detail   string
}

// Request asks for a push.
type Request struct {
	ID      string // our id, unique; becomes externalId
	Owner   string
	OwnerID string
	Change  platform.BalanceChange // ExternalID is set to ID
}
