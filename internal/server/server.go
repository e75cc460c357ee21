// Package server assembles the HTTP server of `cashier serve`: request ids,
// a structured access log, panic recovery, Prometheus metrics by route and
// status, the /healthz, /readyz and /metrics endpoints, and graceful
// shutdown. Later features add their routes with Mount and their shutdown
// work (the job runner) with OnShutdown.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opencashier/cashier/internal/errs"
)

// Options configures a Server.
type Options struct {
	// Addr is the host:port to listen on; port 0 picks a free port.
	Addr string
	// Logger receives the access log and server events. Nil discards them.
	Logger *slog.Logger
	// ShutdownTimeout bounds a graceful shutdown; zero means 15 seconds.
	ShutdownTimeout time.Duration
	// Ready reports whether the process can serve traffic (for example,
	// whether the database answers). /readyz calls it with a 5-second
	// deadline; nil means always ready.
	Ready func(ctx context.Context) error
	// Registry receives the HTTP metrics and the Go, process and build-info
	// collectors, and is what /metrics exposes. Nil creates a fresh one.
	Registry *prometheus.Registry
}

// Server is the HTTP server. Build it with New, add routes with Mount, then
// Listen and Serve.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	registry *prometheus.Registry
	metrics  *httpMetrics
	draining atomic.Bool

	mu         sync.Mutex
	listener   net.Listener
	onShutdown []func(ctx context.Context) error
}

// New builds a server with /healthz, /readyz and /metrics mounted. Every
// answer carries nosniff, no referrer and DefaultCSP unless its handler
// sets its own policy. It
// panics if the metrics cannot be registered in opts.Registry (a
// programming error: a collector registered twice).
func New(opts Options) *Server {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		opts:     opts,
		log:      slog.New(LogHandler(opts.Logger.Handler())),
		mux:      http.NewServeMux(),
		registry: opts.Registry,
	}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	s.metrics = newHTTPMetrics(s.registry)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		Registry: s.registry,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	s.handler = baseHeaders(s.requestID(s.observe(s.recoverPanics(s.mux))))
	return s
}

// Mount routes pattern (a net/http ServeMux pattern such as
// "POST /oauth2/crmApiToken" or "/inapp/") to h, behind the request-id,
// access-log, metrics and panic-recovery middleware. The pattern is the
// route label of the request metrics. It panics if the pattern is invalid or
// conflicts with one already mounted, as http.ServeMux does.
func (s *Server) Mount(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// Registry returns the Prometheus registry that /metrics exposes, for
// other packages' collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// OnShutdown registers fn to run during a graceful shutdown, after the HTTP
// server has stopped accepting connections and its in-flight requests have
// finished, within the same shutdown deadline (fn's ctx). Functions run in
// the order they were registered. The job runner uses it to stop claiming
// work and to finish or release its running jobs.
func (s *Server) OnShutdown(fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onShutdown = append(s.onShutdown, fn)
}

// Handler returns the full handler (routes and middleware), for tests that
// use httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listening socket and returns its address (with the real
// port when Options.Addr asked for port 0). It returns an errs.Unavailable
// error if the address cannot be bound.
func (s *Server) Listen() (string, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return "", &errs.Error{Code: errs.Unavailable, Op: "server.Listen", Message: "cannot listen on " + s.opts.Addr, Err: err}
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	return ln.Addr().String(), nil
}

// Serve answers requests on the socket bound by Listen (it calls Listen
// first if that has not happened) until ctx is done, then shuts down
// gracefully: it stops accepting connections, lets in-flight requests
// finish, runs the OnShutdown functions, all within the shutdown timeout.
// It returns nil after a clean shutdown; an error if the server failed, or
// an errs.Unavailable error if the timeout cut off requests or shutdown work.
func (s *Server) Serve(ctx context.Context) error {
	const op = "server.Serve"
	s.mu.Lock()
	ln := s.listener
	s.mu.Unlock()
	if ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
		ln = s.listener
		s.mu.Unlock()
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown closes the listeners, then calls this in a goroutine.
	closed := make(chan struct{})
	srv.RegisterOnShutdown(func() {
		s.log.Info("stopped accepting connections; draining in-flight requests", "timeout", s.opts.ShutdownTimeout.String())
		close(closed)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return errs.Wrap(op, err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	var problems []error
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		problems = append(problems, fmt.Errorf("in-flight requests did not finish within %s; their connections were closed", s.opts.ShutdownTimeout))
	}
	<-closed
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		problems = append(problems, err)
	}
	s.mu.Lock()
	hooks := append([]func(context.Context) error(nil), s.onShutdown...)
	s.mu.Unlock()
	for _, fn := range hooks {
		if err := fn(shutdownCtx); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		err := &errs.Error{Code: errs.Unavailable, Op: op, Message: "graceful shutdown incomplete", Err: errors.Join(problems...)}
		s.log.Error("shutdown incomplete", "err", err)
		return err
	}
	s.log.Info("shutdown complete")
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readiness is the body of /readyz.
type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable", Reason: "shutting down"})
		return
	}
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable", Reason: errs.MessageOf(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
