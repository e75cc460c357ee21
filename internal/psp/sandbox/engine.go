package sandbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Sandbox statuses, as its API and webhooks name them.
const (
	StatusRequiresAction = "requires_action" // waiting for the customer on a hosted page
	StatusAwaitingFunds  = "awaiting_funds"  // waiting for a bank transfer or a crypto transaction
	StatusProcessing     = "processing"      // being processed (delayed card, confirmations, payouts)
	StatusAuthorised     = "authorised"
	StatusSucceeded      = "succeeded"
	StatusDeclined       = "declined"
	StatusFailed         = "failed"
	StatusExpired        = "expired"
	StatusPaid           = "paid"     // payouts
	StatusRejected       = "rejected" // payouts
)

func finalStatus(s string) bool {
	switch s {
	case StatusSucceeded, StatusDeclined, StatusFailed, StatusExpired, StatusPaid, StatusRejected:
		return true
	}
	return false
}

// object is a sandbox payment or payout as stored.
type object struct {
	ID          string
	Object      string // payment or payout
	Reference   string // the merchant's id
	Method      psp.MethodKind
	Amount      money.Amount
	Received    money.Amount // zero (no currency) until money arrives
	Status      string
	DeclineCode string
	Message     string
	Scenario    string // card behaviour or payout outcome

	CardBrand   string
	CardLast4   string
	CardToken   string
	CardCountry string // issuing country, ISO 3166-1 alpha-2
	OTPAttempts int

	BankReference string
	CryptoAddress string
	Network       string
	Confirmations int
	RequiredConfs int

	Destination   psp.Destination
	ReturnURL     string
	Description   string
	CustomerEmail string
	RequestHash   string

	Seq       int64
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (o object) final() bool { return finalStatus(o.Status) }

const objectColumns = `id, object, reference, method, currency, amount_minor, received_minor, status, decline_code, message, scenario,
	card_brand, card_last4, card_token, otp_attempts, bank_reference, crypto_address, network, confirmations, required_confirmations,
	destination, return_url, description, customer_email, request_hash, seq, expires_at, created_at, updated_at, card_country`

type rowScanner interface{ Scan(dest ...any) error }

func scanObject(row rowScanner) (object, error) {
	var (
		o                         object
		method, code, destination string
		amount                    int64
		received, expires         sql.NullInt64
		bankRef, cryptoAddr       sql.NullString
		created, updated          int64
	)
	if err := row.Scan(&o.ID, &o.Object, &o.Reference, &method, &code, &amount, &received, &o.Status, &o.DeclineCode, &o.Message, &o.Scenario,
		&o.CardBrand, &o.CardLast4, &o.CardToken, &o.OTPAttempts, &bankRef, &cryptoAddr, &o.Network, &o.Confirmations, &o.RequiredConfs,
		&destination, &o.ReturnURL, &o.Description, &o.CustomerEmail, &o.RequestHash, &o.Seq, &expires, &created, &updated, &o.CardCountry); err != nil {
		return object{}, err
	}
	cur, err := money.LookupCurrency(code)
	if err != nil {
		return object{}, err
	}
	o.Method = psp.MethodKind(method)
	o.Amount = money.New(amount, cur)
	if received.Valid {
		o.Received = money.New(received.Int64, cur)
	}
	o.BankReference, o.CryptoAddress = bankRef.String, cryptoAddr.String
	if destination != "" {
		if err := json.Unmarshal([]byte(destination), &o.Destination); err != nil {
			return object{}, err
		}
	}
	o.ExpiresAt = sqlstore.FromNullMicros(expires)
	o.CreatedAt, o.UpdatedAt = sqlstore.FromMicros(created), sqlstore.FromMicros(updated)
	return o, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (o object) args() []any {
	var received any
	if o.Received.Currency().Code != "" {
		received = o.Received.Minor()
	}
	dest := ""
	if o.Destination != (psp.Destination{}) {
		b, _ := json.Marshal(o.Destination)
		dest = string(b)
	}
	return []any{o.Object, o.Reference, string(o.Method), o.Amount.Currency().Code, o.Amount.Minor(), received, o.Status, o.DeclineCode, o.Message, o.Scenario,
		o.CardBrand, o.CardLast4, o.CardToken, o.OTPAttempts, nullString(o.BankReference), nullString(o.CryptoAddress), o.Network, o.Confirmations, o.RequiredConfs,
		dest, o.ReturnURL, o.Description, o.CustomerEmail, o.RequestHash, o.Seq, sqlstore.NullMicros(o.ExpiresAt), sqlstore.Micros(o.CreatedAt), sqlstore.Micros(o.UpdatedAt),
		o.CardCountry}
}

func (s *Server) load(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) *sql.Row
}, where string, args ...any) (object, error) {
	o, err := scanObject(q.QueryRow(ctx, `SELECT `+objectColumns+` FROM sandbox_payments WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return object{}, errs.E(errs.NotFound, "sandbox.load", "no such sandbox payment")
	}
	if err != nil {
		return object{}, errs.Wrap("sandbox.load", err)
	}
	return o, nil
}

// byID reads an object outside a transaction.
func (s *Server) byID(ctx context.Context, id string) (object, error) {
	return s.load(ctx, s.db, `id = ?`, id)
}

// change is one transaction's work on an object: its new state, the events
// to emit and the timers to set.
type change struct {
	obj    object
	now    time.Time
	events []object
	timers []timer
	cards  []savedCard
}

// savedCard is a card token minted by a successful card payment, for
// payouts to the same card later. It holds no card number.
type savedCard struct {
	Token, Brand, Last4, Payout string
}

type timer struct {
	action string
	at     time.Time
}

// to moves the object to status and records an event of the new state.
// Calling it with the current status records progress (a confirmation).
func (c *change) to(status string) {
	c.obj.Status = status
	c.obj.Seq++
	c.obj.UpdatedAt = c.now
	c.events = append(c.events, c.obj)
}

func (c *change) after(d time.Duration, action string) {
	c.timers = append(c.timers, timer{action: action, at: c.now.Add(d)})
}

// create inserts o, lets fn emit its first events and timers, and commits.
// With a reference that exists it returns the existing object and false.
func (s *Server) create(ctx context.Context, o object, fn func(c *change)) (object, bool, error) {
	const op = "sandbox.create"
	var (
		out     object
		created bool
	)
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		c := &change{obj: o, now: s.now()}
		c.obj.CreatedAt, c.obj.UpdatedAt = c.now, c.now
		fn(c)
		res, err := tx.Exec(ctx, `INSERT INTO sandbox_payments (id, `+objectColumns[len("id, "):]+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (object, reference) DO NOTHING`, append([]any{c.obj.ID}, c.obj.args()...)...)
		if err != nil {
			return errs.Wrap(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return errs.Wrap(op, err)
		} else if n == 0 {
			out, err = s.load(ctx, tx, `object = ? AND reference = ?`, o.Object, o.Reference)
			return err
		}
		created = true
		out = c.obj
		return s.emit(ctx, tx, c)
	})
	return out, created, err
}

// mutate runs fn on the object with the given id under a row lock, saves
// it, and emits its events and timers, all in one transaction. fn returns
// an error to change nothing.
func (s *Server) mutate(ctx context.Context, id string, fn func(c *change) error) (object, error) {
	const op = "sandbox.mutate"
	var out object
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		o, err := s.load(ctx, tx, `id = ?`+tx.ForUpdate(), id)
		if err != nil {
			return err
		}
		c := &change{obj: o, now: s.now()}
		if err := fn(c); err != nil {
			return err
		}
		c.obj.UpdatedAt = c.now
		args := append(c.obj.args(), c.obj.ID)
		if _, err := tx.Exec(ctx, `UPDATE sandbox_payments SET object = ?, reference = ?, method = ?, currency = ?, amount_minor = ?, received_minor = ?,
			status = ?, decline_code = ?, message = ?, scenario = ?, card_brand = ?, card_last4 = ?, card_token = ?, otp_attempts = ?,
			bank_reference = ?, crypto_address = ?, network = ?, confirmations = ?, required_confirmations = ?, destination = ?, return_url = ?,
			description = ?, customer_email = ?, request_hash = ?, seq = ?, expires_at = ?, created_at = ?, updated_at = ?, card_country = ? WHERE id = ?`, args...); err != nil {
			return errs.Wrap(op, err)
		}
		out = c.obj
		return s.emit(ctx, tx, c)
	})
	return out, err
}

// emit stores the change's events, enqueues their delivery according to
// the webhook settings, and enqueues its timers.
func (s *Server) emit(ctx context.Context, tx *sqlstore.Tx, c *change) error {
	const op = "sandbox.emit"
	for _, card := range c.cards {
		if _, err := tx.Exec(ctx, `INSERT INTO sandbox_cards (token, brand, last4, payout_outcome, created_at) VALUES (?, ?, ?, ?, ?)`,
			card.Token, card.Brand, card.Last4, card.Payout, sqlstore.Micros(c.now)); err != nil {
			return errs.Wrap(op, err)
		}
	}
	if len(c.events) == 0 && len(c.timers) == 0 {
		return nil
	}
	set, err := loadSettings(ctx, tx, s.opts)
	if err != nil {
		return err
	}
	// The events of one change due at the same time go out together, in
	// order, in one delivery.
	var (
		batches [][]outgoing
		due     []time.Time
	)
	for _, snap := range c.events {
		id, err := newID("evt_")
		if err != nil {
			return err
		}
		body, err := json.Marshal(envelope{ID: id, Type: snap.Object + "." + snap.Status, Created: c.now.Unix(), Data: s.wire(snap)})
		if err != nil {
			return errs.Wrap(op, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sandbox_events (id, payment_id, type, seq, body, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, snap.ID, snap.Object+"."+snap.Status, snap.Seq, body, sqlstore.Micros(c.now)); err != nil {
			return errs.Wrap(op, err)
		}
		if set.Drop {
			continue
		}
		var runAt time.Time
		if set.OutOfOrder && !snap.final() {
			runAt = c.now.Add(s.opts.OutOfOrderDelay)
		}
		if i := slices.IndexFunc(due, runAt.Equal); i >= 0 {
			batches[i] = append(batches[i], outgoing{ID: id, Body: body})
		} else {
			batches, due = append(batches, []outgoing{{ID: id, Body: body}}), append(due, runAt)
		}
	}
	copies := 1
	if set.Duplicate {
		copies = 2
	}
	for i, events := range batches {
		for n := range copies {
			if err := s.enqueueDelivery(ctx, tx, events, strconv.Itoa(n+1), due[i]); err != nil {
				return err
			}
		}
	}
	for _, t := range c.timers {
		if _, err := jobs.Enqueue(ctx, tx, jobs.NewJob{
			Kind: timerJobKind, Payload: timerPayload{ID: c.obj.ID, Action: t.action},
			DedupKey: c.obj.ID + ":" + t.action + ":" + strconv.FormatInt(c.obj.Seq, 10), RunAt: t.at, MaxAttempts: 20,
		}); err != nil {
			return errs.Wrap(op, err)
		}
	}
	if s.opts.Notify != nil {
		tx.AfterCommit(s.opts.Notify)
	}
	return nil
}

// now is the clock's time at the database's precision (microseconds).
func (s *Server) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func newID(prefix string) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", errs.Wrap("sandbox.newID", err)
	}
	return prefix + u.String(), nil
}

// randomCode returns n characters of Crockford's base32 alphabet, which
// has no I, L, O or U to misread.
func randomCode(n int) (string, error) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", errs.Wrap("sandbox.randomCode", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		return "", errs.Wrap("sandbox.randomHex", err)
	}
	return fmt.Sprintf("%x", b), nil
}

// Webhook settings, stored in sandbox_settings so the control page can
// change them while the cashier runs.
type settings struct {
	Duplicate  bool
	OutOfOrder bool
	Drop       bool
}

var settingNames = []string{"duplicate_webhooks", "out_of_order_webhooks", "drop_webhooks"}

func (st *settings) field(name string) *bool {
	switch name {
	case "duplicate_webhooks":
		return &st.Duplicate
	case "out_of_order_webhooks":
		return &st.OutOfOrder
	}
	return &st.Drop
}

func loadSettings(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (*sql.Rows, error)
}, opts Options) (settings, error) {
	st := settings{Duplicate: opts.DuplicateWebhooks, OutOfOrder: opts.OutOfOrderWebhooks, Drop: opts.DropWebhooks}
	rows, err := q.Query(ctx, `SELECT name, value FROM sandbox_settings`)
	if err != nil {
		return st, errs.Wrap("sandbox.settings", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return st, errs.Wrap("sandbox.settings", err)
		}
		*st.field(name) = value == "on"
	}
	return st, errs.Wrap("sandbox.settings", rows.Err())
}

func (s *Server) saveSettings(ctx context.Context, st settings) error {
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		for _, name := range settingNames {
			value := "off"
			if *st.field(name) {
				value = "on"
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sandbox_settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
				return errs.Wrap("sandbox.saveSettings", err)
			}
		}
		return nil
	})
}

// Timers: delayed outcomes, automatic bank arrivals and expiry.
const timerJobKind = "sandbox.timer"

const (
	timerExpire   = "expire"
	timerComplete = "complete"
	timerArrive   = "arrive"
)

type timerPayload struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

func (s *Server) timerJob(ctx context.Context, j jobs.Job) error {
	var p timerPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(err)
	}
	// Most timers find their payment finished (paid before it could
	// expire): a look without a lock settles those.
	o, err := s.byID(ctx, p.ID)
	if errs.Is(err, errs.NotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if o.final() {
		return nil
	}
	_, err = s.mutate(ctx, p.ID, func(c *change) error {
		switch p.Action {
		case timerExpire:
			return s.expire(c)
		case timerComplete:
			return s.complete(c)
		case timerArrive:
			return s.arrive(c, c.obj.Amount)
		}
		return errs.Ef(errs.Invalid, "sandbox.timer", "unknown timer action %q", p.Action)
	})
	// A timer that finds the payment already moved on has nothing to do.
	if errs.Is(err, errs.Conflict) {
		return nil
	}
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid) {
		return jobs.Permanent(err)
	}
	return err
}
