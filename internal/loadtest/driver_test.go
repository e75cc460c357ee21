package loadtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

func TestRunCountsOutcomesByScenarioAndErrorKind(t *testing.T) {
	var inFlight, most atomic.Int64
	var seen sync.Map
	slow := func(ctx context.Context, slot, n int) error {
		seen.Store(n, true)
		cur := inFlight.Add(1)
		for {
			m := most.Load()
			if cur <= m || most.CompareAndSwap(m, cur) {
				break
			}
		}
		defer inFlight.Add(-1)
		if slot < 0 || slot >= 4 {
			t.Errorf("slot %d outside [0, 4)", slot)
		}
		if n%10 == 0 {
			return &StepError{Step: "confirm", Status: 503, Code: "UNAVAILABLE"}
		}
		return nil
	}
	res, err := Run(context.Background(), Plan{Concurrency: 4, Ops: 100, Seed: 1,
		Scenarios: []Scenario{{Name: "deposit", Weight: 3, Run: slow}, {Name: "withdraw", Weight: 1, Run: slow}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.OK() + res.Failed(); got != 100 {
		t.Errorf("%d operations counted, want 100", got)
	}
	if res.Failed() != 10 {
		t.Errorf("%d failures, want 10 (every tenth)", res.Failed())
	}
	if n := res.Errors["deposit: confirm: HTTP 503 UNAVAILABLE"] + res.Errors["withdraw: confirm: HTTP 503 UNAVAILABLE"]; n != 10 {
		t.Errorf("errors by kind = %v, want 10 confirm: HTTP 503 UNAVAILABLE", res.Errors)
	}
	d, w := res.Scenarios["deposit"], res.Scenarios["withdraw"]
	if d.OK+d.Failed < 55 || w.OK+w.Failed < 10 {
		t.Errorf("mix 3:1 gave %d deposits and %d withdrawals", d.OK+d.Failed, w.OK+w.Failed)
	}
	if d.Latency.Count != d.OK || w.Latency.Count != w.OK {
		t.Errorf("latencies recorded for %d+%d operations, want one per success (%d+%d)", d.Latency.Count, w.Latency.Count, d.OK, w.OK)
	}
	if most.Load() > 4 {
		t.Errorf("%d operations in flight at once, want at most 4", most.Load())
	}
	for n := range 100 {
		if _, ok := seen.Load(n); !ok {
			t.Errorf("operation number %d never ran", n)
		}
	}
}

func TestRunAtARateKeepsTheSchedule(t *testing.T) {
	var count atomic.Int64
	start := time.Now()
	res, err := Run(context.Background(), Plan{Concurrency: 8, Rate: 200, Duration: 250 * time.Millisecond,
		Scenarios: []Scenario{{Name: "token", Weight: 1, Run: func(ctx context.Context, slot, n int) error {
			count.Add(1)
			return nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	// 200/s for 250 ms is 50 operations scheduled at 0, 5, …, 245 ms.
	if n := count.Load(); n != 50 {
		t.Errorf("%d operations in 250 ms at 200/s, want 50", n)
	}
	if time.Since(start) < 245*time.Millisecond {
		t.Errorf("the run took %v, want the whole schedule", time.Since(start))
	}
	if res.Scenarios["token"].OK != 50 {
		t.Errorf("result = %+v", res.Scenarios["token"])
	}
}

func TestRunRefusesAnEmptyPlan(t *testing.T) {
	ok := func(context.Context, int, int) error { return nil }
	for name, p := range map[string]Plan{
		"no scenario":    {Concurrency: 1, Ops: 1},
		"zero weights":   {Concurrency: 1, Ops: 1, Scenarios: []Scenario{{Name: "a", Run: ok}}},
		"no concurrency": {Ops: 1, Scenarios: []Scenario{{Name: "a", Weight: 1, Run: ok}}},
		"no bound":       {Concurrency: 1, Scenarios: []Scenario{{Name: "a", Weight: 1, Run: ok}}},
	} {
		if _, err := Run(context.Background(), p); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: Run = %v, want errs.Invalid", name, err)
		}
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&StepError{Step: "card", Code: "connection refused"}, "card: connection refused"},
		{&StepError{Step: "token", Status: 429, Code: "REQUEST_FREQUENCY_EXCEEDED"}, "token: HTTP 429 REQUEST_FREQUENCY_EXCEEDED"},
		{&StepError{Step: "outcome", Code: "declined"}, "outcome: declined"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("something else"), "something else"},
	}
	for _, tc := range tests {
		if got := Kind(tc.err); got != tc.want {
			t.Errorf("Kind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestRunAtARateGivesUpWhenFarBehind(t *testing.T) {
	var started atomic.Int64
	res, err := Run(context.Background(), Plan{Concurrency: 1, Rate: 100, Duration: 300 * time.Millisecond, OpTimeout: 50 * time.Millisecond,
		Scenarios: []Scenario{{Name: "deposit", Weight: 1, Run: func(ctx context.Context, slot, n int) error {
			if started.Add(1) == 1 {
				// The first operation holds the only slot for 150 ms,
				// past its own timeout, as a stuck request does.
				<-time.After(150 * time.Millisecond)
			}
			return nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	// 30 operations are due every 10 ms; those due at 10 … 90 ms wait for the
	// slot until 150 ms, and those more than 50 ms late are given up.
	if res.Missed < 5 || res.Errors["deposit: not started: behind schedule by more than the operation timeout"] != res.Missed {
		t.Errorf("missed %d, errors %v; want the operations that fell too far behind counted as missed", res.Missed, res.Errors)
	}
	if got := res.OK() + res.Failed(); got != 30 {
		t.Errorf("%d operations accounted for, want all 30 scheduled", got)
	}
}
