// Package ctraderapi serves the endpoints the cTrader backend calls on the
// broker CRM (spec §4): POST {base}/oauth2/crmApiToken,
// /oauth2/onetime/authorize, /oauth2/authorize, /oauth2/onetime/generate and
// /oauth2/logout. Every request and answer is JSON; every failure is the
// spec's status with a body {"error", "message", "code"} (§6.1):
//
//	400 (MISSING_REQUIRED_PARAMETER / INVALID_REQUEST)  missing field or parameter, malformed JSON, wrong type
//	403 CH_CLIENT_AUTH_FAILURE       bad password, missing/bad/expired crmApiToken, source network not allowed
//	403 CH_INSUFFICIENT_PERMISSIONS  the user is disabled, or the inappToken is missing/not theirs
//	404 NOT_FOUND                    unknown (well-formed) token or userId
//	410 CID_TOKEN_EXPIRED            the token in the body (or the inappToken) expired
//	413 PAYLOAD_TOO_LARGE            body above the size limit
//	417 CID_NON_EXISTED_TOKEN        a token that is not well formed
//	429 REQUEST_FREQUENCY_EXCEEDED   rate limit
package ctraderapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/ratelimit"
)

// Service is the part of identity.Service the endpoints use.
type Service interface {
	IssueCRMToken(ctx context.Context, password string) (string, time.Time, error)
	VerifyCRMToken(ctx context.Context, token string) error
	ExchangeLoginToken(ctx context.Context, code string) (identity.Exchange, error)
	VerifyAccessToken(ctx context.Context, accessToken string) (identity.Authorization, error)
	GenerateInAppOT(ctx context.Context, ctidUserID int64, inappToken string) (string, error)
	Logout(ctx context.Context, ctidUserID int64, accessToken string) (int64, error)
}

// Options configures the endpoints. The zero value is usable.
type Options struct {
	// BasePath is prefixed to every path, e.g. "/cid" or
	// "/api/v1/ctrader"; empty means the paths sit at the root.
	BasePath string
	// AllowedNetworks, when not empty, are the only source networks
	// cTrader's calls may come from; others get 403.
	AllowedNetworks []netip.Prefix
	// MaxBodyBytes bounds request bodies; default 16 KiB.
	MaxBodyBytes int64
	// RateEvery and RateBurst limit the calls per client address to all
	// endpoints: one call refilled every RateEvery, up to RateBurst at once.
	// Defaults: 10ms and 200 (cTrader's backend calls from few addresses).
	RateEvery time.Duration
	RateBurst int
	// PasswordEvery and PasswordBurst limit /oauth2/crmApiToken per client
	// address, against password guessing. Defaults: 6s and 10.
	PasswordEvery time.Duration
	PasswordBurst int
	Clock         clock.Clock  // for the rate limits; default system clock
	Logger        *slog.Logger // default slog.Default()
}

// API is the cTrader-facing HTTP surface.
type API struct {
	svc      Service
	opt      Options
	mux      *http.ServeMux
	calls    *ratelimit.Limiter
	password *ratelimit.Limiter
	log      *slog.Logger
}

// New returns the endpoints as an http.Handler that serves the paths under
// opt.BasePath + "/oauth2/". It returns an errs.Invalid error for a base
// path that does not start with "/" or ends with one.
func New(svc Service, opt Options) (*API, error) {
	const op = "ctraderapi.New"
	base := opt.BasePath
	if base != "" && (!strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") || strings.ContainsAny(base, " {}")) {
		return nil, errs.Ef(errs.Invalid, op, "base path %q must start with / and not end with one", base)
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 16 << 10
	}
	if opt.RateEvery <= 0 {
		opt.RateEvery = 10 * time.Millisecond
	}
	if opt.RateBurst <= 0 {
		opt.RateBurst = 200
	}
	if opt.PasswordEvery <= 0 {
		opt.PasswordEvery = 6 * time.Second
	}
	if opt.PasswordBurst <= 0 {
		opt.PasswordBurst = 10
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	a := &API{svc: svc, opt: opt, mux: http.NewServeMux(), log: opt.Logger,
		calls:    ratelimit.New(opt.RateEvery, opt.RateBurst, opt.Clock),
		password: ratelimit.New(opt.PasswordEvery, opt.PasswordBurst, opt.Clock)}
	a.mux.HandleFunc("POST "+base+"/oauth2/crmApiToken", a.crmAPIToken)
	a.mux.HandleFunc("POST "+base+"/oauth2/onetime/authorize", a.authenticated(a.exchange))
	a.mux.HandleFunc("POST "+base+"/oauth2/authorize", a.authenticated(a.authorize))
	a.mux.HandleFunc("POST "+base+"/oauth2/onetime/generate", a.authenticated(a.generate))
	a.mux.HandleFunc("POST "+base+"/oauth2/logout", a.authenticated(a.logout))
	a.mux.HandleFunc(base+"/oauth2/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No such endpoint.")
	})
	return a, nil
}

// Prefix is the path prefix to mount the API at on a ServeMux:
// mux.Handle(api.Prefix(), api).
func (a *API) Prefix() string { return a.opt.BasePath + "/oauth2/" }

// ServeHTTP implements http.Handler: source-network check, rate limit, then
// the endpoint. Answers are never cached.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ip := httpx.ClientIP(r)
	if !a.allowed(ip) {
		a.log.WarnContext(r.Context(), "cTrader endpoint called from a network not allowed", "ip", ip, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, "CH_CLIENT_AUTH_FAILURE", "Client authentication failed")
		return
	}
	if !a.calls.Allow(ip) {
		writeError(w, http.StatusTooManyRequests, "REQUEST_FREQUENCY_EXCEEDED", "Too many requests; slow down.")
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) allowed(ip string) bool {
	if len(a.opt.AllowedNetworks) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range a.opt.AllowedNetworks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// errorBody is the cTrader error contract.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	httpx.WriteJSON(w, status, errorBody{Error: http.StatusText(status), Message: message, Code: code})
}

// fail answers a service error with the spec's status and code.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch errs.CodeOf(err) {
	case errs.Invalid:
		writeError(w, http.StatusExpectationFailed, "CID_NON_EXISTED_TOKEN", "Invalid token format.")
	case errs.NotFound:
		writeError(w, http.StatusNotFound, "NOT_FOUND", errs.MessageOf(err))
	case errs.Expired:
		writeError(w, http.StatusGone, "CID_TOKEN_EXPIRED", "Token expired.")
	case errs.Unauthorized:
		writeError(w, http.StatusForbidden, "CH_CLIENT_AUTH_FAILURE", "Client authentication failed")
	case errs.Forbidden:
		writeError(w, http.StatusForbidden, "CH_INSUFFICIENT_PERMISSIONS", errs.MessageOf(err))
	case errs.RateLimited:
		writeError(w, http.StatusTooManyRequests, "REQUEST_FREQUENCY_EXCEEDED", errs.MessageOf(err))
	case errs.Unavailable:
		writeError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "The service is unavailable; retry later.")
	default:
		a.log.ErrorContext(r.Context(), "cTrader endpoint failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "An internal error occurred.")
	}
}

// decode reads the JSON body into dst and answers 400/413 itself on failure.
func (a *API) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	err := httpx.DecodeJSON(w, r, dst, httpx.DecodeOptions{MaxBytes: a.opt.MaxBodyBytes, AllowUnknown: true})
	if err == nil {
		return true
	}
	if httpx.StatusOf(err) == http.StatusRequestEntityTooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", errs.MessageOf(err))
		return false
	}
	writeError(w, http.StatusBadRequest, "INVALID_REQUEST", errs.MessageOf(err))
	return false
}

func missing(w http.ResponseWriter, name string) {
	writeError(w, http.StatusBadRequest, "MISSING_REQUIRED_PARAMETER", "Required parameter '"+name+"' is missing")
}

// crmToken reads the crmApiToken from the query: `crmApiToken`, or `token`
// as the older docs name it.
func crmToken(r *http.Request) string {
	q := r.URL.Query()
	if t := q.Get("crmApiToken"); t != "" {
		return t
	}
	return q.Get("token")
}

// authenticated checks the crmApiToken before running h.
func (a *API) authenticated(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := crmToken(r)
		if tok == "" {
			missing(w, "crmApiToken")
			return
		}
		if err := a.svc.VerifyCRMToken(r.Context(), tok); err != nil {
			if errs.Is(err, errs.Unauthorized) {
				writeError(w, http.StatusForbidden, "CH_CLIENT_AUTH_FAILURE", "Client authentication failed")
				return
			}
			a.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// POST /oauth2/crmApiToken {"password"} → {"crmApiToken"}.
func (a *API) crmAPIToken(w http.ResponseWriter, r *http.Request) {
	if !a.password.Allow(httpx.ClientIP(r)) {
		writeError(w, http.StatusTooManyRequests, "REQUEST_FREQUENCY_EXCEEDED", "Too many attempts; slow down.")
		return
	}
	var in struct {
		Password *string `json:"password"`
	}
	if !a.decode(w, r, &in) {
		return
	}
	if in.Password == nil || *in.Password == "" {
		missing(w, "password")
		return
	}
	tok, _, err := a.svc.IssueCRMToken(r.Context(), *in.Password)
	if err != nil {
		if errs.Is(err, errs.Unauthorized) {
			a.log.WarnContext(r.Context(), "crmApiToken refused: wrong password", "ip", httpx.ClientIP(r))
		}
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"crmApiToken": tok})
}

// exchangeOut is the answer of /oauth2/onetime/authorize.
type exchangeOut struct {
	AccessToken string `json:"accessToken,omitempty"`
	UserID      int64  `json:"userId"`
	InAppToken  string `json:"inappToken,omitempty"`
}

// POST /oauth2/onetime/authorize {"code"} → {"accessToken"?, "userId", "inappToken"}.
func (a *API) exchange(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code *string `json:"code"`
	}
	if !a.decode(w, r, &in) {
		return
	}
	if in.Code == nil || *in.Code == "" {
		missing(w, "code")
		return
	}
	ex, err := a.svc.ExchangeLoginToken(r.Context(), *in.Code)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, exchangeOut{AccessToken: ex.AccessToken, UserID: ex.CTIDUserID, InAppToken: ex.InAppToken})
}

// POST /oauth2/authorize {"accessToken"} → {"userId", "inappToken"}.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AccessToken *string `json:"accessToken"`
	}
	if !a.decode(w, r, &in) {
		return
	}
	if in.AccessToken == nil || *in.AccessToken == "" {
		missing(w, "accessToken")
		return
	}
	au, err := a.svc.VerifyAccessToken(r.Context(), *in.AccessToken)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		UserID     int64  `json:"userId"`
		InAppToken string `json:"inappToken,omitempty"`
	}{au.CTIDUserID, au.InAppToken})
}

// POST /oauth2/onetime/generate?inappToken= {"userId"} → {"token"}.
func (a *API) generate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID *int64 `json:"userId"`
	}
	if !a.decode(w, r, &in) {
		return
	}
	if in.UserID == nil {
		missing(w, "userId")
		return
	}
	userID := *in.UserID
	if userID <= 0 {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "user not found")
		return
	}
	tok, err := a.svc.GenerateInAppOT(r.Context(), userID, r.URL.Query().Get("inappToken"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// POST /oauth2/logout?userId=&accessToken= → 200 with an empty body.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("userId")
	if raw == "" {
		missing(w, "userId")
		return
	}
	userID, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || userID <= 0 {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "Parameter 'userId' must be a positive integer")
		return
	}
	if _, err := a.svc.Logout(r.Context(), userID, q.Get("accessToken")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
