package payments

import (
	"fmt"
	"time"

	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// Status is where a payment is in its life (see the package documentation
// for the machine).
type Status string

// The statuses of a payment.
const (
	Created    Status = "created"    // recorded, not yet accepted by the provider
	Pending    Status = "pending"    // at the provider, waiting for the customer or the money
	Authorised Status = "authorised" // money reserved, not yet captured
	Succeeded  Status = "succeeded"  // final: the money moved as asked
	Declined   Status = "declined"   // final: refused (card declined, customer cancelled, payout rejected)
	Failed     Status = "failed"     // final: an error at the provider or in the request
	Expired    Status = "expired"    // final: the customer or the money never came
	Review     Status = "review"     // held for an operator: the provider's amount or currency differs from ours
)

// Final reports whether s can no longer change.
func (s Status) Final() bool {
	switch s {
	case Succeeded, Declined, Failed, Expired:
		return true
	}
	return false
}

// rank orders statuses so that a payment only ever moves forward. Review
// ranks with the final statuses: events never move a payment out of it;
// only an operator does (ResolveReview).
func (s Status) rank() int {
	switch s {
	case Created:
		return 0
	case Pending:
		return 1
	case Authorised:
		return 2
	}
	return 3
}

// Reasons recorded with a status beyond the providers' decline codes.
const (
	// ReasonAmountMismatch: the provider reported another amount or
	// currency than we asked for.
	ReasonAmountMismatch = "amount_mismatch"
	// ReasonNotStarted: the payment never reached the provider.
	ReasonNotStarted = "not_started"
	// ReasonProviderRefused: the provider refused the request itself.
	ReasonProviderRefused = "provider_refused"
	// ReasonOperator: an operator resolved a payment under review.
	ReasonOperator = "operator"
)

// Sources of a status change or stored event.
const (
	SourceCreate   = "create"
	SourceStart    = "start"
	SourceWebhook  = "webhook"
	SourcePoll     = "poll"
	SourceOperator = "operator"
)

// FXRecord is how a payment's amount was converted between its currency and
// the account's. Deposits convert the net amount into the account
// currency; withdrawals convert the account debit into the payout currency.
type FXRecord struct {
	MidRate   money.Rate
	Inverted  bool
	SpreadBps int64
	Rate      money.Rate
}

// Payment is one deposit or payout at a provider.
type Payment struct {
	ID          string // "pay_" + UUIDv7
	Direction   Direction
	MethodID    string
	Kind        psp.MethodKind
	Provider    string
	ProviderRef string // the provider's id; empty until the provider answers

	CustomerID string
	AccountID  string
	Country    string

	// Gross, Fee and Net are in the payment currency (see Quote). What
	// moves at the provider is ProviderAmount.
	Gross     money.Amount
	Fee       money.Amount
	FeePaidBy Payer
	Net       money.Amount
	// AccountAmount is in the account's currency: the credit of a deposit,
	// the debit of a withdrawal.
	AccountAmount money.Amount
	// FX is nil when the payment and the account share a currency.
	FX *FXRecord

	Status  Status
	Reason  string // decline code or review reason
	Message string
	// Received is what the provider reports as actually paid; zero (no
	// currency) until it reports an amount.
	Received money.Amount

	Next          psp.NextKind
	RedirectURL   string
	Instructions  *psp.Instructions
	Instrument    psp.Instrument
	Destination   *psp.Destination
	Confirmations int
	ProviderSeq   int64

	CustomerEmail string
	CustomerName  string
	ReturnURL     string
	Lang          string

	CreatedAt time.Time
	UpdatedAt time.Time
	FinalAt   time.Time
}

// ProviderAmount is the amount that moves at the provider: what the
// customer pays for a deposit (Gross), what the customer receives for a
// withdrawal (Net).
func (p Payment) ProviderAmount() money.Amount {
	if p.Direction == Withdrawal {
		return p.Net
	}
	return p.Gross
}

// StatusChange is one entry of a payment's status history.
type StatusChange struct {
	Seq    int
	From   Status
	To     Status
	Reason string
	Source string // create, start, webhook, poll or operator
	// EventID is our id of the stored provider event that caused the
	// change, if any.
	EventID string
	Actor   string // the operator, for operator changes
	At      time.Time
}

// StoredEvent is a provider event or status answer kept verbatim.
type StoredEvent struct {
	ID              string // "pev_" + UUIDv7
	Provider        string
	ProviderEventID string // empty for status answers
	PaymentID       string // empty when no payment of ours matched
	Source          string // start, webhook or poll
	Body            []byte
	// Outcome says what the event did: see the Outcome constants.
	Outcome    Outcome
	ReceivedAt time.Time
}

// Outcome says what a provider event or status answer did to a payment.
type Outcome string

// The outcomes.
const (
	OutcomeApplied   Outcome = "applied"   // the payment moved forward or gained detail
	OutcomeUnchanged Outcome = "unchanged" // nothing new
	OutcomeStale     Outcome = "stale"     // older than what the payment already shows; ignored
	OutcomeReview    Outcome = "review"    // amount or currency differs; the payment went to review
	OutcomeConflict  Outcome = "conflict"  // contradicts a final status; ignored and logged
	OutcomeDuplicate Outcome = "duplicate" // the same provider event was received before
	OutcomeUnknown   Outcome = "unknown"   // no payment of ours matches
)

// snapshot is a provider's view of a payment or payout, in one shape.
type snapshot struct {
	Kind          psp.EventKind
	ID            string
	ProviderRef   string
	Status        psp.Status
	Amount        money.Amount
	Received      money.Amount
	DeclineCode   string
	Message       string
	Next          psp.NextKind
	RedirectURL   string
	Instructions  *psp.Instructions
	Instrument    psp.Instrument
	Confirmations int
	Seq           int64
	Raw           []byte
}

func paymentSnapshot(p psp.Payment) snapshot {
	return snapshot{
		Kind: psp.PaymentEvent, ID: p.ID, ProviderRef: p.ProviderRef, Status: p.Status, Amount: p.Amount,
		Received: p.Received, DeclineCode: p.DeclineCode, Message: p.Message, Next: p.Next,
		RedirectURL: p.RedirectURL, Instructions: p.Instructions, Instrument: p.Instrument,
		Confirmations: p.Confirmations, Seq: p.Seq, Raw: p.Raw,
	}
}

func payoutSnapshot(p psp.Payout) snapshot {
	return snapshot{
		Kind: psp.PayoutEvent, ID: p.ID, ProviderRef: p.ProviderRef, Status: p.Status, Amount: p.Amount,
		DeclineCode: p.DeclineCode, Message: p.Message, Next: psp.NextNone, Seq: p.Seq, Raw: p.Raw,
	}
}

// decision is what a snapshot does to a payment.
type decision struct {
	to      Status
	reason  string
	message string
	outcome Outcome
}

// decide applies the monotonic state machine: a snapshot moves p only
// forward; a final payment or one under review never moves; a succeeded
// snapshot whose amount or currency differs from ours sends p to review.
func decide(p Payment, s snapshot) decision {
	target, reason := fromProvider(s.Status), s.DeclineCode
	message := s.Message
	if target == Succeeded {
		if problem := amountProblem(p, s); problem != "" {
			target, reason, message = Review, ReasonAmountMismatch, problem
		}
	}
	switch {
	case p.Status.Final() || p.Status == Review:
		if target == p.Status {
			return decision{to: p.Status, outcome: OutcomeUnchanged}
		}
		if target.rank() < p.Status.rank() {
			return decision{to: p.Status, outcome: OutcomeStale}
		}
		return decision{to: p.Status, outcome: OutcomeConflict}
	case target.rank() < p.Status.rank():
		return decision{to: p.Status, outcome: OutcomeStale}
	case target == p.Status:
		if s.Seq > p.ProviderSeq {
			return decision{to: p.Status, outcome: OutcomeApplied}
		}
		return decision{to: p.Status, outcome: OutcomeUnchanged}
	}
	out := OutcomeApplied
	if target == Review {
		out = OutcomeReview
	}
	return decision{to: target, reason: reason, message: message, outcome: out}
}

func fromProvider(s psp.Status) Status {
	switch s {
	case psp.Pending:
		return Pending
	case psp.Authorised:
		return Authorised
	case psp.Succeeded:
		return Succeeded
	case psp.Declined:
		return Declined
	case psp.Expired:
		return Expired
	}
	return Failed
}

// amountProblem compares what the provider says moved with what we asked
// for and describes a difference ("" when they agree).
func amountProblem(p Payment, s snapshot) string {
	want := p.ProviderAmount()
	got := s.Received
	if got.Currency().Code == "" {
		got = s.Amount
	}
	if got.Currency().Code == "" {
		return "the provider reported success without an amount"
	}
	if got != want {
		return fmt.Sprintf("asked for %s, the provider reports %s", want, got)
	}
	if s.Amount.Currency().Code != "" && s.Amount != want {
		return fmt.Sprintf("asked for %s, the provider's payment is for %s", want, s.Amount)
	}
	return ""
}
