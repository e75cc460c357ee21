// Package clientapi serves the client funding API of seed 003 to brokers'
// web cabinets and apps: bank linking with micro-deposit verification,
// POST /cash-transfer, GET /transactions and GET /transactions/{orderId}.
//
// Every route needs a bearer access token (clientauth.Middleware) and
// every POST goes through the Idempotency-Key middleware. Errors of the
// seed's endpoints (/cash-transfer, /transactions) use the seed's body
// {"message": "…"}; the bank-linking endpoints, which the seed does not
// specify, answer RFC 9457 problem+json. docs/client-api.md lists every
// endpoint with examples.
package clientapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/idempotency"
	"github.com/opencashier/cashier/internal/money"
)

// MaxBody is the body limit of the client API's requests.
const MaxBody = 16 << 10

// Deps are what the handlers need; all are required.
type Deps struct {
	Auth        clientauth.Authenticator
	Idempotency *idempotency.Store
	Banking     *banking.Service
}

// Handler serves the endpoints. Build it with New.
type Handler struct{ d Deps }

// New returns the handler. It returns errs.Invalid when a dependency is
// missing.
func New(d Deps) (*Handler, error) {
	if d.Auth == nil || d.Idempotency == nil || d.Banking == nil {
		return nil, errs.E(errs.Invalid, "clientapi.New", "Auth, Idempotency and Banking are required")
	}
	return &Handler{d: d}, nil
}

// Routes registers the seed 003 endpoints on mux:
//
//	POST   /banks                     link a bank (micro-deposits go out)
//	GET    /banks                     list linked banks
//	GET    /banks/{bankId}            one bank
//	POST   /banks/{bankId}/verify     confirm the two micro-deposit amounts
//	DELETE /banks/{bankId}            unlink
//	POST   /cash-transfer             DEPOSIT or WITHDRAWAL
//	GET    /transactions              history with limit, offset, filters
//	GET    /transactions/{orderId}    one transfer
func (h *Handler) Routes(mux *http.ServeMux) {
	wrap := func(f http.HandlerFunc) http.Handler {
		return httpx.NoStore(clientauth.Middleware(h.d.Auth, h.d.Idempotency.Middleware(f)))
	}
	mux.Handle("POST /banks", wrap(h.linkBank))
	mux.Handle("GET /banks", wrap(h.listBanks))
	mux.Handle("GET /banks/{bankId}", wrap(h.getBank))
	mux.Handle("POST /banks/{bankId}/verify", wrap(h.verifyBank))
	mux.Handle("DELETE /banks/{bankId}", wrap(h.removeBank))
	mux.Handle("POST /cash-transfer", wrap(h.cashTransfer))
	mux.Handle("GET /transactions", wrap(h.listTransactions))
	mux.Handle("GET /transactions/{orderId}", wrap(h.getTransaction))
}

// writeMessage answers err in the seed's shape {"message": "…"}, with the
// status of its code; internal errors are logged and shown generically.
func writeMessage(w http.ResponseWriter, r *http.Request, err error) {
	status := httpx.StatusOf(err)
	msg := errs.MessageOf(err)
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path)
		msg = "An internal error occurred. Please try again later."
	}
	httpx.WriteJSON(w, status, map[string]string{"message": msg})
}

// BankJSON is a linked bank on the wire.
type BankJSON struct {
	BankID            string `json:"bankId"`
	BankName          string `json:"bankName"`
	AccountHolderName string `json:"accountHolderName"`
	IBAN              string `json:"iban"`
	BIC               string `json:"bic,omitempty"`
	Status            string `json:"status"`
	AttemptsLeft      int    `json:"verificationAttemptsLeft"`
	CreatedDate       string `json:"createdDate"`
	UpdatedDate       string `json:"updatedDate"`
}

func bankJSON(b banking.Bank) BankJSON {
	return BankJSON{BankID: b.ID, BankName: b.BankName, AccountHolderName: b.HolderName, IBAN: b.MaskedIBAN(), BIC: b.BIC,
		Status: string(b.Status), AttemptsLeft: b.AttemptsLeft, CreatedDate: stamp(b.CreatedAt), UpdatedDate: stamp(b.UpdatedAt)}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (h *Handler) linkBank(w http.ResponseWriter, r *http.Request) {
	var body struct {
		BankName          string `json:"bankName"`
		AccountHolderName string `json:"accountHolderName"`
		IBAN              string `json:"iban"`
		BIC               string `json:"bic"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: MaxBody}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	b, err := h.d.Banking.LinkBank(r.Context(), clientauth.UserID(r.Context()),
		banking.NewBank{BankName: body.BankName, HolderName: body.AccountHolderName, IBAN: body.IBAN, BIC: body.BIC})
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, bankJSON(b))
}

func (h *Handler) listBanks(w http.ResponseWriter, r *http.Request) {
	banks, err := h.d.Banking.Banks(r.Context(), clientauth.UserID(r.Context()))
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	out := make([]BankJSON, 0, len(banks))
	for _, b := range banks {
		out = append(out, bankJSON(b))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (h *Handler) getBank(w http.ResponseWriter, r *http.Request) {
	b, err := h.d.Banking.Bank(r.Context(), clientauth.UserID(r.Context()), r.PathValue("bankId"))
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, bankJSON(b))
}

func (h *Handler) verifyBank(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Amounts []json.RawMessage `json:"amounts"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: MaxBody}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	if len(body.Amounts) != 2 {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, "clientapi.verifyBank", "amounts must list the two micro-deposit amounts, e.g. [0.12, 0.34]"))
		return
	}
	var amounts [2]string
	for i, raw := range body.Amounts {
		n, err := jsonNumber(raw, "amounts")
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		amounts[i] = n
	}
	b, err := h.d.Banking.VerifyBank(r.Context(), clientauth.UserID(r.Context()), r.PathValue("bankId"), amounts)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, bankJSON(b))
}

func (h *Handler) removeBank(w http.ResponseWriter, r *http.Request) {
	if err := h.d.Banking.RemoveBank(r.Context(), clientauth.UserID(r.Context()), r.PathValue("bankId")); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// jsonNumber returns the literal of a JSON number, refusing strings and
// every other type with errs.Invalid.
func jsonNumber(raw json.RawMessage, field string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9')) {
		return "", errs.Ef(errs.Invalid, "clientapi.jsonNumber", "field %q must be a number", field)
	}
	return string(raw), nil
}

func (h *Handler) cashTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		InstructionType string          `json:"instructionType"`
		Amount          json.RawMessage `json:"amount"`
		BankID          string          `json:"bankId"`
		AccountID       int64           `json:"accountId"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: MaxBody}); err != nil {
		writeMessage(w, r, err)
		return
	}
	if body.Amount == nil {
		writeMessage(w, r, errs.E(errs.Invalid, "clientapi.cashTransfer", "amount is required"))
		return
	}
	amount, err := jsonNumber(body.Amount, "amount")
	if err != nil {
		writeMessage(w, r, err)
		return
	}
	t, err := h.d.Banking.CashTransfer(r.Context(), banking.TransferRequest{
		UserID: clientauth.UserID(r.Context()), Type: banking.TransferType(body.InstructionType), Amount: amount,
		BankID: body.BankID, Login: body.AccountID, ClientRef: r.Header.Get(idempotency.KeyHeader),
	})
	if err != nil {
		writeMessage(w, r, err)
		return
	}
	msg := banking.MsgDepositSubmitted
	if t.Type == banking.Withdrawal {
		msg = banking.MsgWithdrawSubmitted
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// TransactionJSON is a transfer in the list of GET /transactions.
type TransactionJSON struct {
	OrderID         string      `json:"orderId"`
	TransactionType string      `json:"transactionType"`
	Amount          json.Number `json:"amount"`
	Status          string      `json:"status"`
	BankID          string      `json:"bankId"`
	BankName        string      `json:"bankName"`
	CreatedDate     string      `json:"createdDate"`
	UpdatedDate     string      `json:"updatedDate"`
}

// TransactionDetailJSON is the full record of GET /transactions/{orderId}.
type TransactionDetailJSON struct {
	OrderID             string      `json:"orderId"`
	UserID              string      `json:"userId"`
	TransactionType     string      `json:"transactionType"`
	Amount              json.Number `json:"amount"`
	Status              string      `json:"status"`
	BankID              string      `json:"bankId"`
	BankName            string      `json:"bankName"`
	BankInstructionName string      `json:"bankInstructionName"`
	PortfolioID         string      `json:"portfolioId"`
	BrokerInstructionID string      `json:"brokerInstructionId"`
	ClientInstructionID string      `json:"clientInstructionId"`
	CreatedDate         string      `json:"createdDate"`
	UpdatedDate         string      `json:"updatedDate"`
}

// plainNumber writes an amount as the seed does: 1000, not 1000.00.
func plainNumber(a money.Amount) json.Number {
	s := a.Decimal()
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return json.Number(s)
}

func (h *Handler) listTransactions(w http.ResponseWriter, r *http.Request) {
	const op = "clientapi.listTransactions"
	q := banking.Query{Limit: banking.DefaultLimit}
	v := r.URL.Query()
	if s, ok := v["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > banking.MaxLimit {
			writeMessage(w, r, errs.Ef(errs.Invalid, op, "limit must be a whole number between 1 and %d", banking.MaxLimit))
			return
		}
		q.Limit = n
	}
	if s, ok := v["offset"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 0 {
			writeMessage(w, r, errs.E(errs.Invalid, op, "offset must be a whole number, 0 or more"))
			return
		}
		q.Offset = n
	}
	q.Type = banking.TransferType(v.Get("transactionType"))
	q.Status = banking.TransferStatus(v.Get("status"))
	p, err := h.d.Banking.Transactions(r.Context(), clientauth.UserID(r.Context()), q)
	if err != nil {
		writeMessage(w, r, err)
		return
	}
	results := make([]TransactionJSON, 0, len(p.Results))
	for _, t := range p.Results {
		results = append(results, TransactionJSON{OrderID: t.OrderID, TransactionType: string(t.Type), Amount: plainNumber(t.Amount),
			Status: string(t.Status), BankID: t.BankID, BankName: t.BankName, CreatedDate: stamp(t.CreatedAt), UpdatedDate: stamp(t.UpdatedAt)})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"results":    results,
		"pagination": map[string]any{"total": p.Total, "limit": p.Limit, "offset": p.Offset, "hasMore": p.HasMore},
	})
}

func (h *Handler) getTransaction(w http.ResponseWriter, r *http.Request) {
	t, err := h.d.Banking.Transaction(r.Context(), clientauth.UserID(r.Context()), r.PathValue("orderId"))
	if err != nil {
		writeMessage(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, TransactionDetailJSON{
		OrderID: t.OrderID, UserID: t.UserID, TransactionType: string(t.Type), Amount: plainNumber(t.Amount), Status: string(t.Status),
		BankID: t.BankID, BankName: t.BankName, BankInstructionName: t.BankName, PortfolioID: strconv.FormatInt(t.Login, 10),
		BrokerInstructionID: t.BrokerRef, ClientInstructionID: t.ClientRef, CreatedDate: stamp(t.CreatedAt), UpdatedDate: stamp(t.UpdatedAt),
	})
}
