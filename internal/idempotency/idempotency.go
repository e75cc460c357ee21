// Package idempotency makes POST requests safe to retry. A client sends an
// Idempotency-Key header; the first request with that key runs and its
// response (status, content type, body — errors included) is stored. Later
// requests with the same key, by the same user, are answered from storage:
//
//   - same key, same method, path and body: the first response is replayed,
//     with the header Idempotent-Replayed: true;
//   - same key, another body (or path): 422 problem+json, nothing runs;
//   - same key while the first request is still running: 409 problem+json.
//
// Keys live for TTL (24 hours by default) and are scoped per user, so two
// users may pick the same key. A request that stays "in flight" longer than
// InFlightTimeout (the process died mid-request) may be taken over by a retry.
// Requests without the header run normally.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the idempotency part of the database (version 00510).
var Schema = sqlstore.Schema{Name: "idempotency", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Header names.
const (
	KeyHeader      = "Idempotency-Key"
	ReplayedHeader = "Idempotent-Replayed"
)

// Defaults of Options.
const (
	DefaultTTL             = 24 * time.Hour
	DefaultInFlightTimeout = 5 * time.Minute
	MaxKeyLen              = 255
)

// Options configures a Store.
type Options struct {
	Clock clock.Clock // default clock.System
	// TTL is how long a key is remembered (default 24 hours).
	TTL time.Duration
	// InFlightTimeout is how long a started request blocks its key before a
	// retry may take the key over (default 5 minutes).
	InFlightTimeout time.Duration
	// MaxBody is the largest request body read (default httpx.DefaultMaxBody).
	MaxBody int64
	// Scope names the owner of a request's keys; the default is the user
	// id that clientauth.Middleware put in the context. A request with an
	// empty scope and a key is refused with 500, as the wiring is wrong.
	Scope func(*http.Request) string
}

// Store keeps keys and responses in the database. It is safe for concurrent
// use.
type Store struct {
	db  *sqlstore.DB
	opt Options
}

// New returns a Store. It returns errs.Invalid without a database or with a
// negative duration.
func New(db *sqlstore.DB, o Options) (*Store, error) {
	if db == nil {
		return nil, errs.E(errs.Invalid, "idempotency.New", "a database is required")
	}
	if o.TTL < 0 || o.InFlightTimeout < 0 || o.MaxBody < 0 {
		return nil, errs.E(errs.Invalid, "idempotency.New", "durations and sizes must not be negative")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.InFlightTimeout == 0 {
		o.InFlightTimeout = DefaultInFlightTimeout
	}
	if o.MaxBody == 0 {
		o.MaxBody = httpx.DefaultMaxBody
	}
	if o.Scope == nil {
		o.Scope = func(r *http.Request) string { return clientauth.UserID(r.Context()) }
	}
	return &Store{db: db, opt: o}, nil
}

// Purge deletes expired keys. It returns how many, or a database error.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?`, sqlstore.Micros(s.opt.Clock.Now()))
	if err != nil {
		return 0, errs.Wrap("idempotency.Purge", err)
	}
	return res.RowsAffected()
}

// stored is a finished response.
type stored struct {
	status      int
	contentType string
	body        string
}

// outcome of claiming a key.
type claim int

const (
	claimed claim = iota
	replay
	inFlight
	mismatch
)

// Middleware applies the rules of the package to POST requests of next that
// carry an Idempotency-Key header; other requests pass through untouched.
// Its own answers are problem+json: 400 for a malformed key, 413 for a body
// over MaxBody, 409 in flight, 422 for another body under the same key.
func (s *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(KeyHeader)
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		const op = "idempotency.Middleware"
		if !validKey(key) {
			httpx.WriteProblem(w, r, errs.Ef(errs.Invalid, op, "the Idempotency-Key header must be 1 to %d visible ASCII characters", MaxKeyLen))
			return
		}
		scope := s.opt.Scope(r)
		if scope == "" {
			httpx.WriteProblem(w, r, errs.E(errs.Internal, op, "idempotency middleware runs without a user scope"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				httpx.WriteProblem(w, r, &errs.Error{Code: errs.Invalid, Op: op, Message: "request body is too large", Err: tooLarge})
				return
			}
			httpx.WriteProblem(w, r, errs.E(errs.Invalid, op, "request body could not be read"))
			return
		}
		hash := requestHash(r, body)
		c, prev, err := s.claim(r.Context(), scope, key, hash)
		switch {
		case err != nil:
			httpx.WriteProblem(w, r, err)
			return
		case c == mismatch:
			writeProblem(w, r, http.StatusUnprocessableEntity, CodeMismatch, "this Idempotency-Key was used with another request; use a new key for a new request")
			return
		case c == inFlight:
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, http.StatusConflict, CodeInFlight, "a request with this Idempotency-Key is still being processed; retry later")
			return
		case c == replay:
			if prev.contentType != "" {
				w.Header().Set("Content-Type", prev.contentType)
			}
			w.Header().Set(ReplayedHeader, "true")
			w.WriteHeader(prev.status)
			_, _ = io.WriteString(w, prev.body)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		r.Body = io.NopCloser(bytes.NewReader(body))
		finished := false
		defer func() {
			if !finished {
				// The handler panicked: free the key so a retry runs.
				_, _ = s.db.Exec(context.WithoutCancel(r.Context()), `DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ?`, scope, key)
			}
		}()
		next.ServeHTTP(rec, r)
		finished = true
		if err := s.finish(context.WithoutCancel(r.Context()), scope, key, stored{status: rec.status, contentType: rec.Header().Get("Content-Type"), body: rec.buf.String()}); err != nil {
			// The request ran; its answer goes out. The key stays in flight
			// until InFlightTimeout, so a quick retry gets 409, not a rerun.
			slog.ErrorContext(r.Context(), "idempotent response not stored", "err", err, "path", r.URL.Path)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.buf.Bytes())
	})
}

// claim takes the key for this request or says why not.
func (s *Store) claim(ctx context.Context, scope, key, hash string) (claim, stored, error) {
	const op = "idempotency.claim"
	for range 3 {
		var c claim
		var prev stored
		err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			now := s.opt.Clock.Now()
			var rowHash, state string
			var created, expires int64
			err := tx.QueryRow(ctx, `SELECT request_hash, state, status, content_type, body, created_at, expires_at
				FROM idempotency_keys WHERE scope = ? AND idem_key = ?`+tx.ForUpdate(), scope, key).
				Scan(&rowHash, &state, &prev.status, &prev.contentType, &prev.body, &created, &expires)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				c = claimed
				_, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, created_at, expires_at)
					VALUES (?, ?, ?, 'in_flight', ?, ?)`, scope, key, hash, sqlstore.Micros(now), sqlstore.Micros(now.Add(s.opt.TTL)))
				return err
			case err != nil:
				return err
			}
			stale := state == "in_flight" && !now.Before(sqlstore.FromMicros(created).Add(s.opt.InFlightTimeout))
			if !now.Before(sqlstore.FromMicros(expires)) || stale {
				c = claimed
				_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET request_hash = ?, state = 'in_flight', status = 0, content_type = '', body = '',
					created_at = ?, expires_at = ? WHERE scope = ? AND idem_key = ?`,
					hash, sqlstore.Micros(now), sqlstore.Micros(now.Add(s.opt.TTL)), scope, key)
				return err
			}
			switch {
			case rowHash != hash:
				c = mismatch
			case state == "in_flight":
				c = inFlight
			default:
				c = replay
			}
			return nil
		})
		if sqlstore.IsUniqueViolation(err) {
			continue // a concurrent first request inserted the key; look again
		}
		if err != nil {
			return 0, stored{}, errs.Wrap(op, err)
		}
		return c, prev, nil
	}
	return inFlight, stored{}, nil
}

// finish stores the response of a claimed key.
func (s *Store) finish(ctx context.Context, scope, key string, res stored) error {
	_, err := s.db.Exec(ctx, `UPDATE idempotency_keys SET state = 'done', status = ?, content_type = ?, body = ?
		WHERE scope = ? AND idem_key = ?`, res.status, res.contentType, res.body, scope, key)
	if err != nil {
		return errs.Wrap("idempotency.finish", err)
	}
	return nil
}

// The machine codes of the middleware's own problems.
const (
	CodeInFlight = "EIDEMPOTENCY_IN_FLIGHT"
	CodeMismatch = "EIDEMPOTENCY_MISMATCH"
)

func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	body, _ := json.Marshal(httpx.Problem{
		Type: httpx.ProblemTypeBase + strings.ToLower(strings.TrimPrefix(code, "E")), Title: http.StatusText(status),
		Status: status, Detail: detail, Instance: r.URL.Path, Code: code,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func requestHash(r *http.Request, body []byte) string {
	h := sha256.New()
	_, _ = io.WriteString(h, r.Method+"\n"+r.URL.Path+"?"+r.URL.RawQuery+"\n")
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder buffers a response so it can be stored before it is sent.
// Headers go straight to the real writer's header map.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	buf         bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.buf.Write(p)
}
