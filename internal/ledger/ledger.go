// Package ledger is OpenCashier's double-entry ledger. Every movement of
// money is a transfer that debits one account and credits another by the
// same amount in one currency, so the balances of each currency always sum
// to zero. Entries are immutable; corrections are new transfers.
//
// Transfers carry a caller-chosen id: repeating a transfer with the same id
// and fields returns the original, with other fields it is a conflict, so
// every retry is safe. Several transfers posted together form a linked batch
// that succeeds or fails as a whole. Two-phase transfers hold money first
// (pending: the available balance drops at once) and are later posted in full
// or in part, voided, or expired.
//
// Balances are kept in four cached sums per account (debits and credits,
// posted and pending), written in the posting transaction; Verify
// recomputes them from the transfers. An account with a bound is locked
// (PostgreSQL row lock; on SQLite the transaction holds the database's write
// lock, BEGIN IMMEDIATE) and read when a transfer is booked on it, so that
// the bound is checked against a balance no one else can change. An
// unbounded account (a provider's clearing account, fee income: the shared
// accounts every deposit touches) is not locked at booking time: its
// currency is checked from an unlocked read (cached; an account never
// changes). The transaction's changes to the sums are written once, just
// before the commit (sqlstore.StageLedger), as relative updates that lock
// the unbounded accounts in account-id order. So every transaction takes
// those locks last, in one order, and holds them only for the commit; reads
// and bookings later in the transaction (AccountTx, PostTx) include what it
// has booked. See docs/ledger.md.
package ledger

import (
	"context"
	"embed"
	"io/fs"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the ledger's part of the database (versions 00001–00009).
var Schema = sqlstore.Schema{Name: "ledger", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Side is the side on which an account's balance normally grows.
type Side string

// The two sides. A customer's money held by the broker is a credit-normal
// (liability) account; money the broker holds at a provider is debit-normal.
const (
	CreditNormal Side = "credit"
	DebitNormal  Side = "debit"
)

// AccountSpec describes an account to create.
type AccountSpec struct {
	ID       string // caller-chosen, e.g. "customer:ctrader:8673590"
	Kind     string // what the account is for, e.g. "customer", "psp_clearing"
	Currency money.Currency
	Normal   Side
	// Lower and Upper bound the account's balance in minor units, seen from
	// its normal side. Nil means unbounded. A customer account has Lower 0.
	Lower, Upper *int64
	Metadata     string // free text or JSON
}

// Account is a ledger account with its balance.
type Account struct {
	AccountSpec
	CreatedAt time.Time
	sums
}

type sums struct {
	debitsPosted, creditsPosted, debitsPending, creditsPending int64
}

// Balance is an account's balance seen from its normal side.
type Balance struct {
	AccountID string
	// Posted is the settled balance.
	Posted money.Amount
	// PendingOut is money held by pending transfers leaving the account;
	// PendingIn is money on its way in.
	PendingOut, PendingIn money.Amount
	// Available is Posted less PendingOut: what may be spent now.
	Available money.Amount
}

func (a Account) sign() int64 {
	if a.Normal == DebitNormal {
		return -1
	}
	return 1
}

// Balance returns the account's balance.
func (a Account) Balance() Balance {
	posted, out, in := a.normalised()
	cur := a.Currency
	return Balance{
		AccountID:  a.ID,
		Posted:     money.New(posted, cur),
		PendingOut: money.New(out, cur),
		PendingIn:  money.New(in, cur),
		Available:  money.New(posted-out, cur),
	}
}

// normalised returns posted, pending-out and pending-in from the normal side.
func (a Account) normalised() (posted, out, in int64) {
	posted = a.sign() * (a.creditsPosted - a.debitsPosted)
	if a.Normal == DebitNormal {
		return posted, a.creditsPending, a.debitsPending
	}
	return posted, a.debitsPending, a.creditsPending
}

// Action says what a transfer does.
type Action string

// The transfer actions.
const (
	// Post moves money at once.
	Post Action = "post"
	// Hold reserves money (a pending transfer): the debit account's available
	// balance drops now; nothing is posted until PostPending.
	Hold Action = "pending"
	// PostPending settles a hold, in full or in part; the rest is released.
	PostPending Action = "post_pending"
	// VoidPending releases a hold.
	VoidPending Action = "void_pending"
	// ExpirePending is written by the ledger when a hold's expiry passes.
	ExpirePending Action = "expire_pending"
)

// Status is the state of a transfer.
type Status string

// The transfer statuses. A hold is pending until it is posted, voided or
// expired; every other transfer is final when written.
const (
	StatusPosted  Status = "posted"
	StatusPending Status = "pending"
	StatusVoided  Status = "voided"
	StatusExpired Status = "expired"
)

// Transfer is one movement between two accounts.
type Transfer struct {
	ID     string // caller-chosen, unique; at most 128 bytes
	Action Action // Post when empty
	// Debit and Credit name the accounts. For PostPending and VoidPending
	// they may be left empty and are taken from the hold.
	Debit, Credit string
	// Amount is positive. For PostPending it may be zero, meaning the full
	// hold, or less than the hold, releasing the rest. For VoidPending it is
	// ignored (zero).
	Amount    money.Amount
	Code      string    // why the money moved, e.g. "deposit.paid"
	Metadata  string    // free text or JSON for people and audits
	PendingID string    // the hold that PostPending or VoidPending settles
	ExpiresAt time.Time // optional, for Hold: when the ledger releases it

	// Set by the ledger.
	Status   Status
	PostedAt time.Time
}

// Ledger posts transfers and reads balances.
type Ledger struct {
	db       *sqlstore.DB
	clock    clock.Clock
	observer Observer
	infos    *infoCache // what never changes about accounts, by id
}

// Observer is told of the transfers a Post or PostTx call has just booked
// (not of replays of transfers booked before), inside the same transaction:
// the audit trail records every money movement this way. An error rolls the
// booking back.
type Observer func(ctx context.Context, tx *sqlstore.Tx, booked []Transfer) error

// Observe sets the ledger's observer (nil for none). Call it before the
// ledger is used; it is not safe to call concurrently with Post.
func (l *Ledger) Observe(o Observer) { l.observer = o }

// New returns a ledger over db. A nil clock means the system clock.
func New(db *sqlstore.DB, c clock.Clock) *Ledger {
	if c == nil {
		c = clock.System{}
	}
	return &Ledger{db: db, clock: c, infos: &infoCache{}}
}
