package payments

import (
	"encoding/json"
	"net/http"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// Seed 000's machine codes for payment errors.
const (
	CodePaymentFailed     = "PAYMENT_FAILED"
	CodeInsufficientFunds = "INSUFFICIENT_FUNDS"
)

// ErrorBody is the error document of seed 000's cashier API:
//
//	{"error":"Payment Failed","message":"Payment processing failed. Please try again.",
//	 "code":"PAYMENT_FAILED","retryAllowed":true}
//	{"error":"Insufficient Funds","message":"Insufficient funds for withdrawal.",
//	 "code":"INSUFFICIENT_FUNDS","availableBalance":1000.00,"requestedAmount":1500.00}
//
// Amounts are JSON numbers written exactly from the decimal, with the
// currency beside them. Reason carries the decline code so screens can
// word the message in the customer's language.
type ErrorBody struct {
	Error            string      `json:"error"`
	Message          string      `json:"message"`
	Code             string      `json:"code"`
	RetryAllowed     *bool       `json:"retryAllowed,omitempty"`
	AvailableBalance json.Number `json:"availableBalance,omitempty"`
	RequestedAmount  json.Number `json:"requestedAmount,omitempty"`
	Currency         string      `json:"currency,omitempty"`
	Reason           string      `json:"reason,omitempty"`
}

// PaymentFailed returns a PAYMENT_FAILED body with message (seed 000's text
// when empty) and whether the customer may try again.
func PaymentFailed(message string, retryAllowed bool) ErrorBody {
	if message == "" {
		message = "Payment processing failed. Please try again."
	}
	return ErrorBody{Error: "Payment Failed", Message: message, Code: CodePaymentFailed, RetryAllowed: &retryAllowed}
}

// InsufficientFunds returns an INSUFFICIENT_FUNDS body for a withdrawal of
// requested when only available can be withdrawn. It returns an
// errs.Invalid error if the two amounts are in different currencies.
func InsufficientFunds(available, requested money.Amount) (ErrorBody, error) {
	if available.Currency() != requested.Currency() {
		return ErrorBody{}, errs.Ef(errs.Invalid, "payments.InsufficientFunds", "available %s and requested %s are in different currencies", available, requested)
	}
	return ErrorBody{
		Error: "Insufficient Funds", Message: "Insufficient funds for withdrawal.", Code: CodeInsufficientFunds,
		AvailableBalance: available.JSONNumber(), RequestedAmount: requested.JSONNumber(), Currency: requested.Currency().Code,
	}, nil
}

// failures words each reason a payment fails for, and says whether trying
// again (with another card, or later) can help.
var failures = map[string]struct {
	message string
	retry   bool
}{
	psp.DeclineInsufficientFunds:    {"Your card was declined for insufficient funds. Try another card or a smaller amount.", true},
	psp.DeclineDoNotHonour:          {"Your bank declined the payment. Try another card or contact your bank.", true},
	psp.DeclineExpiredCard:          {"The card has expired. Try another card.", true},
	psp.DeclineAuthenticationFailed: {"The card could not be verified. Please try again.", true},
	psp.DeclineCancelled:            {"The payment was cancelled.", true},
	psp.DeclineAccountClosed:        {"The receiving account is closed. Choose another account.", false},
	psp.DeclineInvalidDestination:   {"The receiving account details are not valid. Choose another account.", false},
	ReasonNotStarted:                {"The payment could not be started. Please try again.", true},
}

// FailureOf returns the PAYMENT_FAILED body for a declined, failed or
// expired payment, worded after its reason, and reports false for any
// other status (nothing failed).
func FailureOf(p Payment) (ErrorBody, bool) {
	switch p.Status {
	case Declined, Failed, Expired:
	default:
		return ErrorBody{}, false
	}
	f, ok := failures[p.Reason]
	switch {
	case ok:
	case p.Status == Expired:
		f.message, f.retry = "The payment was not completed in time. Please try again.", true
	default:
		f.message, f.retry = "", true
	}
	body := PaymentFailed(f.message, f.retry)
	body.Reason = p.Reason
	return body, true
}

// Write sends the body as JSON with the given status (422 is usual for
// both codes; seed 000 names none).
func (b ErrorBody) Write(w http.ResponseWriter, status int) {
	body, err := json.Marshal(b)
	if err != nil {
		http.Error(w, `{"error":"Internal Error","code":"INTERNAL"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
