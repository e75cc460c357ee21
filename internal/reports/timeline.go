package reports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Source says where a timeline entry comes from.
type Source string

// The sources of timeline entries.
const (
	SourceSession  Source = "session"  // identity: the cashier screen the customer opened
	SourceProvider Source = "provider" // payments: an event or answer of the payment provider, kept verbatim
	SourcePayment  Source = "payment"  // payments: a status change of the payment
	SourceFunding  Source = "funding"  // funding: a status change of the deposit or withdrawal (approvals among them)
	SourcePush     Source = "push"     // push: a balance change sent to the trading platform
)

// Ranks order entries of the same instant, cause before effect: the
// screen; the transaction's and its payment's creation; the provider's
// answer; the payment's change; the platform's answer to a push; funding's
// change; the push that change starts.
const (
	rankSession = iota
	rankFundingCreated
	rankPaymentCreated
	rankProvider
	rankPayment
	rankPushAnswer
	rankFunding
	rankPushQueued
)

// ranked is an entry with its tie-breaking rank.
type ranked struct {
	Entry
	rank int
}

// Entry is one thing that happened to a deposit or withdrawal.
type Entry struct {
	At     time.Time // UTC
	Source Source
	// What is a short headline ("awaiting_approval → approved", "payment
	// pending → succeeded", "push sending → applied", "cashier screen
	// opened"); Detail says more (reason, provider event, push id).
	What, Detail string
	// Actor is who made the change when someone did: an operator
	// ("staff:…", "olga"), the system, or empty.
	Actor string
}

// Timeline is a deposit or withdrawal with everything that happened to
// it, oldest first.
type Timeline struct {
	Row       Row
	PaymentID string   // the payment at the provider ("" if none was made, e.g. a withdrawal rejected before payout)
	PushIDs   []string // the balance changes sent to the platform, oldest first
	Entries   []Entry
}

// Timeline returns the deposit or withdrawal id with one time-ordered list
// of its funding status changes (with actor and reason: approvals and
// rejections are among them), its payment's status changes and provider
// events, its pushes' events, and the cashier session that was open when
// it was created, if one can be linked (same user and account, created
// before it and still valid then). Entries of the same instant are ordered
// cause before effect: the screen, the creation of the transaction and of
// its payment, the provider's answer, the payment's change, the platform's
// answer to a push, funding's change, the push that change starts. Each
// source (and each push) keeps its own order.
//
// It returns errs.NotFound for an id that is not a known deposit or
// withdrawal.
func (s *Service) Timeline(ctx context.Context, id string) (Timeline, error) {
	const op = "reports.Timeline"
	if !validID(id) {
		return Timeline{}, errs.Ef(errs.NotFound, op, "no deposit or withdrawal %q", id)
	}
	rows, err := s.query(ctx, op, query{f: Filter{id: id}, kinds: kindsOf(id)}, 1)
	if err != nil {
		return Timeline{}, err
	}
	if len(rows) == 0 {
		return Timeline{}, errs.Ef(errs.NotFound, op, "no deposit or withdrawal %q", id)
	}
	tl := Timeline{Row: rows[0]}
	table, owner := "funding_deposits", funding.OwnerDeposit
	if tl.Row.Kind == KindWithdrawal {
		table, owner = "funding_withdrawals", funding.OwnerWithdrawal
	}
	if err := s.db.QueryRow(ctx, `SELECT payment_id FROM `+table+` WHERE id = ?`, id).Scan(&tl.PaymentID); err != nil {
		return Timeline{}, errs.Wrap(op, err)
	}
	var lists [][]ranked
	for _, part := range []func(context.Context, *Timeline, string) ([]ranked, error){
		s.sessionEntries, s.fundingEntries, s.paymentEntries, s.providerEntries,
	} {
		es, err := part(ctx, &tl, op)
		if err != nil {
			return Timeline{}, err
		}
		lists = append(lists, es)
	}
	pushes, err := s.pushEntries(ctx, &tl, owner, op)
	if err != nil {
		return Timeline{}, err
	}
	tl.Entries = merge(append(lists, pushes...))
	return tl, nil
}

// merge interleaves lists that are each in their own order (a source's
// sequence) into one: it takes the earliest head, and among heads of the
// same instant the one of lowest rank. Each list's order is kept even
// where its instants tie with another's.
func merge(lists [][]ranked) []Entry {
	var out []Entry
	for {
		best := -1
		for i, l := range lists {
			if len(l) == 0 {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			h, b := l[0], lists[best][0]
			if c := h.At.Compare(b.At); c < 0 || c == 0 && h.rank < b.rank {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, lists[best][0].Entry)
		lists[best] = lists[best][1:]
	}
}

func kindsOf(id string) []Kind {
	if strings.HasPrefix(id, "wd_") {
		return []Kind{KindWithdrawal}
	}
	return []Kind{KindDeposit}
}

// sessionEntries links the cashier session that was open for the user
// (and the transaction's account, or no account) when it was created.
func (s *Service) sessionEntries(ctx context.Context, tl *Timeline, op string) ([]ranked, error) {
	created := sqlstore.Micros(tl.Row.CreatedAt)
	var at, login int64
	var purpose string
	err := s.db.QueryRow(ctx, `SELECT created_at, purpose, COALESCE(account_login, 0) FROM identity_tokens
		WHERE user_id = ? AND kind = 'cashier' AND created_at <= ?
		AND (account_login = ? OR account_login IS NULL OR account_login = 0)
		AND (expires_at IS NULL OR expires_at >= ?) AND (revoked_at IS NULL OR revoked_at >= ?)
		ORDER BY created_at DESC LIMIT 1`, tl.Row.UserID, created, tl.Row.Login, created, created).Scan(&at, &purpose, &login)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	detail := "cashier session (" + purpose + ")"
	if login != 0 {
		detail += fmt.Sprintf(" for account %d", login)
	}
	return []ranked{{Entry{At: sqlstore.FromMicros(at), Source: SourceSession, What: "cashier screen opened", Detail: detail}, rankSession}}, nil
}

func (s *Service) fundingEntries(ctx context.Context, tl *Timeline, op string) ([]ranked, error) {
	rows, err := s.db.Query(ctx, `SELECT from_status, to_status, reason, actor, detail, at FROM funding_history
		WHERE owner_id = ? ORDER BY seq`, tl.Row.ID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []ranked
	for rows.Next() {
		var from, to, reason, actor, detail string
		var at int64
		if err := rows.Scan(&from, &to, &reason, &actor, &detail, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, ranked{Entry{At: sqlstore.FromMicros(at), Source: SourceFunding, What: transition(from, to),
			Detail: joinDetail(labelled("reason", reason), detail), Actor: actor}, pick(from == "", rankFundingCreated, rankFunding)})
	}
	return out, errs.Wrap(op, rows.Err())
}

func (s *Service) paymentEntries(ctx context.Context, tl *Timeline, op string) ([]ranked, error) {
	rows, err := s.db.Query(ctx, `SELECT from_status, to_status, reason, source, COALESCE(event_id, ''), actor, at
		FROM payment_status_history WHERE payment_id = ? ORDER BY seq`, tl.PaymentID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []ranked
	for rows.Next() {
		var from, to, reason, source, event, actor string
		var at int64
		if err := rows.Scan(&from, &to, &reason, &source, &event, &actor, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, ranked{Entry{At: sqlstore.FromMicros(at), Source: SourcePayment, What: "payment " + transition(from, to),
			Detail: joinDetail(labelled("reason", reason), labelled("by", source), labelled("event", event)), Actor: actor},
			pick(from == "", rankPaymentCreated, rankPayment)})
	}
	return out, errs.Wrap(op, rows.Err())
}

func (s *Service) providerEntries(ctx context.Context, tl *Timeline, op string) ([]ranked, error) {
	rows, err := s.db.Query(ctx, `SELECT id, provider, COALESCE(provider_event_id, ''), source, body, outcome, received_at
		FROM payment_events WHERE payment_id = ? ORDER BY received_at, id`, tl.PaymentID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []ranked
	for rows.Next() {
		var id, provider, providerEvent, source, outcome string
		var body []byte
		var at int64
		if err := rows.Scan(&id, &provider, &providerEvent, &source, &body, &outcome, &at); err != nil {
			return nil, errs.Wrap(op, err)
		}
		what := provider + " " + map[string]string{"webhook": "webhook", "poll": "status answer", "start": "answer at start"}[source]
		if strings.HasSuffix(what, " ") {
			what += source
		}
		out = append(out, ranked{Entry{At: sqlstore.FromMicros(at), Source: SourceProvider, What: what,
			Detail: joinDetail(labelled("event", providerEvent), summarizeBody(body), labelled("outcome", outcome), labelled("stored as", id))},
			rankProvider})
	}
	return out, errs.Wrap(op, rows.Err())
}

func (s *Service) pushEntries(ctx context.Context, tl *Timeline, owner, op string) ([][]ranked, error) {
	type push struct{ id, resolvedBy string }
	var pushes []push
	rows, err := s.db.Query(ctx, `SELECT id, resolved_by FROM pushes WHERE owner = ? AND owner_id = ? ORDER BY created_at, id`, owner, tl.Row.ID)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for rows.Next() {
		var p push
		if err := rows.Scan(&p.id, &p.resolvedBy); err != nil {
			_ = rows.Close()
			return nil, errs.Wrap(op, err)
		}
		pushes = append(pushes, p)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	var out [][]ranked
	for _, p := range pushes {
		var list []ranked
		tl.PushIDs = append(tl.PushIDs, p.id)
		events, err := s.pushEvents(ctx, op, p.id)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			actor := ""
			if strings.HasPrefix(e.to, "resolved_") {
				actor = p.resolvedBy
			}
			list = append(list, ranked{Entry{At: e.at, Source: SourcePush, What: "push " + transition(e.from, e.to),
				Detail: joinDetail(p.id, e.detail), Actor: actor}, pick(e.from == "", rankPushQueued, rankPushAnswer)})
		}
		out = append(out, list)
	}
	return out, nil
}

type pushEvent struct {
	at               time.Time
	from, to, detail string
}

// pushEvents returns a push's events in order. push_events has no
// sequence, so events of the same instant are chained: each follows the
// one whose new state it leaves.
func (s *Service) pushEvents(ctx context.Context, op, id string) ([]pushEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT at, from_state, to_state, detail FROM push_events WHERE push_id = ? ORDER BY at`, id)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var all []pushEvent
	for rows.Next() {
		var e pushEvent
		var at int64
		if err := rows.Scan(&at, &e.from, &e.to, &e.detail); err != nil {
			return nil, errs.Wrap(op, err)
		}
		e.at = sqlstore.FromMicros(at)
		all = append(all, e)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out := make([]pushEvent, 0, len(all))
	state := ""
	for len(all) > 0 {
		// Among the earliest remaining events, take the one that leaves the
		// current state (else the first).
		pick := 0
		for i := range all {
			if !all[i].at.Equal(all[0].at) {
				break
			}
			if all[i].from == state {
				pick = i
				break
			}
		}
		out = append(out, all[pick])
		state = all[pick].to
		all = slices.Delete(all, pick, pick+1)
	}
	return out, nil
}

func pick(cond bool, yes, no int) int {
	if cond {
		return yes
	}
	return no
}

// transition renders a status change: "created" for the first, "a → b"
// for a move, "b (unchanged)" for a change that kept the status (a flag
// set or cleared).
func transition(from, to string) string {
	switch from {
	case "":
		return to
	case to:
		return to + " (unchanged)"
	}
	return from + " → " + to
}

func labelled(label, value string) string {
	if value == "" {
		return ""
	}
	return label + " " + value
}

func joinDetail(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "; ")
}

// summarizeBody picks what an operator reads first out of a provider's
// JSON event: its type, status and decline code, at the top level or in a
// "data" or "object" member. Other bodies are not summarised (the whole
// body stays in payments' evidence).
func summarizeBody(body []byte) string {
	var top map[string]any
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	objects := []map[string]any{top}
	for _, key := range []string{"data", "object"} {
		if m, ok := top[key].(map[string]any); ok {
			objects = append(objects, m)
			if inner, ok := m["object"].(map[string]any); ok {
				objects = append(objects, inner)
			}
		}
	}
	var parts []string
	seen := map[string]bool{}
	for _, key := range []string{"type", "status", "declineCode", "decline_code"} {
		for _, o := range objects {
			v, ok := o[key].(string)
			if !ok || v == "" || seen[key] {
				continue
			}
			seen[key] = true
			if r := []rune(v); len(r) > 64 {
				v = string(r[:64]) + "…"
			}
			parts = append(parts, key+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}
