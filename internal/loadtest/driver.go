package loadtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Scenario is one kind of operation and its share of a mix.
type Scenario struct {
	Name   string
	Weight int // relative share; a scenario with weight 0 never runs
	// Run performs one operation. slot identifies the operation's place
	// among those in flight (0 ≤ slot < Plan.Concurrency); n counts the
	// operations started, from 0. Its error is classified by Kind.
	Run func(ctx context.Context, slot, n int) error
}

// Plan says what to drive, how hard and for how long.
type Plan struct {
	Scenarios []Scenario
	// Concurrency is the number of closed-loop workers (each starts an
	// operation when its previous one ends) or, with Rate, the most
	// operations in flight at once.
	Concurrency int
	// Rate, when positive, starts operations at this many per second on a
	// fixed schedule (open loop), whatever the latency; an operation that
	// must wait for a free slot keeps its scheduled start, so its latency
	// includes the wait (no coordinated omission). One that waited longer
	// than OpTimeout is not started and counts as failed (Missed).
	Rate float64
	// Ops stops after this many operations have started; Duration stops
	// starting new ones after this long. At least one must be set.
	Ops      int
	Duration time.Duration
	// OpTimeout bounds one operation (default 60 s).
	OpTimeout time.Duration
	// Seed makes the choice of scenario for each operation reproducible.
	Seed uint64
	// Progress, if set, is called about once a second while operations run.
	Progress func(Progress)
}

// Progress is a running count, for a live display.
type Progress struct {
	Elapsed  time.Duration
	Started  int
	OK       int
	Failed   int
	InFlight int
}

// Result is what a run measured.
type Result struct {
	// Elapsed runs from the first start to the last completion.
	Elapsed time.Duration
	// Scenarios holds, per scenario name, its successes, failures and the
	// latency of its successful operations.
	Scenarios map[string]*ScenarioResult
	// Errors counts failures by kind ("deposit: confirm: HTTP 503").
	Errors map[string]int
	// MaxLag is, with Rate, the longest an operation waited for a free
	// slot past its scheduled start.
	MaxLag time.Duration
	// Missed counts, with Rate, the operations that never started because
	// no slot came free within OpTimeout of their scheduled start (they are
	// failures too).
	Missed int
}

// ScenarioResult is one scenario's part of a Result.
type ScenarioResult struct {
	OK, Failed int
	Latency    Summary
}

// OK returns the successful operations of every scenario.
func (r Result) OK() int {
	n := 0
	for _, s := range r.Scenarios {
		n += s.OK
	}
	return n
}

// Failed returns the failed operations of every scenario.
func (r Result) Failed() int {
	n := 0
	for _, s := range r.Scenarios {
		n += s.Failed
	}
	return n
}

// Throughput returns successful operations per second of Elapsed.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK()) / r.Elapsed.Seconds()
}

// ErrorKinds returns the error kinds, most frequent first.
func (r Result) ErrorKinds() []string {
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if r.Errors[kinds[i]] != r.Errors[kinds[j]] {
			return r.Errors[kinds[i]] > r.Errors[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}

// Kinder is an error that names its own kind for the error counts.
type Kinder interface{ Kind() string }

// Kind classifies an operation's error for the error counts: the error's
// own Kind if it has one, "timeout" for a deadline, or its message.
func Kind(err error) string {
	var k Kinder
	switch {
	case errors.As(err, &k):
		return k.Kind()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return msg
}

// Run drives the plan until it is done or ctx ends, then waits for the
// operations in flight. It returns errs.Invalid for a plan without
// scenarios, bounds or concurrency.
func Run(ctx context.Context, p Plan) (Result, error) {
	const op = "loadtest.Run"
	total := 0
	for _, s := range p.Scenarios {
		if s.Weight < 0 || s.Run == nil {
			return Result{}, errs.Ef(errs.Invalid, op, "scenario %q needs a non-negative weight and a Run", s.Name)
		}
		total += s.Weight
	}
	switch {
	case total == 0:
		return Result{}, errs.E(errs.Invalid, op, "no scenario has a positive weight")
	case p.Concurrency <= 0:
		return Result{}, errs.E(errs.Invalid, op, "concurrency must be positive")
	case p.Ops <= 0 && p.Duration <= 0:
		return Result{}, errs.E(errs.Invalid, op, "set a number of operations or a duration")
	}
	if p.OpTimeout <= 0 {
		p.OpTimeout = time.Minute
	}
	r := &runner{plan: p, total: total, hists: map[string]*Histogram{}, res: Result{Scenarios: map[string]*ScenarioResult{}, Errors: map[string]int{}},
		rng: rand.New(rand.NewPCG(p.Seed, 0x10ad7e57))}
	for _, s := range p.Scenarios {
		r.hists[s.Name] = &Histogram{}
		r.res.Scenarios[s.Name] = &ScenarioResult{}
	}
	return r.run(ctx), nil
}

type runner struct {
	plan  Plan
	total int
	rngMu sync.Mutex
	rng   *rand.Rand

	started  atomic.Int64
	inFlight atomic.Int64
	ok       atomic.Int64
	failed   atomic.Int64

	mu    sync.Mutex
	hists map[string]*Histogram
	res   Result
	last  time.Time
}

// pick chooses the scenario of the next operation by weight.
func (r *runner) pick() Scenario {
	r.rngMu.Lock()
	n := r.rng.IntN(r.total)
	r.rngMu.Unlock()
	for _, s := range r.plan.Scenarios {
		if n < s.Weight {
			return s
		}
		n -= s.Weight
	}
	return r.plan.Scenarios[len(r.plan.Scenarios)-1]
}

// next reserves the number of the next operation, or reports false when
// the plan's count is reached.
func (r *runner) next() (int, bool) {
	n := r.started.Add(1) - 1
	if r.plan.Ops > 0 && n >= int64(r.plan.Ops) {
		return 0, false
	}
	return int(n), true
}

func (r *runner) run(ctx context.Context) Result {
	start := time.Now()
	stopAt := time.Time{}
	if r.plan.Duration > 0 {
		stopAt = start.Add(r.plan.Duration)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	progressDone := make(chan struct{})
	if r.plan.Progress != nil {
		go r.progress(runCtx, start, progressDone)
	} else {
		close(progressDone)
	}
	expired := func() bool { return !stopAt.IsZero() && !time.Now().Before(stopAt) || ctx.Err() != nil }

	var wg sync.WaitGroup
	if r.plan.Rate > 0 {
		slots := make(chan int, r.plan.Concurrency)
		for i := range r.plan.Concurrency {
			slots <- i
		}
		interval := time.Duration(float64(time.Second) / r.plan.Rate)
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if !stopAt.IsZero() && !due.Before(stopAt) {
				break
			}
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			if ctx.Err() != nil {
				break
			}
			n, ok := r.next()
			if !ok {
				break
			}
			var slot int
			select {
			case slot = <-slots:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			lag := time.Since(due)
			r.mu.Lock()
			r.res.MaxLag = max(r.res.MaxLag, lag)
			r.mu.Unlock()
			if lag > r.plan.OpTimeout {
				// The system fell so far behind the schedule that this
				// operation's time is up before it could start: count it
				// as failed instead of building an endless backlog.
				slots <- slot
				r.missed()
				continue
			}
			wg.Go(func() {
				defer func() { slots <- slot }()
				r.one(ctx, slot, n, due)
			})
		}
	} else {
		for slot := range r.plan.Concurrency {
			wg.Go(func() {
				for !expired() {
					n, ok := r.next()
					if !ok {
						return
					}
					r.one(ctx, slot, n, time.Now())
				}
			})
		}
	}
	wg.Wait()
	cancel()
	<-progressDone
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		r.res.Elapsed = r.last.Sub(start)
	}
	for name, h := range r.hists {
		r.res.Scenarios[name].Latency = h.Summary()
	}
	return r.res
}

// missed records an operation that never started: no slot came free
// within the operation timeout of its scheduled start.
func (r *runner) missed() {
	s := r.pick()
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Scenarios[s.Name].Failed++
	r.res.Errors[s.Name+": not started: behind schedule by more than the operation timeout"]++
	r.res.Missed++
}

// one runs one operation and records its outcome; latency counts from
// since (the scheduled start in open loop).
func (r *runner) one(ctx context.Context, slot, n int, since time.Time) {
	s := r.pick()
	r.inFlight.Add(1)
	octx, cancel := context.WithTimeout(ctx, r.plan.OpTimeout)
	err := s.Run(octx, slot, n)
	cancel()
	end := time.Now()
	r.inFlight.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if end.After(r.last) {
		r.last = end
	}
	sr := r.res.Scenarios[s.Name]
	if err != nil {
		r.failed.Add(1)
		sr.Failed++
		r.res.Errors[s.Name+": "+Kind(err)]++
		return
	}
	r.ok.Add(1)
	sr.OK++
	r.hists[s.Name].Record(end.Sub(since))
}

func (r *runner) progress(ctx context.Context, start time.Time, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			started := int(r.started.Load())
			if r.plan.Ops > 0 {
				started = min(started, r.plan.Ops)
			}
			r.plan.Progress(Progress{Elapsed: time.Since(start), Started: started, OK: int(r.ok.Load()),
				Failed: int(r.failed.Load()), InFlight: int(r.inFlight.Load())})
		}
	}
}
