package idempotency_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/idempotency"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

type rig struct {
	url   string
	clock *clock.Fake
	runs  atomic.Int64
	// While hold is set, the handler signals entered and waits for release.
	hold             atomic.Bool
	entered, release chan struct{}
}

// newRig serves POST /orders behind a fake authentication (the user is the
// X-User header) and the idempotency middleware. The handler counts runs and
// answers 201 with the run number, or 400 for a body "bad".
func newRig(t *testing.T, db *sqlstore.DB) *rig {
	t.Helper()
	r := &rig{clock: clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)), entered: make(chan struct{}), release: make(chan struct{})}
	store, err := idempotency.New(db, idempotency.Options{Clock: r.clock, MaxBody: 1024})
	if err != nil {
		t.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.runs.Add(1)
		if r.hold.Load() {
			r.entered <- struct{}{}
			<-r.release
		}
		body, _ := io.ReadAll(req.Body)
		w.Header().Set("Content-Type", "application/json")
		if string(body) == "bad" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"message":"bad body","run":%d}`, n)
			return
		}
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"run":%d,"body":%q}`, n, body)
	})
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			next.ServeHTTP(w, req.WithContext(clientauth.WithUserID(req.Context(), req.Header.Get("X-User"))))
		})
	}
	srv := httptest.NewServer(auth(store.Middleware(handler)))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

type answer struct {
	status   int
	body     string
	replayed string
	code     string
}

func (r *rig) post(t *testing.T, user, key, body string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", r.url+"/orders", strings.NewReader(body))
	req.Header.Set("X-User", user)
	if key != "" {
		req.Header.Set(idempotency.KeyHeader, key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, body: string(raw), replayed: res.Header.Get(idempotency.ReplayedHeader)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		var p struct{ Code string }
		_ = json.Unmarshal(raw, &p)
		a.code = p.Code
	}
	return a
}

func TestReplayAndMismatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		first := r.post(t, "u1", "key-1", `{"amount":10}`)
		if first.status != 201 || first.replayed != "" {
			t.Fatalf("first request: %+v", first)
		}
		again := r.post(t, "u1", "key-1", `{"amount":10}`)
		if again.status != 201 || again.body != first.body || again.replayed != "true" {
			t.Errorf("same key, same body: %+v, want a replay of %+v", again, first)
		}
		other := r.post(t, "u1", "key-1", `{"amount":11}`)
		if other.status != 422 || other.code != idempotency.CodeMismatch {
			t.Errorf("same key, other body: %+v, want 422", other)
		}
		// Errors are replayed too.
		bad := r.post(t, "u1", "key-2", "bad")
		badAgain := r.post(t, "u1", "key-2", "bad")
		if bad.status != 400 || badAgain.status != 400 || badAgain.body != bad.body || badAgain.replayed != "true" {
			t.Errorf("error replay: first %+v, again %+v", bad, badAgain)
		}
		// Keys are per user: another user's key-1 is a new request.
		if a := r.post(t, "u2", "key-1", `{"amount":10}`); a.status != 201 || a.replayed != "" {
			t.Errorf("another user's same key: %+v", a)
		}
		// Without a key every request runs.
		before := r.runs.Load()
		r.post(t, "u1", "", `{"amount":10}`)
		r.post(t, "u1", "", `{"amount":10}`)
		if got := r.runs.Load() - before; got != 2 {
			t.Errorf("requests without a key ran %d times, want 2", got)
		}
		// 23 hours later the key still replays; after 24 hours it is new.
		r.clock.Advance(23 * time.Hour)
		if a := r.post(t, "u1", "key-1", `{"amount":10}`); a.body != first.body || a.replayed != "true" {
			t.Errorf("replay after 23 hours: %+v", a)
		}
		r.clock.Advance(time.Hour)
		if a := r.post(t, "u1", "key-1", `{"amount":12}`); a.status != 201 || a.replayed != "" {
			t.Errorf("key after 24 hours: %+v, want a new run", a)
		}
		if runs := r.runs.Load(); runs != 6 {
			t.Errorf("handler ran %d times, want 6", runs)
		}
	}, idempotency.Schema)
}

func TestBadKeysAndBodies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		cases := []struct {
			name, user, key, body string
			status                int
		}{
			{"key too long", "u1", strings.Repeat("k", 256), "{}", 400},
			{"key with a space", "u1", "a key", "{}", 400},
			{"body over the limit", "u1", "big", strings.Repeat("x", 1025), 413},
			{"no user", "", "k", "{}", 500},
		}
		for _, c := range cases {
			if a := r.post(t, c.user, c.key, c.body); a.status != c.status {
				t.Errorf("%s: %d %s, want %d", c.name, a.status, a.body, c.status)
			}
		}
		if n := r.runs.Load(); n != 0 {
			t.Errorf("handler ran %d times for refused requests", n)
		}
	}, idempotency.Schema)
}

func TestInFlight(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		r.hold.Store(true)
		done := make(chan answer)
		go func() { done <- r.post(t, "u1", "slow", `{"amount":10}`) }()
		select {
		case <-r.entered: // the first request is inside the handler
		case a := <-done:
			t.Fatalf("first request finished without entering the handler: %+v", a)
		}
		if a := r.post(t, "u1", "slow", `{"amount":10}`); a.status != 409 || a.code != idempotency.CodeInFlight {
			t.Errorf("concurrent request with the same key: %+v, want 409", a)
		}
		close(r.release)
		first := <-done
		r.hold.Store(false)
		if first.status != 201 {
			t.Fatalf("first request: %+v", first)
		}
		if a := r.post(t, "u1", "slow", `{"amount":10}`); a.body != first.body || a.replayed != "true" {
			t.Errorf("after the first finished: %+v, want its replay", a)
		}
		if n := r.runs.Load(); n != 1 {
			t.Errorf("handler ran %d times, want 1", n)
		}
	}, idempotency.Schema)
}

func TestPurgeAndPanic(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		store, err := idempotency.New(db, idempotency.Options{Clock: fc, Scope: func(*http.Request) string { return "u1" }})
		if err != nil {
			t.Fatal(err)
		}
		var runs atomic.Int64
		panics := atomic.Bool{}
		panics.Store(true)
		h := store.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			runs.Add(1)
			if panics.Load() {
				panic(http.ErrAbortHandler) // the server drops the connection quietly
			}
			w.WriteHeader(201)
		}))
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		post := func() (int, error) {
			req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
			req.Header.Set(idempotency.KeyHeader, "k")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			res.Body.Close()
			return res.StatusCode, nil
		}
		if _, err := post(); err == nil {
			t.Fatal("a panicking handler answered")
		}
		// The panic freed the key: the retry runs.
		panics.Store(false)
		if st, err := post(); st != 201 || err != nil {
			t.Fatalf("retry after a panic: %d %v", st, err)
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("runs = %d, want 2", n)
		}
		if n, err := store.Purge(context.Background()); n != 0 || err != nil {
			t.Errorf("purge of a fresh key: %d %v", n, err)
		}
		fc.Advance(24 * time.Hour)
		if n, err := store.Purge(context.Background()); n != 1 || err != nil {
			t.Errorf("purge after 24 hours: %d %v", n, err)
		}
	}, idempotency.Schema)
}
