package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/server"
)

// logSink collects JSON log lines and lets a test wait for one.
type logSink struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, strings.TrimRight(string(p), "\n"))
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// records returns the log records whose msg is msg, decoded.
func (s *logSink) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range s.lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// wait blocks until a record with msg is logged.
func (s *logSink) wait(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		changed := s.changed
		found := false
		for _, l := range s.lines {
			found = found || strings.Contains(l, `"msg":"`+msg+`"`)
		}
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %q log record within 10s", msg)
		}
	}
}

func newServer(t *testing.T, opts server.Options) (*server.Server, *logSink) {
	t.Helper()
	sink := newLogSink()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	return server.New(opts), sink
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestProbes(t *testing.T) {
	dbDown := &errs.Error{Code: errs.Unavailable, Op: "readyz", Message: "database is not reachable", Err: errors.New("dial tcp: connection refused")}
	tests := []struct {
		name       string
		ready      func(context.Context) error
		path       string
		wantStatus int
		wantBody   string
	}{
		{"healthz", nil, "/healthz", 200, "ok\n"},
		{"healthz ignores readiness", func(context.Context) error { return dbDown }, "/healthz", 200, "ok\n"},
		{"readyz without check", nil, "/readyz", 200, `{"status":"ready"}` + "\n"},
		{"readyz with passing check", func(context.Context) error { return nil }, "/readyz", 200, `{"status":"ready"}` + "\n"},
		{"readyz with failing check", func(context.Context) error { return dbDown }, "/readyz", 503,
			`{"status":"unavailable","reason":"database is not reachable"}` + "\n"},
		{"readyz hides internal details", func(context.Context) error { return errors.New("secret host 10.0.0.5") }, "/readyz", 503,
			`{"status":"unavailable","reason":"An internal error occurred."}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newServer(t, server.Options{Ready: tc.ready})
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			resp, body := get(t, ts.URL+tc.path, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		wantEcho bool
	}{
		{"sane id is echoed", "req-123_abc.def:9", true},
		{"missing id is generated", "", false},
		{"id with spaces is replaced", "a b", false},
		{"id with a newline is replaced", "a\nb", false},
		{"overlong id is replaced", strings.Repeat("a", 129), false},
		{"128 characters are accepted", strings.Repeat("b", 128), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newServer(t, server.Options{})
			var seen string
			s.Mount("GET /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = server.RequestID(r.Context())
			}))
			h := s.Handler()
			req := httptest.NewRequest(http.MethodGet, "/echo", nil)
			if tc.incoming != "" {
				req.Header[server.RequestIDHeader] = []string{tc.incoming}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			got := w.Header().Get(server.RequestIDHeader)
			if tc.wantEcho && got != tc.incoming {
				t.Errorf("response id = %q, want the incoming %q", got, tc.incoming)
			}
			if !tc.wantEcho && (got == "" || got == tc.incoming) {
				t.Errorf("response id = %q, want a fresh one", got)
			}
			if seen != got {
				t.Errorf("handler saw id %q, response carries %q", seen, got)
			}
			logs := sink.records(t, "http request")
			if len(logs) != 1 || logs[0]["request_id"] != got {
				t.Errorf("access log = %v, want one record with request_id %q", logs, got)
			}
		})
	}
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	s, _ := newServer(t, server.Options{})
	seen := map[string]bool{}
	for range 100 {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		id := w.Header().Get(server.RequestIDHeader)
		if seen[id] {
			t.Fatalf("request id %q generated twice", id)
		}
		seen[id] = true
	}
}

func TestAccessLog(t *testing.T) {
	s, sink := newServer(t, server.Options{})
	s.Mount("POST /things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("made " + r.PathValue("id")))
		slog.New(server.LogHandler(slog.NewJSONHandler(sink, nil))).InfoContext(r.Context(), "inside handler")
	}))
	h := s.Handler()
	req := httptest.NewRequest(http.MethodPost, "/things/42", nil)
	req.Header.Set(server.RequestIDHeader, "abc")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))

	logs := sink.records(t, "http request")
	if len(logs) != 1 {
		t.Fatalf("got %d access-log records at info level, want 1 (probes log at debug): %v", len(logs), logs)
	}
	got := logs[0]
	for _, k := range []string{"time", "duration_ms", "remote"} {
		if _, ok := got[k]; !ok {
			t.Errorf("access log lacks %q: %v", k, got)
		}
		delete(got, k)
	}
	want := map[string]any{
		"level": "INFO", "msg": "http request", "request_id": "abc", "method": "POST",
		"path": "/things/42", "route": "POST /things/{id}", "status": 201.0, "bytes": 7.0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access log (-want +got):\n%s", diff)
	}
	inside := sink.records(t, "inside handler")
	if len(inside) != 1 || inside[0]["request_id"] != "abc" {
		t.Errorf("a handler's own log lacks the request id: %v", inside)
	}
}

func TestMetrics(t *testing.T) {
	s, _ := newServer(t, server.Options{})
	s.Mount("GET /things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	get(t, ts.URL+"/things/1", nil)
	get(t, ts.URL+"/things/2", nil)
	get(t, ts.URL+"/nowhere", nil)
	resp, body := get(t, ts.URL+"/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`cashier_http_requests_total{code="200",method="GET",route="GET /things/{id}"} 2`,
		`cashier_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`cashier_http_request_duration_seconds_count{method="GET",route="GET /things/{id}"} 2`,
		`cashier_http_requests_in_flight 1`, // the /metrics request itself
		"go_goroutines ",
		"process_cpu_seconds_total ",
		"go_build_info{",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	s, sink := newServer(t, server.Options{})
	s.Mount("GET /boom", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("kaboom") }))
	s.Mount("GET /abort", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	ts := httptest.NewServer(s.Handler())
	ts.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	defer ts.Close()

	resp, body := get(t, ts.URL+"/boom", map[string]string{server.RequestIDHeader: "r1"})
	if resp.StatusCode != 500 {
		t.Errorf("status = %d, want 500", resp.StatusCode)
	}
	if diff := cmp.Diff(`{"error":"internal error","request_id":"r1"}`+"\n", body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	panics := sink.records(t, "handler panicked")
	if len(panics) != 1 || panics[0]["panic"] != "kaboom" || panics[0]["request_id"] != "r1" ||
		!strings.Contains(panics[0]["stack"].(string), "server_test.go") {
		t.Errorf("panic log = %v, want one record with the panic, request id and stack", panics)
	}
	if resp, _ := get(t, ts.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("server does not answer after a panic: %d", resp.StatusCode)
	}
	if _, err := http.Get(ts.URL + "/abort"); err == nil {
		t.Error("a handler that panics with http.ErrAbortHandler got an answer, want the connection cut")
	}
	_, metrics := get(t, ts.URL+"/metrics", nil)
	if !strings.Contains(metrics, `cashier_http_requests_total{code="500",method="GET",route="GET /boom"} 1`) {
		t.Error("the panicked request is not counted as a 500")
	}
}

// TestGracefulShutdown cancels Serve while a request is in flight: the
// listener closes at once, the request still completes, shutdown work runs
// after it, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	s, sink := newServer(t, server.Options{ShutdownTimeout: time.Minute})
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var order []string
	s.Mount("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		mu.Lock()
		order = append(order, "request finished")
		mu.Unlock()
		_, _ = w.Write([]byte("done"))
	}))
	s.OnShutdown(func(ctx context.Context) error {
		mu.Lock()
		order = append(order, "shutdown hook")
		mu.Unlock()
		return nil
	})
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-started
	cancel()
	sink.wait(t, "stopped accepting connections; draining in-flight requests")
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("server accepts new connections while shutting down")
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request got %q, %v; want it to complete", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
	if diff := cmp.Diff([]string{"request finished", "shutdown hook"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if len(sink.records(t, "shutdown complete")) != 1 {
		t.Error("no shutdown complete record")
	}
}

func TestShutdownTimeoutCutsOffRequests(t *testing.T) {
	s, _ := newServer(t, server.Options{ShutdownTimeout: 50 * time.Millisecond})
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s.Mount("GET /stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}))
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	clientErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/stuck")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	cancel()
	err = <-served
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "did not finish within 50ms") {
		t.Errorf("Serve = %v, want an EUNAVAILABLE error about the timeout", err)
	}
	if err := <-clientErr; err == nil {
		t.Error("the stuck request completed, want its connection closed")
	}
}

func TestShutdownHookError(t *testing.T) {
	s, _ := newServer(t, server.Options{})
	s.OnShutdown(func(ctx context.Context) error { return errors.New("jobs still leased") })
	if _, err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Serve(ctx)
	if err == nil || !strings.Contains(err.Error(), "jobs still leased") {
		t.Errorf("Serve = %v, want the hook's error", err)
	}
}

func TestReadyzWhileDraining(t *testing.T) {
	s, sink := newServer(t, server.Options{ShutdownTimeout: time.Minute})
	started, release := make(chan struct{}), make(chan struct{})
	s.Mount("GET /hold", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}))
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	// Hold the server in shutdown with one in-flight request.
	go func() {
		if resp, err := http.Get("http://" + addr + "/hold"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	sink.wait(t, "shutting down")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"reason":"shutting down"`) {
		t.Errorf("/readyz during shutdown = %d %s, want 503 shutting down", w.Code, w.Body)
	}
	close(release)
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestListenOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := newServer(t, server.Options{Addr: ln.Addr().String()})
	_, err = s.Listen()
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "cannot listen on "+ln.Addr().String()) {
		t.Errorf("Listen = %v, want EUNAVAILABLE naming the address", err)
	}
}

// Every answer — probes, metrics, a 404 for an address nothing serves, a
// mounted API — is not to be sniffed, framed or given a referrer; a
// handler that sets its own policy replaces the default (one policy sent).
func TestBaselineSecurityHeaders(t *testing.T) {
	s, _ := newServer(t, server.Options{})
	s.Mount("GET /api/thing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	s.Mount("GET /page", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors https://app.example")
		_, _ = io.WriteString(w, "<p>page</p>")
	}))
	for path, csp := range map[string]string{
		"/healthz": server.DefaultCSP, "/metrics": server.DefaultCSP, "/nowhere": server.DefaultCSP, "/api/thing": server.DefaultCSP,
		"/page": "default-src 'self'; frame-ancestors https://app.example",
	} {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		got := map[string][]string{"nosniff": w.Header().Values("X-Content-Type-Options"), "referrer": w.Header().Values("Referrer-Policy"),
			"csp": w.Header().Values("Content-Security-Policy")}
		want := map[string][]string{"nosniff": {"nosniff"}, "referrer": {"no-referrer"}, "csp": {csp}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s headers (-want +got):\n%s", path, diff)
		}
	}
}
