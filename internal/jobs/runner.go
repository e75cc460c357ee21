package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Handler runs one attempt of a job. It returns nil when the job is done, an
// error to have it retried with backoff (or dead once its attempts are used
// up), Retry to choose the delay, or Permanent to give up at once. A panic
// counts as a failed attempt. Handlers must tolerate running more than once
// for the same job (at-least-once delivery) and should stop when ctx is
// cancelled: at shutdown, or when the runner learns that its lease was lost.
type Handler func(ctx context.Context, j Job) error

// Options configures a Runner. Zero values take the defaults shown.
type Options struct {
	// Workers is how many handlers run at once (default 4), and the most
	// jobs one claim takes.
	Workers int
	// Lease is how long a claim holds a job before another runner may claim
	// it again (default 1 minute), measured by Clock.
	Lease time.Duration
	// HeartbeatInterval is how often, in real time, a running job's lease
	// is renewed to Clock.Now()+Lease (default Lease/3, at most Lease/2;
	// negative: never, so a handler must finish within Lease). A renewal
	// that finds the job claimed by another run cancels the handler's
	// context.
	HeartbeatInterval time.Duration
	// PollInterval is how often, in real time, Run looks for due jobs when
	// not woken by Notify (default 1 second).
	PollInterval time.Duration
	// ShutdownGrace is how long, in real time, Run lets running handlers
	// finish after its context is cancelled (default 10 seconds). Then their
	// contexts are cancelled and the jobs of those that return are released:
	// queued again, due at once, the interrupted attempt not counted.
	ShutdownGrace time.Duration
	// Clock decides when jobs are due, lease ends and backoff (default
	// clock.System).
	Clock clock.Clock
	// Logger receives one line per failure, dead letter and lost lease
	// (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the metrics (see the package documentation);
	// nil registers nothing. Runners sharing a Registerer share metrics.
	Registerer prometheus.Registerer
	// BackoffBase and BackoffMax shape the delay after a failure: before
	// attempt n+1 the runner waits a uniformly random time between zero and
	// min(BackoffMax, BackoffBase·2^(n-1)) ("full jitter"). Defaults 2
	// seconds and 1 hour.
	BackoffBase, BackoffMax time.Duration
	// WorkerID is stored on each job this runner claims (default
	// host-pid-random).
	WorkerID string
	// StatsInterval is how often, in real time, Run refreshes the
	// jobs_queued and jobs_dead gauges and purges old done jobs (default 15
	// seconds).
	StatsInterval time.Duration
	// Retention is how long done jobs are kept (by Clock, from when they
	// finished) before Run purges them; zero keeps them forever. Dead jobs
	// are never purged.
	Retention time.Duration
}

// Defaults of Options.
const (
	DefaultWorkers       = 4
	DefaultLease         = time.Minute
	DefaultPollInterval  = time.Second
	DefaultShutdownGrace = 10 * time.Second
	DefaultBackoffBase   = 2 * time.Second
	DefaultBackoffMax    = time.Hour
	DefaultStatsInterval = 15 * time.Second
)

const (
	// writeTimeout bounds the database writes that record a run's outcome;
	// they use their own context so a cancelled run still records it.
	writeTimeout = 30 * time.Second
	// stopWait is how long Run waits for handlers to return after
	// cancelling their contexts at the end of the shutdown grace.
	stopWait = 5 * time.Second
	// maxErrorLen bounds the stored error text.
	maxErrorLen = 4000
	// purgeBatch bounds how many done jobs one maintenance pass deletes.
	purgeBatch = 1000
)

var errLeaseLost = errors.New("jobs: lease lost to another run")

// Runner claims due jobs and runs their handlers. Any number of runners, in
// one process or many, may serve the same database.
type Runner struct {
	db    *sqlstore.DB
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	m     *metrics

	mu       sync.RWMutex
	handlers map[string]Handler

	wake      chan struct{}
	active    atomic.Bool
	inflight  atomic.Int64
	completer completer

	// jitter picks the actual delay for a backoff ceiling; tests replace it.
	jitter func(time.Duration) time.Duration
	// afterHeartbeat, if set, is told the outcome of each lease renewal
	// (tests only).
	afterHeartbeat func(jobID string, kept bool)
	// afterCompletionQueued, if set, is called when a completion starts
	// waiting for the write in flight; beforeCompletionWrite, if set, is
	// called with the number of completions a write is about to record
	// (tests only).
	afterCompletionQueued func()
	beforeCompletionWrite func(n int)
	// txCount counts the runner's write transactions by purpose, for the
	// benchmarks and tests.
	txCount txCounts
}

// txCounts counts a runner's write transactions (each Transact call once,
// whatever its internal retries).
type txCounts struct {
	// claims counts claim transactions.
	claims atomic.Int64
	// completions counts transactions that record "done" outcomes.
	completions atomic.Int64
	// others counts the other outcome and lease-renewal transactions.
	others atomic.Int64
}

// NewRunner returns a runner over db. Register handlers with Handle, then
// call Run (or RunOnce).
func NewRunner(db *sqlstore.DB, opts Options) *Runner {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = opts.Lease / 3
	}
	if opts.HeartbeatInterval > 0 {
		opts.HeartbeatInterval = max(min(opts.HeartbeatInterval, opts.Lease/2), time.Millisecond)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = DefaultStatsInterval
	}
	if opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	r := &Runner{
		db:       db,
		opts:     opts,
		clock:    opts.Clock,
		log:      opts.Logger.With("component", "jobs", "worker", opts.WorkerID),
		m:        newMetrics(opts.Registerer),
		handlers: map[string]Handler{},
		wake:     make(chan struct{}, 1),
		jitter:   fullJitter,
	}
	r.completer.r = r
	return r
}

// Handle registers the handler for a kind of job. A runner claims only jobs
// of kinds it has handlers for. It panics if kind is empty, h is nil, or
// the kind already has a handler: these are programming mistakes.
func (r *Runner) Handle(kind string, h Handler) {
	if kind == "" || h == nil {
		panic("jobs: Handle needs a kind and a handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[kind]; dup {
		panic("jobs: a handler for kind " + kind + " is already registered")
	}
	r.handlers[kind] = h
}

func (r *Runner) kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ks := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (r *Runner) handler(kind string) Handler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.handlers[kind]
}

// Notify wakes Run to look for due jobs now rather than at its next poll.
// It never blocks. Call it from tx.AfterCommit after Enqueue.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs due jobs until ctx is cancelled, then stops claiming
// and shuts down as Options.ShutdownGrace describes. It returns nil after a
// clean shutdown, errs.Invalid if no handler is registered, errs.Conflict if
// the runner is already running, and errs.Unavailable if some handlers did
// not return even after their contexts were cancelled (their jobs are retried
// once their leases end). Database errors while running are logged and
// retried at the next poll.
func (r *Runner) Run(ctx context.Context) error {
	const op = "jobs.Run"
	if len(r.kinds()) == 0 {
		return errs.E(errs.Invalid, op, "no job handlers are registered")
	}
	if !r.active.CompareAndSwap(false, true) {
		return errs.E(errs.Conflict, op, "the runner is already running")
	}
	defer r.active.Store(false)

	// Handlers do not see ctx's cancellation directly: they get the
	// shutdown grace first.
	hctx, stopHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHandlers()
	var wg sync.WaitGroup
	finished := make(chan struct{}, r.opts.Workers)
	free := r.opts.Workers
	poll := time.NewTicker(r.opts.PollInterval)
	defer poll.Stop()
	maint := time.NewTicker(r.opts.StatsInterval)
	defer maint.Stop()
	r.maintain(ctx)

	more := true // there may be due jobs: claim before waiting
	for ctx.Err() == nil {
		if more {
			// Workers whose completions were written together finish
			// together: count them all, so one claim refills them.
			free += drain(finished)
		}
		if more && free > 0 {
			batch, claimed, err := r.claim(ctx, free)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					r.log.Error("claiming jobs failed", "err", err)
				}
				more = false
			default:
				more = claimed == free
				for _, j := range batch {
					free--
					wg.Add(1)
					go func() {
						defer wg.Done()
						r.execute(hctx, j)
						finished <- struct{}{} // never blocks: capacity Workers
					}()
				}
			}
			if more && free > 0 {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
			more = true
		case <-poll.C:
			more = true
		case <-finished:
			free++
		case <-maint.C:
			r.maintain(ctx)
		}
	}
	return r.shutdown(&wg, stopHandlers)
}

// drain takes every value ready in ch without waiting and returns how
// many it took.
func drain(ch <-chan struct{}) int {
	for n := 0; ; n++ {
		select {
		case <-ch:
		default:
			return n
		}
	}
}

func (r *Runner) shutdown(wg *sync.WaitGroup, stopHandlers context.CancelFunc) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(r.opts.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	}
	r.log.Warn("shutdown grace is over; cancelling running handlers", "running", r.inflight.Load())
	stopHandlers()
	wait := time.NewTimer(stopWait)
	defer wait.Stop()
	select {
	case <-done:
		return nil
	case <-wait.C:
		return errs.Ef(errs.Unavailable, "jobs.Run",
			"%d handlers did not return after cancellation; their jobs are retried when their leases end", r.inflight.Load())
	}
}

// RunOnce claims the jobs that are due now, at most Options.Workers, runs
// them concurrently and returns how many it ran once all have finished.
// Handlers get ctx itself; if it is cancelled, the jobs whose handlers then
// fail are released instead of failed. Call it in a loop until it returns 0
// to drain the queue (tests and deterministic campaigns). It returns
// errs.Invalid if no handler is registered, and a wrapped database error if
// the claim fails.
func (r *Runner) RunOnce(ctx context.Context) (int, error) {
	if len(r.kinds()) == 0 {
		return 0, errs.E(errs.Invalid, "jobs.RunOnce", "no job handlers are registered")
	}
	batch, _, err := r.claim(ctx, r.opts.Workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, j := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.execute(ctx, j)
		}()
	}
	wg.Wait()
	return len(batch), nil
}

// claimedJob is a job and the token of the claim that holds it.
type claimedJob struct {
	Job
	token string
}

// execute runs one claimed job and records its outcome. hctx is cancelled
// only to stop the handler at shutdown.
func (r *Runner) execute(hctx context.Context, cj claimedJob) {
	kind := cj.Kind
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	r.m.running.WithLabelValues(kind).Inc()
	defer r.m.running.WithLabelValues(kind).Dec()

	jctx, cancel := context.WithCancelCause(hctx)
	defer cancel(nil)
	stopHeartbeat := r.heartbeat(jctx, cancel, cj)
	start := time.Now()
	err := call(jctx, r.handler(kind), cj.Job)
	r.m.durationS.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	stopHeartbeat()

	log := r.log.With("job", cj.ID, "kind", kind, "attempt", cj.Attempt)
	if errors.Is(context.Cause(jctx), errLeaseLost) {
		r.m.leaseLost.WithLabelValues(kind).Inc()
		log.Warn("job's lease passed to another run; this run's outcome is discarded", "err", err)
		return
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(hctx), writeTimeout)
	defer wcancel()
	var (
		kept  bool
		werr  error
		event string
	)
	switch {
	case err == nil:
		kept, werr = r.complete(wctx, cj)
		event = "done"
	case hctx.Err() != nil:
		kept, werr = r.release(wctx, cj)
		event = "released"
	default:
		event, kept, werr = r.fail(wctx, cj, err)
	}
	switch {
	case werr != nil:
		log.Error("recording the job's outcome failed; it runs again when its lease ends", "outcome", event, "handler_err", err, "err", werr)
	case !kept:
		r.m.leaseLost.WithLabelValues(kind).Inc()
		log.Warn("job's lease passed to another run; this run's outcome is discarded", "outcome", event, "handler_err", err)
	default:
		switch event {
		case "done":
			r.m.done.WithLabelValues(kind).Inc()
		case "retry":
			r.m.retried.WithLabelValues(kind).Inc()
			log.Warn("job failed; it will be retried", "err", err)
		case "dead":
			r.m.deadTotal.WithLabelValues(kind).Inc()
			log.Error("job is dead", "err", err, "permanent", IsPermanent(err))
		case "released":
			log.Info("job released at shutdown", "handler_err", err)
		}
	}
}

// call runs h, turning a panic into an error with the stack.
func call(ctx context.Context, h Handler, j Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return h(ctx, j)
}

// heartbeat renews the job's lease every HeartbeatInterval until the
// returned stop function is called. When a renewal finds the lease gone, it
// cancels the handler's context with errLeaseLost.
func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, cj claimedJob) (stop func()) {
	if r.opts.HeartbeatInterval < 0 {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.opts.HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
			kept, err := r.renew(wctx, cj)
			wcancel()
			if err != nil {
				r.log.Warn("renewing a job's lease failed", "job", cj.ID, "err", err)
				continue
			}
			if r.afterHeartbeat != nil {
				r.afterHeartbeat(cj.ID, kept)
			}
			if !kept {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// backoff returns the delay before the attempt after the given one.
func (r *Runner) backoff(attempt int) time.Duration {
	d := r.opts.BackoffBase
	for i := 1; i < attempt && d < r.opts.BackoffMax; i++ {
		d *= 2
	}
	return r.jitter(min(d, r.opts.BackoffMax))
}

// fullJitter returns a uniformly random duration in [0, d].
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// maintain refreshes the database-wide gauges and purges old done jobs.
func (r *Runner) maintain(ctx context.Context) {
	if err := r.refreshGauges(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("refreshing job metrics failed", "err", err)
	}
	if r.opts.Retention <= 0 {
		return
	}
	n, err := Purge(ctx, r.db, r.clock.Now().Add(-r.opts.Retention), purgeBatch)
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.Warn("purging done jobs failed", "err", err)
	case n > 0:
		r.log.Info("purged done jobs", "count", n)
	}
}

// refreshGauges sets jobs_queued and jobs_dead from the database, zeroing
// kinds that no longer have such jobs.
func (r *Runner) refreshGauges(ctx context.Context) error {
	rows, err := r.db.Query(ctx, `SELECT kind, state, COUNT(*) FROM jobs WHERE state IN ('queued', 'dead') GROUP BY kind, state`)
	if err != nil {
		return errs.Wrap("jobs.refreshGauges", err)
	}
	defer rows.Close()
	counts := map[State]map[string]float64{Queued: {}, Dead: {}}
	for rows.Next() {
		var (
			kind  string
			state State
			n     int64
		)
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return errs.Wrap("jobs.refreshGauges", err)
		}
		counts[state][kind] = float64(n)
	}
	if err := rows.Err(); err != nil {
		return errs.Wrap("jobs.refreshGauges", err)
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	for _, k := range r.kinds() {
		r.m.knownKinds[k] = true
	}
	for _, c := range counts {
		for k := range c {
			r.m.knownKinds[k] = true
		}
	}
	for k := range r.m.knownKinds {
		r.m.queued.WithLabelValues(k).Set(counts[Queued][k])
		r.m.dead.WithLabelValues(k).Set(counts[Dead][k])
	}
	return nil
}

// truncateError shortens an error text to maxErrorLen bytes on a rune
// boundary.
func truncateError(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
