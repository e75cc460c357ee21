package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Change is a payment's move to a new status, as an Observer sees it.
type Change struct {
	Payment Payment // after the change
	From    Status
	Source  string // start, webhook, poll or operator
}

// Observer is told of every status change of a payment inside the
// database transaction that records it. The owner of the money (funding)
// implements it: when Change.Payment.Status is final it books the ledger
// in tx, so the booking commits if and only if the status does. An error
// rolls the change back; a webhook is then answered 500 and the provider
// delivers it again, and a poll is retried.
type Observer interface {
	PaymentChanged(ctx context.Context, tx *sqlstore.Tx, c Change) error
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, tx *sqlstore.Tx, c Change) error

// PaymentChanged calls f.
func (f ObserverFunc) PaymentChanged(ctx context.Context, tx *sqlstore.Tx, c Change) error {
	return f(ctx, tx, c)
}

// Options configures a Service. Providers and Methods are required.
type Options struct {
	Providers *psp.Registry
	Methods   *Catalog
	// Rates gives exchange rates; nil allows only payments in the
	// account's currency.
	Rates RateSource
	// SpreadBps is the FX spread in basis points (0..9999).
	SpreadBps int64
	// Observer is told of status changes; nil tells no one.
	Observer Observer
	Clock    clock.Clock  // default clock.System
	Logger   *slog.Logger // default slog.Default()
	// PollAfter is when a payment's status is first asked of its provider
	// after creation (default 5 minutes); each later poll waits twice as
	// long as the one before, up to PollMax (default 6 hours), for at most
	// MaxPolls polls (default 40, which covers about nine days).
	PollAfter time.Duration
	PollMax   time.Duration
	MaxPolls  int
	// Notify, if set, is called after a transaction that enqueued jobs
	// commits (pass the job runner's Notify).
	Notify func()
}

// Defaults of Options.
const (
	DefaultPollAfter = 5 * time.Minute
	DefaultPollMax   = 6 * time.Hour
	DefaultMaxPolls  = 40
)

// Service records payments, starts them at providers, and applies what
// providers report. It is safe for concurrent use.
type Service struct {
	db        *sqlstore.DB
	providers *psp.Registry
	catalog   *Catalog
	fx        Converter
	observer  Observer
	clock     clock.Clock
	log       *slog.Logger
	pollAfter time.Duration
	pollMax   time.Duration
	maxPolls  int
	notify    func()
	seen      *seen
	// decided, when set (by tests), runs after a change was decided on
	// the unlocked read and before it is written.
	decided func(ctx context.Context, paymentID string)
}

// NewService returns a service over db (migrated with Schema and
// jobs.Schema). It checks every configured method against its provider:
// the provider must be registered and support the method's kind and
// currencies in each direction the method offers. It returns an
// errs.Invalid error naming the first method that fails, or a missing
// option.
func NewService(db *sqlstore.DB, opts Options) (*Service, error) {
	const op = "payments.NewService"
	if opts.Providers == nil || opts.Methods == nil {
		return nil, errs.E(errs.Invalid, op, "Providers and Methods are required")
	}
	if opts.SpreadBps < 0 || opts.SpreadBps >= 10000 {
		return nil, errs.Ef(errs.Invalid, op, "FX spread of %d basis points must be between 0 and 9999", opts.SpreadBps)
	}
	if err := CheckMethods(opts.Methods, opts.Providers); err != nil {
		return nil, err
	}
	s := &Service{
		db: db, providers: opts.Providers, catalog: opts.Methods,
		fx:       Converter{Source: opts.Rates, SpreadBps: opts.SpreadBps},
		observer: opts.Observer, clock: opts.Clock, log: opts.Logger,
		pollAfter: opts.PollAfter, pollMax: opts.PollMax, maxPolls: opts.MaxPolls, notify: opts.Notify,
		seen: newSeen(),
	}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "payments")
	if s.pollAfter <= 0 {
		s.pollAfter = DefaultPollAfter
	}
	if s.pollMax <= 0 {
		s.pollMax = DefaultPollMax
	}
	if s.maxPolls <= 0 {
		s.maxPolls = DefaultMaxPolls
	}
	return s, nil
}

// CheckMethods checks every method of c against the providers in r. It
// returns an errs.Invalid error naming the first method whose provider is
// not registered or does not support its kind or one of its currencies.
func CheckMethods(c *Catalog, r *psp.Registry) error {
	const op = "payments.CheckMethods"
	for _, m := range c.Methods() {
		p, err := r.Get(m.Provider)
		if err != nil {
			return errs.Ef(errs.Invalid, op, "payment method %s: provider %q is not configured", m.ID, m.Provider)
		}
		caps := p.Capabilities()
		for _, d := range []Direction{Deposit, Withdrawal} {
			rules := m.Rules(d)
			if rules == nil {
				continue
			}
			for _, code := range rules.Currencies() {
				if !caps.Supports(m.Kind, code, d == Withdrawal) {
					return errs.Ef(errs.Invalid, op, "payment method %s: provider %s does not support %s %ss in %s", m.ID, m.Provider, m.Kind, d, code)
				}
			}
		}
	}
	return nil
}

// now is the clock's time at the precision the database keeps
// (microseconds), so a payment read back equals the one returned.
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// Methods returns the service's method catalog.
func (s *Service) Methods() *Catalog { return s.catalog }

// Price is a Quote with the account side: the amount in the account's
// currency and the conversion, if any.
type Price struct {
	Quote
	// Account is the credit of a deposit or the debit of a withdrawal, in
	// the account's currency.
	Account money.Amount
	// FX is nil when no conversion was needed.
	FX *Conversion
}

// PriceDeposit prices a deposit of amount (what the customer pays) with a
// method into an account in currency account: the Quote, then the net
// amount converted into the account's currency. It returns the errors of
// Catalog.Quote and Converter.Convert.
func (s *Service) PriceDeposit(ctx context.Context, methodID string, amount money.Amount, account money.Currency, lang string) (Price, error) {
	const op = "payments.Service.PriceDeposit"
	q, err := s.catalog.Quote(methodID, Deposit, amount, lang)
	if err != nil {
		return Price{}, errs.Wrap(op, err)
	}
	conv, err := s.fx.Convert(ctx, q.Net, account)
	if err != nil {
		return Price{}, errs.Wrap(op, err)
	}
	return Price{Quote: q, Account: conv.To, FX: conversionOrNil(conv)}, nil
}

// PriceWithdrawal prices a withdrawal of debit (taken from an account, in
// the account's currency) paid out in currency payout: the debit converted
// into the payout currency is the gross amount, which the limits and the
// fee apply to. It returns the errors of Converter.Convert and
// Catalog.Quote.
func (s *Service) PriceWithdrawal(ctx context.Context, methodID string, debit money.Amount, payout money.Currency, lang string) (Price, error) {
	const op = "payments.Service.PriceWithdrawal"
	if debit.Sign() <= 0 {
		return Price{}, errs.E(errs.Invalid, op, "amount must be greater than zero")
	}
	if _, err := s.catalog.Method(methodID); err != nil {
		return Price{}, errs.Wrap(op, err)
	}
	conv, err := s.fx.Convert(ctx, debit, payout)
	if err != nil {
		return Price{}, errs.Wrap(op, err)
	}
	q, err := s.catalog.Quote(methodID, Withdrawal, conv.To, lang)
	if err != nil {
		return Price{}, errs.Wrap(op, err)
	}
	return Price{Quote: q, Account: debit, FX: conversionOrNil(conv)}, nil
}

func conversionOrNil(c Conversion) *Conversion {
	if !c.Rate.IsSet() {
		return nil
	}
	return &c
}

// Customer identifies whom a payment is for.
type Customer struct {
	ID        string // our user id; required
	AccountID string // the trading account; required
	Email     string
	Name      string
	Country   string // ISO 3166-1 alpha-2
	KYCLevel  int
}

// DepositRequest asks for a deposit.
type DepositRequest struct {
	// ID is optional: our payment id chosen by the caller ("pay_" +
	// UUIDv7, see NewID). Creating with an ID that exists returns that
	// payment if the request is the same and an errs.Conflict error if not,
	// so a caller can retry safely.
	ID       string
	MethodID string
	// Amount is what the customer pays, in the payment currency.
	Amount          money.Amount
	AccountCurrency money.Currency
	Customer        Customer
	// ReturnURL is where hosted pages send the customer back to; it must
	// be an absolute http(s) URL when the method redirects.
	ReturnURL string
	Lang      string
}

// PayoutRequest asks for a withdrawal to be paid out.
type PayoutRequest struct {
	// ID is optional, with the rules of DepositRequest.ID.
	ID       string
	MethodID string
	// Debit is taken from the account, in the account's currency.
	Debit money.Amount
	// Currency is the payout currency.
	Currency    money.Currency
	Destination psp.Destination
	Customer    Customer
	Lang        string
}

// CreateDeposit records a deposit in status created, priced and checked
// against the method's eligibility and limits, and schedules its first
// status poll. Call Start to send it to the provider (or use Deposit for
// both).
//
// It returns an errs.Invalid error for a malformed request (missing
// customer or account, a malformed ID or return URL) and the errors of
// Catalog.Eligible and PriceDeposit; an errs.Conflict error when ID exists
// with other fields.
func (s *Service) CreateDeposit(ctx context.Context, req DepositRequest) (Payment, error) {
	const op = "payments.Service.CreateDeposit"
	m, err := s.checkCustomer(req.MethodID, Deposit, req.Amount.Currency(), req.Customer)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	if req.ReturnURL != "" || m.Kind == psp.Card || m.Kind == psp.EWallet {
		if err := checkReturnURL(req.ReturnURL); err != nil {
			return Payment{}, errs.Wrap(op, err)
		}
	}
	price, err := s.PriceDeposit(ctx, req.MethodID, req.Amount, req.AccountCurrency, req.Lang)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	p := s.newPayment(req.ID, Deposit, m, price, req.Customer, req.ReturnURL, req.Lang)
	hash := requestHash(Deposit, req.MethodID, req.Amount.String(), req.AccountCurrency.Code, req.Customer.ID, req.Customer.AccountID, req.ReturnURL)
	return s.create(ctx, p, hash)
}

// CreatePayout records a withdrawal's payout in status created, priced and
// checked like CreateDeposit, with the destination the provider will pay.
// It returns the errors of CreateDeposit, with PriceWithdrawal's, and an
// errs.Invalid error for a destination the method's kind cannot use.
func (s *Service) CreatePayout(ctx context.Context, req PayoutRequest) (Payment, error) {
	const op = "payments.Service.CreatePayout"
	m, err := s.checkCustomer(req.MethodID, Withdrawal, req.Currency, req.Customer)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	if err := checkDestination(m.Kind, req.Destination); err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	price, err := s.PriceWithdrawal(ctx, req.MethodID, req.Debit, req.Currency, req.Lang)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	p := s.newPayment(req.ID, Withdrawal, m, price, req.Customer, "", req.Lang)
	dest := req.Destination
	p.Destination = &dest
	destJSON, _ := json.Marshal(dest)
	hash := requestHash(Withdrawal, req.MethodID, req.Debit.String(), req.Currency.Code, req.Customer.ID, req.Customer.AccountID, string(destJSON))
	return s.create(ctx, p, hash)
}

func (s *Service) checkCustomer(methodID string, d Direction, cur money.Currency, c Customer) (Method, error) {
	const op = "payments.checkCustomer"
	if c.ID == "" || c.AccountID == "" {
		return Method{}, errs.E(errs.Invalid, op, "a payment needs a customer id and an account id")
	}
	if cur.Code == "" {
		return Method{}, errs.E(errs.Invalid, op, "currency is not set")
	}
	if err := s.catalog.Eligible(methodID, Filter{Direction: d, Currency: cur.Code, Country: c.Country, KYCLevel: c.KYCLevel}); err != nil {
		return Method{}, err
	}
	return s.catalog.Method(methodID)
}

func checkReturnURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errs.E(errs.Invalid, "payments.checkReturnURL", "return URL must be an absolute http or https URL")
	}
	return nil
}

// checkDestination checks that d has what a payout of kind needs. It
// returns an errs.Invalid error that names what is missing.
func checkDestination(kind psp.MethodKind, d psp.Destination) error {
	const op = "payments.checkDestination"
	switch kind {
	case psp.Card:
		if d.CardToken == "" {
			return errs.E(errs.Invalid, op, "a card payout needs the card token of an earlier card deposit")
		}
	case psp.BankTransfer:
		if !psp.ValidIBAN(d.IBAN) {
			return errs.E(errs.Invalid, op, "the IBAN is not valid")
		}
		if d.HolderName == "" {
			return errs.E(errs.Invalid, op, "a bank payout needs the account holder's name")
		}
	case psp.EWallet:
		if d.WalletID == "" {
			return errs.E(errs.Invalid, op, "an e-wallet payout needs the wallet id")
		}
	default:
		return errs.Ef(errs.Invalid, op, "payouts by %s are not supported", kind)
	}
	return nil
}

func requestHash(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, _ := json.Marshal(p)
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Service) newPayment(id string, d Direction, m Method, price Price, c Customer, returnURL, lang string) Payment {
	now := s.now()
	p := Payment{
		ID: id, Direction: d, MethodID: m.ID, Kind: m.Kind, Provider: m.Provider,
		CustomerID: c.ID, AccountID: c.AccountID, Country: c.Country,
		Gross: price.Gross, Fee: price.Fee, FeePaidBy: price.PaidBy, Net: price.Net, AccountAmount: price.Account,
		Status: Created, CustomerEmail: c.Email, CustomerName: c.Name, ReturnURL: returnURL, Lang: lang,
		CreatedAt: now, UpdatedAt: now,
	}
	if price.FX != nil {
		p.FX = &FXRecord{MidRate: price.FX.MidRate, Inverted: price.FX.Inverted, SpreadBps: price.FX.SpreadBps, Rate: price.FX.Rate}
	}
	return p
}

func (s *Service) create(ctx context.Context, p Payment, hash string) (Payment, error) {
	const op = "payments.Service.create"
	if p.ID == "" {
		id, err := NewID()
		if err != nil {
			return Payment{}, err
		}
		p.ID = id
	} else if !ValidID(p.ID) {
		return Payment{}, errs.Ef(errs.Invalid, op, "payment id %q must be %s followed by a UUID", p.ID, IDPrefix)
	}
	var out Payment
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		inserted, err := insertPayment(ctx, tx, p, hash)
		if err != nil {
			return err
		}
		if !inserted {
			var stored string
			if err := tx.QueryRow(ctx, `SELECT request_hash FROM payments WHERE id = ?`, p.ID).Scan(&stored); err != nil {
				return errs.Wrap(op, err)
			}
			if stored != hash {
				return errs.Ef(errs.Conflict, op, "payment %s exists with other details", p.ID)
			}
			out, err = s.getTx(ctx, tx, p.ID, false)
			return err
		}
		if err := insertHistory(ctx, tx, p.ID, StatusChange{From: "", To: Created, Source: SourceCreate, At: p.CreatedAt}); err != nil {
			return err
		}
		if err := s.schedulePoll(ctx, tx, p.ID, 1); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	s.seen.put(out)
	return out, nil
}

// Start sends a created payment to its provider with its id as the
// idempotency key and records the answer: pending with a redirect URL or
// instructions, or an immediate outcome. A payment already past created is
// returned as it is, so calling Start again is safe.
//
// A provider's refusal of the request (errs.Invalid or errs.Conflict from
// the adapter) is not an error: the payment comes back Failed with reason
// provider_refused. When the provider cannot be reached (errs.Unavailable)
// Start returns that error and the payment stays created; calling Start
// again, or the status poll, settles it. It returns an errs.NotFound error
// for an unknown id.
func (s *Service) Start(ctx context.Context, id string) (Payment, error) {
	const op = "payments.Service.Start"
	p, err := s.Get(ctx, id)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	return s.start(ctx, p)
}

// start is Start for a payment as just read or created.
func (s *Service) start(ctx context.Context, p Payment) (Payment, error) {
	const op = "payments.Service.Start"
	if p.Status != Created {
		return p, nil
	}
	prov, err := s.providers.Get(p.Provider)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	var snap snapshot
	customer := psp.Customer{ID: p.CustomerID, Email: p.CustomerEmail, Name: p.CustomerName, Country: p.Country}
	if p.Direction == Deposit {
		var res psp.Payment
		res, err = prov.StartPayment(ctx, psp.PaymentRequest{
			ID: p.ID, Method: p.Kind, Amount: p.ProviderAmount(), Customer: customer,
			ReturnURL: p.ReturnURL, Description: "Deposit " + p.ID, Lang: p.Lang,
		})
		snap = paymentSnapshot(res)
	} else {
		var res psp.Payout
		res, err = prov.StartPayout(ctx, psp.PayoutRequest{
			ID: p.ID, Method: p.Kind, Amount: p.ProviderAmount(), Destination: *p.Destination,
			Customer: customer, Description: "Withdrawal " + p.ID,
		})
		snap = payoutSnapshot(res)
	}
	switch errs.CodeOf(err) {
	case "":
	case errs.Invalid, errs.Conflict:
		s.log.WarnContext(ctx, "provider refused a payment", "payment", p.ID, "provider", p.Provider, "err", err)
		return s.transition(ctx, p.ID, Failed, ReasonProviderRefused, errs.MessageOf(err), SourceStart, "", Created)
	default:
		return p, errs.Wrap(op, err)
	}
	if snap.ID != p.ID {
		return p, errs.Ef(errs.Internal, op, "provider %s answered for payment %q when asked for %s", p.Provider, snap.ID, p.ID)
	}
	p, _, err = s.apply(ctx, p.Provider, snap, SourceStart, "")
	return p, errs.Wrap(op, err)
}

// Deposit is CreateDeposit followed by Start. It returns their errors; when
// Start fails, the created payment is returned with the error.
func (s *Service) Deposit(ctx context.Context, req DepositRequest) (Payment, error) {
	p, err := s.CreateDeposit(ctx, req)
	if err != nil {
		return Payment{}, err
	}
	return s.start(ctx, p)
}

// Payout is CreatePayout followed by Start, with the errors of both.
func (s *Service) Payout(ctx context.Context, req PayoutRequest) (Payment, error) {
	p, err := s.CreatePayout(ctx, req)
	if err != nil {
		return Payment{}, err
	}
	return s.start(ctx, p)
}

// ApplyEvent applies a verified provider event: it stores the event
// verbatim and moves the payment it names forward, never backward (see the
// package documentation). A repeated event (same provider event id) changes
// nothing and reports OutcomeDuplicate; an event for no payment of ours is
// stored and reports OutcomeUnknown. It returns the Observer's error or a
// database error; then nothing is stored.
func (s *Service) ApplyEvent(ctx context.Context, provider string, ev psp.Event) (Outcome, error) {
	const op = "payments.Service.ApplyEvent"
	var snap snapshot
	switch {
	case ev.Kind == psp.PaymentEvent && ev.Payment != nil:
		snap = paymentSnapshot(*ev.Payment)
	case ev.Kind == psp.PayoutEvent && ev.Payout != nil:
		snap = payoutSnapshot(*ev.Payout)
	default:
		return "", errs.Ef(errs.Invalid, op, "event %s carries neither a payment nor a payout", ev.ID)
	}
	if ev.ID == "" {
		return "", errs.E(errs.Invalid, op, "event has no id")
	}
	snap.Raw = ev.Raw
	_, out, err := s.apply(ctx, provider, snap, SourceWebhook, ev.ID)
	return out, errs.Wrap(op, err)
}

// apply stores a provider snapshot as an event and applies it to the
// payment it names.
//
// The snapshot is decided without a lock, on the payment as this process
// last saw it (see seen) or, when it has not seen it lately, as read now.
// A payment only moves forward, so a snapshot that changes nothing in that
// state changes nothing in any later one either (a webhook repeating the
// start answer, one that arrives after a later one, a status answer with
// no news): it is stored with its outcome in one statement, without a
// transaction. A snapshot that changes the payment is applied in one
// transaction that updates the payment if it is still as seen (its
// updated_at, which every change moves forward) and stores the event with
// its outcome; if another change came first, the snapshot is decided again
// in the same transaction under the payment's row lock. Either way every
// snapshot is stored exactly once (a provider event id already stored
// reports OutcomeDuplicate and stores nothing, and rolls back a change
// decided for it), and a transaction locks the payment before it stores
// the event, so two deliveries of one event take their locks in the same
// order.
func (s *Service) apply(ctx context.Context, provider string, snap snapshot, source, providerEventID string) (Payment, Outcome, error) {
	const op = "payments.apply"
	eventID, err := newEventID()
	if err != nil {
		return Payment{}, "", err
	}
	ev := StoredEvent{ID: eventID, Provider: provider, ProviderEventID: providerEventID, Source: source, Body: snap.Raw, ReceivedAt: s.now()}
	cur, known := s.seen.get(snap.ID)
	if !known {
		cur, err = s.Get(ctx, snap.ID)
	}
	if errs.Is(err, errs.NotFound) {
		ev.Outcome = OutcomeUnknown
		stored, err := insertEvent(ctx, s.db, ev)
		if err != nil {
			return Payment{}, "", errs.Wrap(op, err)
		}
		if !stored {
			return Payment{}, OutcomeDuplicate, nil
		}
		s.log.WarnContext(ctx, "provider event for an unknown payment", "provider", provider, "payment", snap.ID, "event", providerEventID)
		return Payment{}, OutcomeUnknown, nil
	} else if err != nil {
		return Payment{}, "", errs.Wrap(op, err)
	}
	pl := plan(cur, provider, snap, s.now())
	if !pl.changes {
		ev.PaymentID, ev.Outcome = cur.ID, pl.outcome
		stored, err := insertEvent(ctx, s.db, ev)
		if err != nil {
			return Payment{}, "", errs.Wrap(op, err)
		}
		if !stored {
			return cur, OutcomeDuplicate, nil
		}
		s.logUnchanged(ctx, cur, provider, snap, providerEventID, pl.outcome)
		return cur, pl.outcome, nil
	}
	if s.decided != nil {
		s.decided(ctx, cur.ID)
	}
	var (
		out     Payment
		outcome Outcome
	)
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		from, next, o, changes := cur.Status, pl.next, pl.outcome, true
		ok, err := updatePaymentIf(ctx, tx, next, cur.UpdatedAt)
		if err != nil {
			return err
		}
		if !ok {
			// Another change came first: decide again under the lock.
			p, err := s.getTx(ctx, tx, snap.ID, true)
			if err != nil {
				return err
			}
			again := plan(p, provider, snap, s.now())
			from, next, o, changes = p.Status, again.next, again.outcome, again.changes
			if changes {
				if err := updatePayment(ctx, tx, next); err != nil {
					return err
				}
			}
		}
		ev.PaymentID, ev.Outcome = cur.ID, o
		stored, err := insertEvent(ctx, tx, ev)
		if err != nil {
			return err
		}
		if !stored {
			// Delivered again while this one was decided: the first
			// delivery's outcome stands.
			out, outcome = next, OutcomeDuplicate
			if changes {
				return errDelivered
			}
			return nil
		}
		out, outcome = next, o
		if !changes {
			s.logUnchanged(ctx, next, provider, snap, providerEventID, o)
			return nil
		}
		if next.Status != from {
			return s.recordChange(ctx, tx, from, next, source, eventID, "")
		}
		return nil
	})
	if errors.Is(err, errDelivered) {
		return cur, OutcomeDuplicate, nil
	}
	if err != nil {
		return Payment{}, "", errs.Wrap(op, err)
	}
	s.seen.put(out)
	return out, outcome, nil
}

// errDelivered rolls back a change whose event turns out to be stored
// already: another delivery of it came first.
var errDelivered = errors.New("payments: the event was delivered before")

// changedAt is the updated_at of a change to p at now: now, but always
// after p's, so that every change moves updated_at forward and a change
// decided on a read can check that the payment is still as read.
func changedAt(p Payment, now time.Time) time.Time {
	if floor := p.UpdatedAt.Add(time.Microsecond); now.Before(floor) {
		return floor
	}
	return now
}

// applied is what a snapshot does to a payment: the outcome, the payment
// after it, and whether anything in the payment changes.
type applied struct {
	outcome Outcome
	next    Payment
	changes bool
}

// plan works out what snap does to p (see decide and fillDetails) from
// provider; now is the time of a change.
func plan(p Payment, provider string, snap snapshot, now time.Time) applied {
	if !fits(p, provider, snap) {
		return applied{outcome: OutcomeConflict, next: p}
	}
	d := decide(p, snap)
	next := p
	fillDetails(&next, snap)
	if d.outcome == OutcomeApplied || d.outcome == OutcomeReview {
		if snap.Seq > next.ProviderSeq {
			next.ProviderSeq = snap.Seq
			next.Confirmations = snap.Confirmations
		}
		if snap.Received.Currency().Code != "" {
			next.Received = snap.Received
		}
	}
	if d.to != p.Status {
		next.Status, next.Reason, next.Message = d.to, d.reason, d.message
		if d.to.Final() {
			next.FinalAt = now
		}
	}
	if next == p {
		return applied{outcome: d.outcome, next: p}
	}
	next.UpdatedAt = changedAt(p, now)
	return applied{outcome: d.outcome, next: next, changes: true}
}

// fits reports whether snap, from provider, can be about p: the payment's
// provider and the kind of its direction.
func fits(p Payment, provider string, snap snapshot) bool {
	want := psp.PaymentEvent
	if p.Direction == Withdrawal {
		want = psp.PayoutEvent
	}
	return p.Provider == provider && snap.Kind == want
}

// logUnchanged logs a snapshot that changed nothing when it is worth an
// operator's attention: one from another provider or of the wrong kind,
// or one that contradicts a settled payment.
func (s *Service) logUnchanged(ctx context.Context, p Payment, provider string, snap snapshot, providerEventID string, o Outcome) {
	switch {
	case o != OutcomeConflict:
	case !fits(p, provider, snap):
		s.log.WarnContext(ctx, "provider event does not fit the payment", "provider", provider, "payment", p.ID,
			"payment_provider", p.Provider, "event_kind", snap.Kind, "direction", p.Direction)
	default:
		s.log.WarnContext(ctx, "provider contradicts a settled payment", "provider", provider, "payment", p.ID,
			"status", p.Status, "provider_status", snap.Status, "event", providerEventID)
	}
}

// fillDetails copies what the provider tells once (its reference, the next
// step) into p where p has none yet, and the instrument when given.
func fillDetails(p *Payment, snap snapshot) {
	if p.ProviderRef == "" {
		p.ProviderRef = snap.ProviderRef
	}
	if p.Next == "" && snap.Next != "" {
		p.Next, p.RedirectURL, p.Instructions = snap.Next, snap.RedirectURL, snap.Instructions
	}
	if snap.Instrument != (psp.Instrument{}) && snap.Seq >= p.ProviderSeq {
		p.Instrument = snap.Instrument
	}
}

// recordChange writes the history entry of a status change and tells the
// observer, inside tx.
func (s *Service) recordChange(ctx context.Context, tx *sqlstore.Tx, from Status, p Payment, source, eventID, actor string) error {
	if err := insertHistory(ctx, tx, p.ID, StatusChange{From: from, To: p.Status, Reason: p.Reason, Source: source, EventID: eventID, Actor: actor, At: p.UpdatedAt}); err != nil {
		return err
	}
	if s.observer != nil {
		if err := s.observer.PaymentChanged(ctx, tx, Change{Payment: p, From: from, Source: source}); err != nil {
			return errs.Wrap("payments.observer", err)
		}
	}
	s.log.InfoContext(ctx, "payment status changed", "payment", p.ID, "from", from, "to", p.Status, "reason", p.Reason, "source", source)
	return nil
}

// transition moves a payment to status to by our own decision (a refusal,
// a payment that never started, an operator's resolution), if it is still
// in one of the statuses allowed.
func (s *Service) transition(ctx context.Context, id string, to Status, reason, message, source, actor string, allowed ...Status) (Payment, error) {
	const op = "payments.transition"
	var out Payment
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		p, err := s.getTx(ctx, tx, id, true)
		if err != nil {
			return err
		}
		ok := false
		for _, a := range allowed {
			ok = ok || p.Status == a
		}
		if !ok {
			out = p
			return errs.Ef(errs.Conflict, op, "payment %s is %s", id, p.Status)
		}
		from := p.Status
		now := changedAt(p, s.now())
		p.Status, p.Reason, p.Message, p.UpdatedAt = to, reason, message, now
		if to.Final() {
			p.FinalAt = now
		}
		if err := updatePayment(ctx, tx, p); err != nil {
			return err
		}
		out = p
		return s.recordChange(ctx, tx, from, p, source, "", actor)
	})
	if errs.Is(err, errs.Conflict) && source != SourceOperator {
		// Someone else moved the payment first; theirs stands.
		s.seen.put(out)
		return out, nil
	}
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	s.seen.put(out)
	return out, nil
}

// ResolveReview ends a payment's review by an operator's decision: to is
// Succeeded (accept what the provider reported; Received holds it),
// Declined or Failed. The Observer is told as for any change. It returns
// an errs.Invalid error for another target status, an errs.NotFound error
// for an unknown id and an errs.Conflict error when the payment is not
// under review.
func (s *Service) ResolveReview(ctx context.Context, id string, to Status, operator, note string) (Payment, error) {
	const op = "payments.Service.ResolveReview"
	if to != Succeeded && to != Declined && to != Failed {
		return Payment{}, errs.Ef(errs.Invalid, op, "a review ends in succeeded, declined or failed, not %s", to)
	}
	if operator == "" {
		return Payment{}, errs.E(errs.Invalid, op, "the operator must be named")
	}
	p, err := s.transition(ctx, id, to, ReasonOperator, note, SourceOperator, operator, Review)
	return p, errs.Wrap(op, err)
}
