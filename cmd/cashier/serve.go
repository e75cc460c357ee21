package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/server"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const serveSynopsis = `Run the HTTP server: open the database, apply pending migrations, run the
job workers, and answer /healthz, /readyz and /metrics, the cTrader-facing
/oauth2/* endpoints and, as the settings allow, the login and cashier
screens, payments and the sandbox provider (each part that is off is logged
with the reason). SIGINT or SIGTERM shuts it down gracefully: no new
connections, in-flight requests and jobs finish (or jobs are released)
within the shutdown timeout.`

func (m *Main) serve(ctx context.Context, args []string) error {
	cfg, err := m.settings("serve", serveSynopsis, args, config.Settings)
	if err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(m.Stderr, "Run 'cashier serve -h' to list the settings.")
		return usageError{err}
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
	srv, addr, err := startServer(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + addr
	}
	if _, err := m.compose(ctx, srv, wiring{cfg: cfg, db: db, log: log, registry: srv.Registry(),
		publicURL: public, internalURL: internalURL(addr)}); err != nil {
		abandon(ctx, srv)
		return err
	}
	log.Info("cashier started", "addr", addr, "public_url", public,
		"database", config.RedactURL(cfg.DatabaseURL), "version", buildVersion())
	m.setReady(addr)
	return srv.Serve(ctx)
}

// startServer migrates the database and binds the HTTP server, which
// answers /readyz by pinging the database. It returns the server and the
// address it listens on.
func startServer(ctx context.Context, cfg config.Config, db *sqlstore.DB, log *slog.Logger) (*server.Server, string, error) {
	applied, err := db.Migrate(ctx, schemas()...)
	if err != nil {
		return nil, "", errs.Wrap("serve: migrate", err)
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
	addr, err := srv.Listen()
	if err != nil {
		return nil, "", err
	}
	return srv, addr, nil
}

// compose builds the app, mounts its routes on srv and starts the job
// workers. A setting a package refuses is a usage error.
func (m *Main) compose(ctx context.Context, srv *server.Server, w wiring) (*app, error) {
	a, err := buildApp(ctx, w)
	if err != nil {
		if errs.CodeOf(err) == errs.Invalid {
			return nil, usageError{fmt.Errorf("settings: %w", err)}
		}
		return nil, errs.Wrap("serve: build", err)
	}
	for _, r := range a.routes {
		srv.Mount(r.pattern, r.handler)
	}
	a.logParts(w.log)
	m.startJobs(ctx, w.db, w.cfg, w.log, srv, a)
	startPeriodic(ctx, w.log, srv, a.periodic)
	return a, nil
}

// periodic is work run every so often (purges, retries), in every
// replica: each run must be idempotent. run returns how many things it
// did, for the log.
type periodic struct {
	name  string
	every time.Duration
	run   func(ctx context.Context) (int64, error)
}

// startPeriodic runs each task at once and then on its ticker until ctx is
// cancelled; the server's graceful shutdown waits for a run in progress
// (cancelled by ctx) to return.
func startPeriodic(ctx context.Context, log *slog.Logger, srv *server.Server, tasks []periodic) {
	if len(tasks) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(func() {
			tick := time.NewTicker(t.every)
			defer tick.Stop()
			for {
				n, err := t.run(ctx)
				switch {
				case err != nil && ctx.Err() == nil:
					log.Error("periodic work failed", "task", t.name, "err", err)
				case n > 0:
					log.Info("periodic work done", "task", t.name, "count", n)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	srv.OnShutdown(func(sctx context.Context) error {
		select {
		case <-done:
			return nil
		case <-sctx.Done():
			return errs.E(errs.Unavailable, "serve: periodic work", "periodic work did not stop within the shutdown timeout")
		}
	})
}

// abandon releases the socket of a server that will not serve: it serves
// with a context that is already over, which shuts it down at once.
func abandon(ctx context.Context, srv *server.Server) {
	done, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancel()
	_ = srv.Serve(done)
}

// startJobs runs the job workers until ctx is cancelled, and makes the
// server's graceful shutdown wait for them: running jobs get most of the
// shutdown timeout to finish, then they are cancelled and released for
// another worker. With no workers configured or no job kinds it runs none.
func (m *Main) startJobs(ctx context.Context, db *sqlstore.DB, cfg config.Config, log *slog.Logger, srv *server.Server, a *app) {
	kinds := a.jobKinds()
	for k := range m.jobKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	switch {
	case cfg.JobWorkers == 0:
		log.Info("job workers off (CASHIER_JOB_WORKERS=0)")
		return
	case len(kinds) == 0:
		log.Info("no job kinds to run; job workers not started")
		return
	}
	// Leave the runner time to release cancelled jobs within the deadline.
	grace := cfg.ShutdownTimeout - min(cfg.ShutdownTimeout/3, 5*time.Second)
	runner := jobs.NewRunner(db, jobs.Options{
		Workers:       cfg.JobWorkers,
		Lease:         cfg.JobLease,
		ShutdownGrace: grace,
		Logger:        log,
		Registerer:    srv.Registry(),
	})
	a.register(runner, m.jobKinds)
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
	log.Info("job workers started", "workers", cfg.JobWorkers, "kinds", kinds)
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
