// Package wizardapi serves the withdrawal wizard of seed 002 over HTTP:
//
//	GET  /api/v2/my/withdrawals/wizard   start a wizard (its uuid)
//	POST /api/v2/my/withdrawals          submit (or preview) a withdrawal
//	POST /api/v2/my/withdrawals/wizard   confirm it with a code
//
// and, with Options.TwoFactor, the user's own second factor
// (TwoFactorRoutes):
//
//	GET  /api/v2/my/2fa                  the method and whether one is enrolled
//	POST /api/v2/my/2fa                  enrol e-mail or SMS codes
//	POST /api/v2/my/2fa/totp             begin TOTP (secret and QR code)
//	POST /api/v2/my/2fa/totp/confirm     confirm TOTP with the app's code
//
// Successful answers have the seed's shapes; errors are RFC 9457
// problem+json with the house's machine code (the seed fixes no error body).
// The caller is found by an Authenticator the server is given, so this
// package does not depend on how client tokens work.
package wizardapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// Authenticator returns the user a request is made by. It returns an
// errs.Unauthorized error when the request carries no valid credentials.
// cmd/cashier passes one built on the client API's bearer tokens.
type Authenticator func(r *http.Request) (userID string, err error)

// Options configure the handler.
type Options struct {
	Wizard       *withdrawwizard.Service
	Authenticate Authenticator
	// MaxBody limits request bodies; 0 means httpx.DefaultMaxBody.
	MaxBody int64
	// TwoFactor and Profiles turn on the second-factor enrolment
	// endpoints (TwoFactorRoutes); both are needed.
	TwoFactor *twofactor.Service
	Profiles  Profiles
	// Clock tells the time for the enrolment endpoints' code windows;
	// clock.System{} when nil.
	Clock clock.Clock
}

func (o Options) clock() clock.Clock {
	if o.Clock == nil {
		return clock.System{}
	}
	return o.Clock
}

// Handler serves the wizard endpoints.
type Handler struct {
	o Options
}

// New returns the handler. It returns errs.Invalid without a wizard service
// or an authenticator.
func New(o Options) (*Handler, error) {
	if o.Wizard == nil || o.Authenticate == nil {
		return nil, errs.E(errs.Invalid, "wizardapi.New", "Wizard and Authenticate are required")
	}
	return &Handler{o: o}, nil
}

// The routes, as Go ServeMux patterns.
const (
	RouteStart   = "GET /api/v2/my/withdrawals/wizard"
	RouteSubmit  = "POST /api/v2/my/withdrawals"
	RouteConfirm = "POST /api/v2/my/withdrawals/wizard"
)

// Routes registers the three endpoints on mux, each answering with
// Cache-Control: no-store.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle(RouteStart, httpx.NoStore(http.HandlerFunc(h.start)))
	mux.Handle(RouteSubmit, httpx.NoStore(http.HandlerFunc(h.submit)))
	mux.Handle(RouteConfirm, httpx.NoStore(http.HandlerFunc(h.confirm)))
}

// step is the seed's wizard answer. Data is always null for this wizard;
// Transaction is the withdrawal once a confirmation is done.
type step struct {
	Code        int          `json:"code"`
	Data        any          `json:"data"`
	Done        bool         `json:"done"`
	UUID        string       `json:"uuid"`
	Workflow    string       `json:"workflow"`
	Transaction *transaction `json:"transaction,omitempty"`
}

// delivery is the seed's code-delivery answer.
type delivery struct {
	Status    int       `json:"status"`
	Sent      int       `json:"sent"`
	ExpiredAt string    `json:"expiredAt"`
	SentAt    string    `json:"sentAt"`
	Recipient recipient `json:"recipient"`
}

type recipient struct {
	Template string `json:"template"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Method   string `json:"method"`
}

// transaction is the Transaction object (seed 002 names it without fields).
type transaction struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	AccountID    int64       `json:"accountId"`
	MethodID     int         `json:"methodId"`
	Amount       json.Number `json:"amount"`
	CurrencyCode int         `json:"currencyCode"`
	Currency     string      `json:"currency"`
	Fee          json.Number `json:"fee"`
	FeePaidBy    string      `json:"feePaidBy"`
	NetAmount    json.Number `json:"netAmount"`
	NetCurrency  string      `json:"netCurrency"`
	Conversion   *conversion `json:"conversion"`
	Destination  string      `json:"destination,omitempty"`
	CreatedAt    string      `json:"createdAt,omitempty"`
}

type conversion struct {
	From      json.Number `json:"fromAmount"`
	FromCur   string      `json:"fromCurrency"`
	To        json.Number `json:"toAmount"`
	ToCur     string      `json:"toCurrency"`
	Rate      string      `json:"rate"`
	MidRate   string      `json:"midRate"`
	SpreadBps int64       `json:"spreadBps"`
}

// timeLayout writes instants as the seed does: "2022-01-01T00:00:00+00:00".
const timeLayout = "2006-01-02T15:04:05-07:00"

func stamp(t time.Time) string { return t.UTC().Format(timeLayout) }

func (h *Handler) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := h.o.Authenticate(r)
	if err == nil && id == "" {
		err = errs.E(errs.Unauthorized, "wizardapi", "authentication required")
	}
	if err != nil {
		if errs.CodeOf(err) != errs.Unauthorized && errs.CodeOf(err) != errs.Internal && errs.CodeOf(err) != errs.Unavailable {
			err = errs.E(errs.Unauthorized, "wizardapi", "authentication required")
		}
		if errs.CodeOf(err) == errs.Unauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cashier"`)
		}
		writeError(w, r, err)
		return "", false
	}
	return id, true
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	wz, err := h.o.Wizard.Start(r.Context(), userID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, step{Code: http.StatusOK, Done: false, UUID: wz.UUID, Workflow: withdrawwizard.InitialWorkflow})
}

// submitBody is POST /api/v2/my/withdrawals. Integers are decoded as
// integers, so strings and fractions are refused; amount stays exact.
type submitBody struct {
	AccountID    int64             `json:"accountId"`
	MethodID     int               `json:"methodId"`
	Amount       json.Number       `json:"amount"`
	CurrencyCode int               `json:"currencyCode"`
	UUID         string            `json:"uuid"`
	IsPretend    bool              `json:"isPretend"`
	Data         map[string]string `json:"data"`
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	var b submitBody
	if err := httpx.DecodeJSON(w, r, &b, httpx.DecodeOptions{MaxBytes: h.o.MaxBody}); err != nil {
		writeError(w, r, err)
		return
	}
	if b.UUID == "" {
		writeError(w, r, errs.E(errs.Invalid, "wizardapi.submit", "uuid: is required"))
		return
	}
	res, err := h.o.Wizard.Submit(r.Context(), withdrawwizard.Submission{
		UserID: userID, UUID: b.UUID, AccountID: b.AccountID, MethodNumber: b.MethodID, Amount: b.Amount,
		CurrencyCode: b.CurrencyCode, IsPretend: b.IsPretend, Data: b.Data,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	switch {
	case res.Preview != nil:
		httpx.WriteJSON(w, http.StatusOK, h.transaction(*res.Preview))
	case res.Challenge != nil:
		httpx.WriteJSON(w, http.StatusOK, deliveryOf(*res.Challenge))
	default:
		httpx.WriteJSON(w, http.StatusAccepted, h.transaction(*res.Withdrawal))
	}
}

func deliveryOf(c twofactor.Challenge) delivery {
	d := delivery{
		Status: 0, ExpiredAt: stamp(c.ExpiresAt), SentAt: stamp(c.SentAt),
		Recipient: recipient{Template: c.Template, Email: c.Recipient.Email, Name: c.Recipient.Name, Method: string(c.Recipient.Method)},
	}
	if c.Sent {
		d.Sent = 1
	}
	return d
}

// confirmBody is POST /api/v2/my/withdrawals/wizard.
type confirmBody struct {
	Data *struct {
		Action string `json:"action"`
		Code   string `json:"code"`
		UUID   string `json:"uuid"`
	} `json:"data"`
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r)
	if !ok {
		return
	}
	const op = "wizardapi.confirm"
	var b confirmBody
	if err := httpx.DecodeJSON(w, r, &b, httpx.DecodeOptions{MaxBytes: h.o.MaxBody}); err != nil {
		writeError(w, r, err)
		return
	}
	switch {
	case b.Data == nil:
		writeError(w, r, errs.E(errs.Invalid, op, "data: is required"))
		return
	case b.Data.Action != "code":
		writeError(w, r, errs.E(errs.Invalid, op, `data.action: must be "code"`))
		return
	case b.Data.UUID == "":
		writeError(w, r, errs.E(errs.Invalid, op, "data.uuid: is required"))
		return
	case strings.TrimSpace(b.Data.Code) == "":
		writeError(w, r, errs.E(errs.Invalid, op, "data.code: is required"))
		return
	}
	c, err := h.o.Wizard.Confirm(r.Context(), userID, b.Data.UUID, b.Data.Code)
	if err != nil {
		writeError(w, r, err)
		return
	}
	t := h.transaction(c.Withdrawal)
	httpx.WriteJSON(w, http.StatusAccepted, step{Code: http.StatusAccepted, Done: true, UUID: c.Wizard.UUID,
		Workflow: withdrawwizard.TerminateWorkflow, Transaction: &t})
}

func (h *Handler) transaction(t withdrawwizard.Transaction) transaction {
	out := transaction{
		ID: t.ID, Status: t.Status, AccountID: t.Login, MethodID: t.MethodNumber,
		Amount: t.Amount.JSONNumber(), CurrencyCode: numeric(t.Amount.Currency()), Currency: t.Amount.Currency().Code,
		Fee: t.Fee.JSONNumber(), FeePaidBy: string(t.FeePaidBy), NetAmount: t.Net.JSONNumber(), NetCurrency: t.Net.Currency().Code,
		Destination: t.Destination,
	}
	if !t.CreatedAt.IsZero() {
		out.CreatedAt = stamp(t.CreatedAt)
	}
	if t.FX != nil {
		out.Conversion = conversionOf(t.FX)
	}
	return out
}

func conversionOf(c *payments.Conversion) *conversion {
	return &conversion{
		From: c.From.JSONNumber(), FromCur: c.From.Currency().Code, To: c.To.JSONNumber(), ToCur: c.To.Currency().Code,
		Rate: c.Rate.String(), MidRate: c.MidRate.String(), SpreadBps: c.SpreadBps,
	}
}

// problem is httpx.Problem with the extensions this surface adds: the field
// at fault, and the INSUFFICIENT_FUNDS amounts.
type problem struct {
	httpx.Problem
	Field            string      `json:"field,omitempty"`
	AvailableBalance json.Number `json:"availableBalance,omitempty"`
	RequestedAmount  json.Number `json:"requestedAmount,omitempty"`
}

// writeError answers err as problem+json.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		wf *withdrawwizard.FieldError
		ff *funding.FieldError
	)
	extra := problem{}
	switch {
	case errors.As(err, &wf):
		extra.Field = wf.Field
	case errors.As(err, &ff):
		extra.Field = "data." + ff.Field
	}
	if body, ok := funding.AsInsufficient(err); ok && body != nil {
		extra.AvailableBalance, extra.RequestedAmount = body.AvailableBalance, body.RequestedAmount
	}
	if extra.Field == "" && extra.AvailableBalance == "" {
		httpx.WriteProblem(w, r, err)
		return
	}
	rec := &recorder{header: http.Header{}}
	httpx.WriteProblem(rec, r, err)
	if jerr := json.Unmarshal(rec.body, &extra.Problem); jerr != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(rec.status)
	body, _ := json.Marshal(extra)
	_, _ = w.Write(append(body, '\n'))
}

// recorder captures what httpx.WriteProblem writes, so its status, title,
// type and generic detail for internal errors are kept exactly.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }

func numeric(c money.Currency) int {
	n, _ := money.NumericCode(c)
	return n
}
