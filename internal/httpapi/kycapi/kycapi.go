// Package kycapi serves the API the broker's KYC system uses to tell the
// cashier a user's verified KYC level and country:
//
//	PUT /api/kyc/v1/users/{userID}  {"level": 2, "country": "DE", "reference": "case-8812"}
//	GET /api/kyc/v1/users/{userID}
//
// Both answer the user's profile as JSON. Calls carry the broker's API key
// as a bearer token ("Authorization: Bearer <key>"), compared in constant
// time. Errors are RFC 9457 problem documents (application/problem+json):
// 400 for a malformed body or profile, 401 without the right key, 404 for
// an unknown user (when a user directory is configured) or when the API is
// off, 405 for another method, 413 for a body above the limit. Changes are
// made as actor "broker:kyc-api" and audited by compliance.
//
// docs/compliance.md holds the OpenAPI description of these paths.
package kycapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
)

// Actor is who the API's changes are recorded as.
const Actor = "broker:kyc-api"

// MinKeyLength is the shortest API key New accepts.
const MinKeyLength = 32

// Service is what the API needs of *compliance.Service.
type Service interface {
	SetKYC(ctx context.Context, actor string, userID string, p compliance.Profile) error
	Profile(ctx context.Context, userID string) (compliance.Profile, error)
}

// Users tells whether a user exists; *identity.Service implements it.
// UserByID returns errs.NotFound for an unknown id.
type Users interface {
	UserByID(ctx context.Context, id string) (identity.User, error)
}

// Options configures the API.
type Options struct {
	// APIKey is the bearer token the broker's KYC system sends, at least
	// MinKeyLength characters. Empty turns the API off: every request is
	// answered 404, as if it were not mounted.
	APIKey string
	// Users, when set, makes the API answer 404 for a user the cashier
	// does not know instead of keeping a profile for it.
	Users Users
	// MaxBodyBytes bounds a request body; default 4 KiB.
	MaxBodyBytes int64
	Logger       *slog.Logger // default slog.Default()
}

type handler struct {
	svc     Service
	opt     Options
	keyHash [32]byte
	log     *slog.Logger
}

// New returns the API as an http.Handler serving the paths under
// /api/kyc/v1/. It returns errs.Invalid without a service or with an API
// key shorter than MinKeyLength.
func New(svc Service, opt Options) (http.Handler, error) {
	const op = "kycapi.New"
	switch {
	case svc == nil:
		return nil, errs.E(errs.Invalid, op, "a compliance service is required")
	case opt.APIKey != "" && len(opt.APIKey) < MinKeyLength:
		return nil, errs.Ef(errs.Invalid, op, "the KYC API key must be at least %d characters", MinKeyLength)
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 4 << 10
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	h := &handler{svc: svc, opt: opt, keyHash: sha256.Sum256([]byte(opt.APIKey)), log: opt.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/kyc/v1/users/{userID}", h.user)
	mux.HandleFunc("/api/kyc/", h.notFound)
	return httpx.NoStore(mux), nil
}

// ProfileJSON is a user's KYC profile on the wire.
type ProfileJSON struct {
	UserID    string `json:"userId"`
	Level     int    `json:"level"`
	Country   string `json:"country"`
	Source    string `json:"source"` // "api", "staff" or "default" (no profile stored)
	Reference string `json:"reference"`
	UpdatedBy string `json:"updatedBy,omitempty"`
	// UpdatedAt is RFC 3339 in UTC; absent for the default profile.
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

func profileJSON(p compliance.Profile) ProfileJSON {
	out := ProfileJSON{UserID: p.UserID, Level: p.Level, Country: p.Country, Source: p.Source, Reference: p.Reference, UpdatedBy: p.UpdatedBy}
	if !p.Stored {
		out.Source = "default"
		return out
	}
	at := p.UpdatedAt.UTC()
	out.UpdatedAt = &at
	return out
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	httpx.WriteProblem(w, r, errs.E(errs.NotFound, "kycapi", "There is no such KYC API resource."))
}

// authorized checks the bearer token in constant time (of the hashes, so
// the key's length does not leak either).
func (h *handler) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], h.keyHash[:]) == 1
}

func (h *handler) user(w http.ResponseWriter, r *http.Request) {
	if h.opt.APIKey == "" {
		h.notFound(w, r)
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kyc-api"`)
		httpx.WriteProblem(w, r, errs.E(errs.Unauthorized, "kycapi", "A valid KYC API key is required (Authorization: Bearer <key>)."))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.get(w, r)
	case http.MethodPut:
		h.put(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeStatusProblem(w, r, http.StatusMethodNotAllowed, "EMETHOD", "Use GET or PUT on a KYC user.")
	}
}

// writeStatusProblem answers a problem whose status has no errs code.
func writeStatusProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(httpx.Problem{Type: httpx.ProblemTypeBase + strings.ToLower(strings.TrimPrefix(code, "E")),
		Title: http.StatusText(status), Status: status, Detail: detail, Instance: r.URL.Path, Code: code})
}

// knownUser checks the user with the directory, if there is one.
func (h *handler) knownUser(ctx context.Context, userID string) error {
	if h.opt.Users == nil {
		return nil
	}
	if _, err := h.opt.Users.UserByID(ctx, userID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return errs.Ef(errs.NotFound, "kycapi", "There is no user %s.", userID)
		}
		return err
	}
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userID")
	if err := h.knownUser(r.Context(), userID); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	p, err := h.svc.Profile(r.Context(), userID)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, profileJSON(p))
}

// putBody is the PUT request. Level is read from its JSON text, so a
// string, 2.0 or 2.5 is refused rather than converted or rounded.
type putBody struct {
	Level     json.RawMessage `json:"level"`
	Country   *string         `json:"country"`
	Reference string          `json:"reference"`
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	const op = "kycapi.put"
	userID := r.PathValue("userID")
	var in putBody
	if err := httpx.DecodeJSON(w, r, &in, httpx.DecodeOptions{MaxBytes: h.opt.MaxBodyBytes}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	text := string(in.Level)
	if text == "" || text == "null" {
		httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, op, `"level" is required: a whole number from 0 to %d`, compliance.MaxLevel))
		return
	}
	level, err := strconv.Atoi(text)
	if err != nil {
		if len(text) > 20 {
			text = text[:20] + "…"
		}
		httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, op, `"level" must be a whole number from 0 to %d, not %s`, compliance.MaxLevel, text))
		return
	}
	if in.Country == nil || *in.Country == "" {
		httpx.WriteProblem(w, r, errs.E(errs.Invalid, op, `"country" is required: an ISO 3166-1 alpha-2 code such as "DE"`))
		return
	}
	if err := h.knownUser(r.Context(), userID); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	p := compliance.Profile{Level: level, Country: *in.Country, Source: compliance.SourceAPI, Reference: in.Reference}
	if err := h.svc.SetKYC(r.Context(), Actor, userID, p); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	stored, err := h.svc.Profile(r.Context(), userID)
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "KYC profile set by the broker", "user", userID, "level", stored.Level, "country", stored.Country)
	httpx.WriteJSON(w, http.StatusOK, profileJSON(stored))
}
