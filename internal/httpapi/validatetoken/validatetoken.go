// Package validatetoken serves seed 000's POST /api/validate-token, for
// brokers who build their own cashier front end on OpenCashier's backend:
// the front end posts the in-app one-time token from its URL; the endpoint
// validates and consumes it (or, in handoff mode, redeems cTrader's token),
// and answers with the user, their trading accounts with balances, and a
// short cashier-session token that replaces the one-time token.
//
// Request:  {"token": "<one-time token>", "account": 67890}   (account optional)
// Response: {"valid": true, "userId": 12345, "email": "...", "tradingLogin": 67890,
//
//	"accounts": [{"login": 67890, "balance": 10000.00, "currency": "USD", "environment": "live"}],
//	"sessionToken": "...", "sessionExpiresAt": "2026-03-02T09:30:00Z"}
//
// Errors use seed 000's shape {"error", "message", "code"}: 400
// INVALID_REQUEST, 401 INVALID_TOKEN (unknown, used, expired or malformed),
// 403 ACCOUNT_NOT_OWNED, 413 PAYLOAD_TOO_LARGE, 429 RATE_LIMITED, 503
// SERVICE_UNAVAILABLE.
package validatetoken

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/ratelimit"
)

// BalanceReader reads a trading account's balance from the platform. It
// returns errs.NotFound for an unknown login.
type BalanceReader interface {
	Balance(ctx context.Context, login int64) (money.Amount, error)
}

// AccountReader is the read side of a platform.Connector.
type AccountReader interface {
	Account(ctx context.Context, login int64) (platform.Account, error)
}

// ConnectorBalances reads balances through a platform connector.
func ConnectorBalances(c AccountReader) BalanceReader { return connectorBalances{c} }

type connectorBalances struct{ c AccountReader }

func (b connectorBalances) Balance(ctx context.Context, login int64) (money.Amount, error) {
	a, err := b.c.Account(ctx, login)
	if err != nil {
		return money.Amount{}, err
	}
	return a.Balance, nil
}

// Service is the part of identity.Service the endpoint uses.
type Service interface {
	OpenInApp(ctx context.Context, token string, account int64) (identity.CashierSession, error)
	Accounts(ctx context.Context, userID string) ([]identity.Account, error)
}

// Options configures the endpoint.
type Options struct {
	Balances BalanceReader // required
	// MaxBodyBytes bounds the request body; default 4 KiB.
	MaxBodyBytes int64
	// RateEvery and RateBurst limit calls per client address. Defaults:
	// 200ms and 20.
	RateEvery time.Duration
	RateBurst int
	// BalanceTimeout bounds the reading of all balances; default 5s. An
	// account whose balance cannot be read in time is listed with a null
	// balance.
	BalanceTimeout time.Duration
	Clock          clock.Clock
	Logger         *slog.Logger
}

type handler struct {
	svc   Service
	opt   Options
	limit *ratelimit.Limiter
	log   *slog.Logger
}

// New returns the endpoint as an http.Handler serving
// "POST /api/validate-token". It returns errs.Invalid without a balance
// reader.
func New(svc Service, opt Options) (http.Handler, error) {
	if opt.Balances == nil {
		return nil, errs.E(errs.Invalid, "validatetoken.New", "a balance reader is required")
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 4 << 10
	}
	if opt.RateEvery <= 0 {
		opt.RateEvery = 200 * time.Millisecond
	}
	if opt.RateBurst <= 0 {
		opt.RateBurst = 20
	}
	if opt.BalanceTimeout <= 0 {
		opt.BalanceTimeout = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	h := &handler{svc: svc, opt: opt, limit: ratelimit.New(opt.RateEvery, opt.RateBurst, opt.Clock), log: opt.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/validate-token", h.validate)
	return httpx.NoStore(mux), nil
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, title, code, message string) {
	httpx.WriteJSON(w, status, errorBody{Error: title, Message: message, Code: code})
}

// Account is one trading account in the answer.
type Account struct {
	Login       int64        `json:"login"`
	Balance     *json.Number `json:"balance"` // null when it could not be read
	Currency    string       `json:"currency"`
	Environment string       `json:"environment"`
}

// Answer is the successful response.
type Answer struct {
	Valid            bool      `json:"valid"`
	UserID           int64     `json:"userId"`
	Email            string    `json:"email"`
	TradingLogin     int64     `json:"tradingLogin"`
	Accounts         []Account `json:"accounts"`
	SessionToken     string    `json:"sessionToken"`
	SessionExpiresAt time.Time `json:"sessionExpiresAt"`
}

func (h *handler) validate(w http.ResponseWriter, r *http.Request) {
	if !h.limit.Allow(httpx.ClientIP(r)) {
		writeError(w, http.StatusTooManyRequests, "Too Many Requests", "RATE_LIMITED", "Too many requests; slow down.")
		return
	}
	var in struct {
		Token   *string `json:"token"`
		Account int64   `json:"account"`
	}
	if err := httpx.DecodeJSON(w, r, &in, httpx.DecodeOptions{MaxBytes: h.opt.MaxBodyBytes, AllowUnknown: true}); err != nil {
		if httpx.StatusOf(err) == http.StatusRequestEntityTooLarge {
			writeError(w, http.StatusRequestEntityTooLarge, "Payload Too Large", "PAYLOAD_TOO_LARGE", errs.MessageOf(err))
			return
		}
		writeError(w, http.StatusBadRequest, "Invalid Request", "INVALID_REQUEST", errs.MessageOf(err))
		return
	}
	if in.Token == nil || *in.Token == "" {
		writeError(w, http.StatusBadRequest, "Invalid Request", "INVALID_REQUEST", "Required parameter 'token' is missing")
		return
	}
	if in.Account < 0 {
		writeError(w, http.StatusBadRequest, "Invalid Request", "INVALID_REQUEST", "Parameter 'account' must be a trading account number")
		return
	}
	sess, err := h.svc.OpenInApp(r.Context(), *in.Token, in.Account)
	if err != nil {
		switch errs.CodeOf(err) {
		case errs.Invalid, errs.NotFound, errs.Expired:
			writeError(w, http.StatusUnauthorized, "Invalid Token", "INVALID_TOKEN", "Authentication token is invalid or expired.")
		case errs.Forbidden:
			writeError(w, http.StatusForbidden, "Forbidden", "ACCOUNT_NOT_OWNED", errs.MessageOf(err))
		case errs.Unavailable:
			writeError(w, http.StatusServiceUnavailable, "Service Unavailable", "SERVICE_UNAVAILABLE", "The service is unavailable; retry later.")
		default:
			h.log.ErrorContext(r.Context(), "validate-token failed", "err", err)
			writeError(w, http.StatusInternalServerError, "Internal Error", "INTERNAL_ERROR", "An internal error occurred.")
		}
		return
	}
	accounts, err := h.svc.Accounts(r.Context(), sess.UserID)
	if err != nil {
		h.log.ErrorContext(r.Context(), "validate-token: accounts not read", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal Error", "INTERNAL_ERROR", "An internal error occurred.")
		return
	}
	out := Answer{Valid: true, UserID: sess.CTIDUserID, Email: sess.Email, TradingLogin: sess.Account,
		Accounts: h.balances(r.Context(), accounts), SessionToken: sess.Token, SessionExpiresAt: sess.ExpiresAt}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// balances reads every account's balance concurrently, within the timeout.
func (h *handler) balances(ctx context.Context, accounts []identity.Account) []Account {
	ctx, cancel := context.WithTimeout(ctx, h.opt.BalanceTimeout)
	defer cancel()
	out := make([]Account, len(accounts))
	done := make(chan int, len(accounts))
	for i, a := range accounts {
		out[i] = Account{Login: a.Login, Currency: a.Currency, Environment: string(a.Environment)}
		go func() {
			defer func() { done <- i }()
			bal, err := h.opt.Balances.Balance(ctx, a.Login)
			if err != nil {
				h.log.WarnContext(ctx, "validate-token: balance not read", "login", a.Login, "err", err)
				return
			}
			n := bal.JSONNumber()
			out[i].Balance = &n
		}()
	}
	for range accounts {
		<-done
	}
	return out
}
