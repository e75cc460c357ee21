package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/server"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const serveSynopsis = `Run the HTTP server: open the database, apply pending migrations, run the
job workers, and answer /healthz, /readyz and /metrics. SIGINT or SIGTERM
shuts it down gracefully: no new connections, in-flight requests and jobs
finish (or jobs are released) within the shutdown timeout.`

func (m *Main) serve(ctx context.Context, args []string) error {
	cfg, err := m.settings("serve", serveSynopsis, args, config.Settings)
	if err != nil {
		return err
	}
	log := newLogger(cfg, m.Stderr)
	// Packages that log through slog's default logger with a request's
	// context (httpx, for one) get the same format and the request id.
	prev := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prev)

	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx, schemas()...)
	if err != nil {
		return errs.Wrap("serve: migrate", err)
	}
	if len(applied) > 0 {
		log.Info("applied migrations", "versions", applied)
	}

	srv := server.New(server.Options{
		Addr:            cfg.Addr,
		Logger:          log,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Ready: func(ctx context.Context) error {
			if err := db.Ping(ctx); err != nil {
				return &errs.Error{Code: errs.Unavailable, Op: "readyz", Message: "database is not reachable", Err: err}
			}
			return nil
		},
	})
	// Later features mount their routes here with srv.Mount(pattern, handler).
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	m.startJobs(ctx, db, cfg, log, srv)

	public := cfg.PublicURL
	if public == "" {
		public = "http://" + addr
	}
	log.Info("cashier started", "addr", addr, "public_url", public,
		"database", config.RedactURL(cfg.DatabaseURL), "version", buildVersion())
	m.setReady(addr)
	return srv.Serve(ctx)
}

// jobHandlers returns the handler of every job kind serve runs, keyed by
// kind. A feature that enqueues jobs adds its kind here; until the first
// one (the platform balance push) exists, only tests add kinds.
func (m *Main) jobHandlers() map[string]jobs.Handler {
	kinds := map[string]jobs.Handler{}
	maps.Copy(kinds, m.jobKinds)
	return kinds
}

// startJobs runs the job workers until ctx is cancelled, and makes the
// server's graceful shutdown wait for them: running jobs get most of the
// shutdown timeout to finish, then they are cancelled and released for
// another worker. With no workers configured or no job kinds it runs none.
func (m *Main) startJobs(ctx context.Context, db *sqlstore.DB, cfg config.Config, log *slog.Logger, srv *server.Server) {
	handlers := m.jobHandlers()
	switch {
	case cfg.JobWorkers == 0:
		log.Info("job workers off (CASHIER_JOB_WORKERS=0)")
		return
	case len(handlers) == 0:
		log.Info("no job kinds to run; job workers not started")
		return
	}
	// Leave the runner time to release cancelled jobs within the deadline.
	grace := cfg.ShutdownTimeout - min(cfg.ShutdownTimeout/3, 5*time.Second)
	runner := jobs.NewRunner(db, jobs.Options{
		Workers:       cfg.JobWorkers,
		ShutdownGrace: grace,
		Logger:        log,
		Registerer:    srv.Registry(),
	})
	for _, kind := range slices.Sorted(maps.Keys(handlers)) {
		runner.Handle(kind, handlers[kind])
	}
	stopped := make(chan error, 1)
	go func() { stopped <- runner.Run(ctx) }()
	srv.OnShutdown(func(sctx context.Context) error {
		select {
		case err := <-stopped:
			return err
		case <-sctx.Done():
			return errs.E(errs.Unavailable, "serve: jobs", "job workers did not stop within the shutdown timeout; their jobs are retried when their leases end")
		}
	})
	log.Info("job workers started", "workers", cfg.JobWorkers, "kinds", slices.Sorted(maps.Keys(handlers)))
}

// newLogger builds the process logger: JSON or text on w at the configured
// level, with the request id of the context added to every record.
func newLogger(c config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(server.LogHandler(h))
}
