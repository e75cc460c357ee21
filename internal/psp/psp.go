// Package psp is the payment-provider interface of OpenCashier: start a
// payment (a deposit), verify and parse a provider's webhook, ask a provider
// for a payment's status, and start and query payouts (withdrawals).
//
// One Provider value talks to one provider account. Adapters live in
// sub-packages (psp/sandbox is built in); cmd/cashier registers them in a
// Registry under their names, and the payments package finds them there by
// the provider name of a payment method.
//
// # Our id is the idempotency key
//
// Every request carries our own id (PaymentRequest.ID, PayoutRequest.ID,
// "pay_…"). A provider adapter must pass it to the provider as the
// merchant reference and idempotency key, so that calling StartPayment or
// StartPayout again with the same id never creates a second payment or
// payout: it returns the one that exists. Callers rely on this to retry a
// call whose answer was lost. Status queries are by our id as well.
//
// # Errors
//
// Adapters return *errs.Error values with these codes, so callers can react
// without knowing the provider:
//
//   - errs.Invalid: the provider refused the request as malformed or
//     unsupported (unknown currency, bad destination). Nothing was created.
//   - errs.Conflict: the id was used before with different fields.
//   - errs.NotFound: a status query for an id the provider does not know.
//   - errs.Unauthorized: a webhook whose signature does not verify, or our
//     credentials were refused.
//   - errs.Expired: a webhook whose timestamp is outside the tolerance.
//   - errs.Unavailable: the provider could not be reached or answered with
//     a server error. The request may or may not have arrived; repeating it
//     with the same id is safe.
//
// A declined card is not an error: it is a result with Status Declined.
package psp

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/opencashier/cashier/internal/money"
)

// MethodKind is the family of a payment method. Payment methods in the
// cashier's configuration name one kind and one provider.
type MethodKind string

// The method kinds.
const (
	Card         MethodKind = "card"
	BankTransfer MethodKind = "bank_transfer"
	EWallet      MethodKind = "ewallet"
	Crypto       MethodKind = "crypto"
)

// Valid reports whether k is one of the four kinds.
func (k MethodKind) Valid() bool {
	switch k {
	case Card, BankTransfer, EWallet, Crypto:
		return true
	}
	return false
}

// Status is a provider's view of a payment or payout.
type Status string

// The statuses a provider reports. Pending covers everything that is not
// yet decided (waiting for the customer on a hosted page, for a bank
// transfer, for confirmations); Authorised means the money is reserved but
// not yet captured. Succeeded, Declined, Failed and Expired are final.
const (
	Pending    Status = "pending"
	Authorised Status = "authorised"
	Succeeded  Status = "succeeded"
	Declined   Status = "declined"
	Failed     Status = "failed"
	Expired    Status = "expired"
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case Pending, Authorised, Succeeded, Declined, Failed, Expired:
		return true
	}
	return false
}

// Final reports whether s can no longer change.
func (s Status) Final() bool {
	switch s {
	case Succeeded, Declined, Failed, Expired:
		return true
	}
	return false
}

// Decline codes: why a payment or payout was declined or failed. Providers
// map their own codes to these where they can and pass others through.
const (
	DeclineInsufficientFunds    = "insufficient_funds"
	DeclineDoNotHonour          = "do_not_honour"
	DeclineExpiredCard          = "expired_card"
	DeclineAuthenticationFailed = "authentication_failed"
	DeclineCancelled            = "cancelled_by_customer"
	DeclineAccountClosed        = "account_closed"
	DeclineInvalidDestination   = "invalid_destination"
	DeclineProviderError        = "provider_error"
)

// Capabilities says what a provider can do. The payments package checks
// every configured method against them at start-up.
type Capabilities struct {
	// Methods are the kinds the provider can take deposits with.
	Methods []MethodKind
	// PayoutMethods are the kinds it can pay out to; empty means no payouts.
	PayoutMethods []MethodKind
	// Currencies are the ISO 4217 or asset codes it accepts; empty means
	// any currency the money package knows.
	Currencies []string
	// CryptoCurrencies, when not empty, are the only currencies of the
	// Crypto kind.
	CryptoCurrencies []string
	// Refunds says whether the provider can refund a succeeded payment.
	Refunds bool
}

// Payouts reports whether the provider can pay out at all.
func (c Capabilities) Payouts() bool { return len(c.PayoutMethods) > 0 }

// Supports reports whether the provider takes deposits (payout false) or
// makes payouts (payout true) of kind in currency code.
func (c Capabilities) Supports(kind MethodKind, code string, payout bool) bool {
	kinds := c.Methods
	if payout {
		kinds = c.PayoutMethods
	}
	if !slices.Contains(kinds, kind) {
		return false
	}
	if kind == Crypto && len(c.CryptoCurrencies) > 0 {
		return slices.Contains(c.CryptoCurrencies, code)
	}
	return len(c.Currencies) == 0 || slices.Contains(c.Currencies, code)
}

// Customer is who pays or is paid, as far as a provider needs to know.
type Customer struct {
	ID      string // our user id
	Email   string
	Name    string
	Country string // ISO 3166-1 alpha-2
}

// PaymentRequest starts a payment (a deposit) at a provider.
type PaymentRequest struct {
	// ID is our payment id, the merchant reference and idempotency key.
	ID       string
	Method   MethodKind
	Amount   money.Amount // what the customer pays, positive
	Customer Customer
	// ReturnURL is where a hosted page sends the customer's browser when
	// it is done (approved, declined or cancelled).
	ReturnURL   string
	Description string
	Lang        string // BCP 47 language for hosted pages
}

// NextKind says what the customer has to do after StartPayment.
type NextKind string

// The kinds of next step.
const (
	// NextRedirect: send the customer's browser to RedirectURL (a hosted
	// card page, an e-wallet approval page).
	NextRedirect NextKind = "redirect"
	// NextInstructions: show Instructions (bank details with a reference,
	// a crypto address); the payment stays pending until the money arrives.
	NextInstructions NextKind = "instructions"
	// NextNone: the outcome is already known (see Payment.Status).
	NextNone NextKind = "none"
)

// Instructions tell a customer how to pay by bank transfer or crypto.
type Instructions struct {
	// Bank transfer.
	BankName      string `json:"bankName,omitempty"`
	AccountHolder string `json:"accountHolder,omitempty"`
	IBAN          string `json:"iban,omitempty"`
	BIC           string `json:"bic,omitempty"`
	// Reference must be quoted with the transfer; it is unique per payment.
	Reference string `json:"reference,omitempty"`

	// Crypto.
	Address               string `json:"address,omitempty"`
	Network               string `json:"network,omitempty"`
	RequiredConfirmations int    `json:"requiredConfirmations,omitempty"`

	// Amount is what to send, in the payment's currency.
	Amount money.Amount `json:"amount,omitzero"`
	// ExpiresAt is when the provider stops waiting for the money.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Instrument describes the card or account a customer paid with, without
// anything secret: a card's brand and last four digits, and the provider's
// token for paying out to it later.
type Instrument struct {
	Brand string `json:"brand,omitempty"`
	Last4 string `json:"last4,omitempty"`
	Token string `json:"token,omitempty"`
	// Country is the card's issuing country (ISO 3166-1 alpha-2) when the
	// provider reports it.
	Country string `json:"country,omitempty"`
}

// Payment is a provider's view of one payment.
type Payment struct {
	ID          string // our id
	ProviderRef string // the provider's id
	Status      Status
	// Amount is what we asked for.
	Amount money.Amount
	// Received is what the provider says was actually paid; for bank
	// transfers and crypto it may differ from Amount. Zero when nothing has
	// been received yet.
	Received money.Amount
	// DeclineCode and Message explain a Declined or Failed status.
	DeclineCode string
	Message     string
	// Next is set by StartPayment: what the customer has to do.
	Next         NextKind
	RedirectURL  string
	Instructions *Instructions
	Instrument   Instrument
	// Confirmations counts blockchain confirmations of a crypto payment.
	Confirmations int
	// Seq grows with every change at the provider; events and status
	// answers with a lower Seq than one already applied are older news.
	Seq int64
	// UpdatedAt is when the provider last changed the payment.
	UpdatedAt time.Time
	// Raw is the provider's answer or event as received, for audit.
	Raw []byte
}

// Destination is where a payout goes. Which fields count depends on the
// method kind: a card token from an earlier card payment, a bank account, or
// an e-wallet id.
type Destination struct {
	CardToken  string `json:"cardToken,omitempty"`
	IBAN       string `json:"iban,omitempty"`
	BIC        string `json:"bic,omitempty"`
	HolderName string `json:"holderName,omitempty"`
	WalletID   string `json:"walletId,omitempty"`
}

// PayoutRequest starts a payout (a withdrawal) at a provider.
type PayoutRequest struct {
	// ID is our payment id, the merchant reference and idempotency key.
	ID          string
	Method      MethodKind
	Amount      money.Amount // what the customer receives, positive
	Destination Destination
	Customer    Customer
	Description string
}

// Payout is a provider's view of one payout.
type Payout struct {
	ID          string
	ProviderRef string
	Status      Status // Pending, Succeeded, Declined (rejected) or Failed
	Amount      money.Amount
	DeclineCode string
	Message     string
	Seq         int64
	UpdatedAt   time.Time
	Raw         []byte
}

// EventKind says what a webhook event is about.
type EventKind string

// The event kinds.
const (
	PaymentEvent EventKind = "payment"
	PayoutEvent  EventKind = "payout"
)

// Event is a verified, parsed webhook.
type Event struct {
	// ID is the provider's event id. Deliveries of the same event carry the
	// same id, so a repeated delivery can be recognised.
	ID         string
	Kind       EventKind
	OccurredAt time.Time
	Payment    *Payment // when Kind is PaymentEvent
	Payout     *Payout  // when Kind is PayoutEvent
	// Raw is the body exactly as received.
	Raw []byte
}

// Provider is one payment provider account.
//
// StartPayment starts a payment, or returns the existing one when a payment
// with the request's ID exists; the result's Next says what the customer
// has to do. PaymentStatus returns the provider's current view of the
// payment with our id. ParseWebhook verifies a webhook's signature and
// freshness and parses it. StartPayout and PayoutStatus do the same for
// payouts; a provider without payouts returns errs.Invalid from both.
// Errors follow the package documentation.
type Provider interface {
	Name() string
	Capabilities() Capabilities
	StartPayment(ctx context.Context, req PaymentRequest) (Payment, error)
	PaymentStatus(ctx context.Context, id string) (Payment, error)
	ParseWebhook(header http.Header, body []byte) (Event, error)
	StartPayout(ctx context.Context, req PayoutRequest) (Payout, error)
	PayoutStatus(ctx context.Context, id string) (Payout, error)
}

// ReportLine is one payment or payout in a provider's transaction report.
type ReportLine struct {
	// ID is our payment id (the merchant reference).
	ID string
	// ProviderRef is the provider's id.
	ProviderRef string
	// Kind is PaymentEvent for a payment (a deposit) and PayoutEvent for a
	// payout (a withdrawal).
	Kind EventKind
	// Status is the transaction's status at the provider.
	Status Status
	// Amount is what moved: for a payment, what the provider received (the
	// asked amount until it has received something); for a payout, what it
	// paid or is to pay.
	Amount money.Amount
	// Fee is what the provider charged for the transaction; zero (no
	// currency) when it reports no fee.
	Fee money.Amount
	// At is when the provider last changed the transaction.
	At time.Time
}

// Reporter is an optional capability of a Provider: its settlement or
// transaction report. Report returns every payment and payout the provider
// last changed in [from, to), oldest first; a zero from means from the
// beginning. Errors follow the package documentation (errs.Unavailable
// when the provider cannot be reached, errs.Unauthorized when our
// credentials are refused, errs.Invalid for a window the provider
// refuses).
type Reporter interface {
	Report(ctx context.Context, from, to time.Time) ([]ReportLine, error)
}
