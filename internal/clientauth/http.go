package clientauth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/ratelimit"
)

type ctxKey struct{}

// WithUserID returns ctx carrying an authenticated user id, as Middleware
// does; tests of handlers behind the middleware use it.
func WithUserID(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, ctxKey{}, userID)
}

// UserID returns the user id that Middleware put in the request context, or
// "" when the request did not pass through it.
func UserID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// BearerToken returns the token of an "Authorization: Bearer …" header, or
// "" when there is none.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Authenticator checks an access token; *Service implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, accessToken string) (userID string, err error)
}

// Middleware lets through requests with a valid bearer access token and puts
// the user id in their context (read it with UserID). Other requests get 401
// problem+json with a WWW-Authenticate header, and nothing of next runs.
func Middleware(auth Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := BearerToken(r)
		if token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="client-api"`)
			httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "clientauth.Middleware", "an Authorization: Bearer access token is required"))
			return
		}
		userID, err := auth.Authenticate(r.Context(), token)
		if err != nil {
			if errs.CodeOf(err) == errs.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="client-api", error="invalid_token"`)
			}
			httpx.WriteProblem(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUserID(r.Context(), userID)))
	})
}

// TokenResponse is the body of a successful login or refresh.
type TokenResponse struct {
	AccessToken      string `json:"accessToken"`
	TokenType        string `json:"tokenType"`
	ExpiresIn        int64  `json:"expiresIn"`
	RefreshToken     string `json:"refreshToken"`
	RefreshExpiresIn int64  `json:"refreshExpiresIn"`
}

// Handler serves the token endpoints. Build it with NewHandler.
type Handler struct {
	svc     *Service
	limiter *ratelimit.Limiter
}

// NewHandler returns the HTTP endpoints of svc. limiter, when not nil,
// limits login and refresh attempts per client address (httpx.ClientIP).
func NewHandler(svc *Service, limiter *ratelimit.Limiter) *Handler {
	return &Handler{svc: svc, limiter: limiter}
}

// Routes registers POST /api/v2/auth/login, /refresh and /logout on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v2/auth/login", h.login)
	mux.HandleFunc("POST /api/v2/auth/refresh", h.refresh)
	mux.HandleFunc("POST /api/v2/auth/logout", h.logout)
}

func (h *Handler) limited(w http.ResponseWriter, r *http.Request) bool {
	if h.limiter == nil || h.limiter.Allow(httpx.ClientIP(r)) {
		return false
	}
	httpx.WriteProblem(w, r, errs.E(errs.RateLimited, "clientauth.Handler", "too many attempts; try again later"))
	return true
}

func (h *Handler) answer(w http.ResponseWriter, t Tokens) {
	now := h.svc.clock.Now()
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, TokenResponse{
		AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int64(t.AccessExpiresAt.Sub(now) / time.Second),
		RefreshToken: t.RefreshToken, RefreshExpiresIn: int64(t.RefreshExpiresAt.Sub(now) / time.Second),
	})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.limited(w, r) {
		return
	}
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: 8 << 10}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	t, err := h.svc.Login(r.Context(), body.Email, body.Password, body.Code)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	h.answer(w, t)
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	if h.limited(w, r) {
		return
	}
	var body struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: 4 << 10}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	t, err := h.svc.Refresh(r.Context(), body.RefreshToken)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	h.answer(w, t)
}

// logout revokes the family of the bearer token or of a refresh token in
// the body (either works; a client whose access token expired still logs
// out with its refresh token). It answers 204.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := httpx.DecodeJSON(w, r, &body, httpx.DecodeOptions{MaxBytes: 4 << 10, AllowEmpty: true}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	bearer := BearerToken(r)
	if bearer == "" && body.RefreshToken == "" {
		httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "clientauth.logout", "give the access token as Bearer or the refreshToken in the body"))
		return
	}
	for _, t := range []string{bearer, body.RefreshToken} {
		if t == "" {
			continue
		}
		if err := h.svc.Logout(r.Context(), t); err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
