package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// TestFailuresBackOffExponentiallyThenGoDead runs a job that always fails,
// with the jitter turned off so each delay is its ceiling: base 1 s doubling
// up to the 4 s cap; not due a microsecond early, due on time; dead after
// MaxAttempts with the last error kept.
func TestFailuresBackOffExponentiallyThenGoDead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{BackoffBase: time.Second, BackoffMax: 4 * time.Second})
		r.jitter = func(d time.Duration) time.Duration { return d }
		r.Handle("flaky", func(_ context.Context, j Job) error {
			return fmt.Errorf("attempt %d failed", j.Attempt)
		})
		id := enqueue(t, db, NewJob{Kind: "flaky", MaxAttempts: 5})

		wantDelays := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
		for i, delay := range wantDelays {
			attempt := i + 1
			if n := runOnce(t, r); n != 1 {
				t.Fatalf("attempt %d: ran %d jobs, want 1", attempt, n)
			}
			j := get(t, db, id)
			want := fmt.Sprintf("attempt %d failed", attempt)
			if j.State != Queued || j.Attempt != attempt || j.LastError != want || !j.RunAt.Equal(fc.Now().Add(delay)) {
				t.Fatalf("after attempt %d: state %s, attempt %d, error %q, run at +%v; want queued, %d, %q, +%v",
					attempt, j.State, j.Attempt, j.LastError, j.RunAt.Sub(fc.Now()), attempt, want, delay)
			}
			fc.Advance(delay - time.Microsecond)
			if n := runOnce(t, r); n != 0 {
				t.Fatalf("after attempt %d: the job ran before its backoff of %v was over", attempt, delay)
			}
			fc.Advance(time.Microsecond)
		}
		if n := runOnce(t, r); n != 1 {
			t.Fatalf("last attempt: ran %d jobs, want 1", n)
		}
		j := get(t, db, id)
		if j.State != Dead || j.Attempt != 5 || j.LastError != "attempt 5 failed" || !j.FinishedAt.Equal(fc.Now()) {
			t.Errorf("after the last attempt: state %s, attempt %d, error %q, finished %v; want dead, 5, %q, now",
				j.State, j.Attempt, j.LastError, j.FinishedAt, "attempt 5 failed")
		}
		fc.Advance(24 * time.Hour)
		if n := runOnce(t, r); n != 0 {
			t.Errorf("a dead job ran again")
		}
		if got, want := r.metric(t, "jobs_retried_total", "flaky"), 4.0; got != want {
			t.Errorf("jobs_retried_total = %v, want %v", got, want)
		}
		if got, want := r.metric(t, "jobs_dead_total", "flaky"), 1.0; got != want {
			t.Errorf("jobs_dead_total = %v, want %v", got, want)
		}
	}, Schema)
}

func TestFullJitterStaysWithinTheCeilingAndSpreads(t *testing.T) {
	for _, ceiling := range []time.Duration{time.Second, time.Hour} {
		lo, hi := ceiling, time.Duration(0)
		for range 2000 {
			d := fullJitter(ceiling)
			if d < 0 || d > ceiling {
				t.Fatalf("fullJitter(%v) = %v, outside [0, %v]", ceiling, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceiling/10 || hi < ceiling*9/10 {
			t.Errorf("fullJitter(%v) over 2000 draws spans only [%v, %v]", ceiling, lo, hi)
		}
	}
	if d := fullJitter(0); d != 0 {
		t.Errorf("fullJitter(0) = %v, want 0", d)
	}
}

func TestBackoffCeilingDoesNotOverflow(t *testing.T) {
	r := NewRunner(nil, Options{BackoffBase: time.Second, BackoffMax: time.Hour})
	r.jitter = func(d time.Duration) time.Duration { return d }
	for _, attempt := range []int{1, 12, 13, 64, 1000} {
		got := r.backoff(attempt)
		if got <= 0 || got > time.Hour {
			t.Errorf("backoff(%d) = %v, want within (0, 1h]", attempt, got)
		}
	}
}

func TestOutcomesOfOneAttempt(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		handler     Handler
		wantState   State
		wantRunIn   time.Duration // for queued: delay from now
		wantError   string        // prefix of the stored error
		wantMetric  string
	}{
		{
			name: "retry asks for its delay", maxAttempts: 3,
			handler:   func(context.Context, Job) error { return Retry(90*time.Second, errors.New("provider busy")) },
			wantState: Queued, wantRunIn: 90 * time.Second, wantError: "provider busy", wantMetric: "jobs_retried_total",
		},
		{
			name: "retry without an error", maxAttempts: 3,
			handler:   func(context.Context, Job) error { return Retry(-time.Second, nil) },
			wantState: Queued, wantRunIn: 0, wantError: "retry requested", wantMetric: "jobs_retried_total",
		},
		{
			name: "retry on the last attempt is dead", maxAttempts: 1,
			handler:   func(context.Context, Job) error { return Retry(time.Second, errors.New("still busy")) },
			wantState: Dead, wantError: "still busy", wantMetric: "jobs_dead_total",
		},
		{
			name: "permanent is dead at once", maxAttempts: 10,
			handler:   func(context.Context, Job) error { return Permanent(errors.New("account closed")) },
			wantState: Dead, wantError: "account closed", wantMetric: "jobs_dead_total",
		},
		{
			name: "wrapped permanent is dead at once", maxAttempts: 10,
			handler:   func(context.Context, Job) error { return fmt.Errorf("push: %w", Permanent(errors.New("bad payload"))) },
			wantState: Dead, wantError: "push: bad payload", wantMetric: "jobs_dead_total",
		},
		{
			name: "panic is a failure", maxAttempts: 3,
			handler:   func(context.Context, Job) error { panic("nil map somewhere") },
			wantState: Queued, wantRunIn: 2 * time.Second, wantError: "handler panicked: nil map somewhere", wantMetric: "jobs_retried_total",
		},
		{
			name: "panic on the last attempt is dead", maxAttempts: 1,
			handler:   func(context.Context, Job) error { panic(errors.New("boom")) },
			wantState: Dead, wantError: "handler panicked: boom", wantMetric: "jobs_dead_total",
		},
		{
			name: "success", maxAttempts: 1,
			handler:   func(context.Context, Job) error { return nil },
			wantState: Done, wantMetric: "jobs_done_total",
		},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fc := clock.NewFake(t0)
				r := newTestRunner(db, fc, Options{BackoffBase: 2 * time.Second})
				r.jitter = func(d time.Duration) time.Duration { return d }
				kind := "outcome-" + tc.name
				r.Handle(kind, tc.handler)
				id := enqueue(t, db, NewJob{Kind: kind, MaxAttempts: tc.maxAttempts})
				if n := runOnce(t, r); n != 1 {
					t.Fatalf("ran %d jobs, want 1", n)
				}
				j := get(t, db, id)
				if j.State != tc.wantState || j.Attempt != 1 || !strings.HasPrefix(j.LastError, tc.wantError) {
					t.Errorf("job = %s, attempt %d, error %q; want %s, 1, starting %q", j.State, j.Attempt, j.LastError, tc.wantState, tc.wantError)
				}
				if tc.wantState == Queued && !j.RunAt.Equal(fc.Now().Add(tc.wantRunIn)) {
					t.Errorf("run at now+%v, want now+%v", j.RunAt.Sub(fc.Now()), tc.wantRunIn)
				}
				if (tc.wantState == Done || tc.wantState == Dead) && !j.FinishedAt.Equal(fc.Now()) {
					t.Errorf("finished at %v, want %v", j.FinishedAt, fc.Now())
				}
				if got := r.metric(t, tc.wantMetric, kind); got != 1 {
					t.Errorf("%s = %v, want 1", tc.wantMetric, got)
				}
			})
		}
	}, Schema)
}

func TestLongErrorsAreTruncated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("verbose", func(context.Context, Job) error {
			return Permanent(errors.New(strings.Repeat("é", 3000)))
		})
		id := enqueue(t, db, NewJob{Kind: "verbose"})
		runOnce(t, r)
		got := get(t, db, id).LastError
		if len(got) > maxErrorLen+len("…") || !strings.HasPrefix(got, "éé") || !strings.HasSuffix(got, "é…") {
			t.Errorf("stored error: %d bytes, ends %q; want at most %d bytes, cut on a character", len(got), got[len(got)-8:], maxErrorLen)
		}
	}, Schema)
}

func TestRequeueGivesADeadJobFreshAttempts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		fixed := false
		r.Handle("push", func(context.Context, Job) error {
			if !fixed {
				return errors.New("platform rejects the account")
			}
			return nil
		})
		id := enqueue(t, db, NewJob{Kind: "push", MaxAttempts: 1})
		runOnce(t, r)
		if got := get(t, db, id).State; got != Dead {
			t.Fatalf("state = %s, want dead", got)
		}

		fixed = true
		if err := Requeue(ctx, db, id); err != nil {
			t.Fatal(err)
		}
		j := get(t, db, id)
		if j.State != Queued || j.Attempt != 0 || !j.RunAt.IsZero() || j.LastError != "platform rejects the account" {
			t.Errorf("after Requeue: %s, attempt %d, run at %v, error %q; want queued, 0, as soon as possible, the old error",
				j.State, j.Attempt, j.RunAt, j.LastError)
		}
		if err := Requeue(ctx, db, id); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("Requeue of a queued job = %v, want ECONFLICT", err)
		}
		if n := runOnce(t, r); n != 1 {
			t.Fatalf("ran %d, want 1", n)
		}
		if got := get(t, db, id); got.State != Done || got.Attempt != 1 {
			t.Errorf("job = %s after %d attempts, want done after 1", got.State, got.Attempt)
		}
		if err := Requeue(ctx, db, "job_missing"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("Requeue of an unknown job = %v, want ENOTFOUND", err)
		}
	}, Schema)
}

func TestListGetStatsAndPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{Workers: 10})
		r.Handle("ok", func(context.Context, Job) error { return nil })
		r.Handle("bad", func(context.Context, Job) error { return Permanent(errors.New("no")) })
		var okIDs []string
		for i := range 4 {
			okIDs = append(okIDs, enqueue(t, db, NewJob{Kind: "ok", DedupKey: fmt.Sprint("ok-", i)}))
		}
		badID := enqueue(t, db, NewJob{Kind: "bad"})
		runOnce(t, r)
		fc.Advance(time.Hour)
		laterID := enqueue(t, db, NewJob{Kind: "ok", RunAt: fc.Now().Add(time.Hour)})
		runOnce(t, r)

		if diff := cmp.Diff(map[State]int{Queued: 1, Running: 0, Done: 4, Dead: 1}, stats(t, db)); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
		ids := func(js []Job) []string {
			var out []string
			for _, j := range js {
				out = append(out, j.ID)
			}
			return out
		}
		tests := []struct {
			name   string
			filter Filter
			want   []string
		}{
			{"all, newest first", Filter{}, []string{laterID, badID, okIDs[3], okIDs[2], okIDs[1], okIDs[0]}},
			{"by state", Filter{State: Dead}, []string{badID}},
			{"by kind", Filter{Kind: "ok", State: Done}, []string{okIDs[3], okIDs[2], okIDs[1], okIDs[0]}},
			{"by dedup key", Filter{DedupKey: "ok-2"}, []string{okIDs[2]}},
			{"page", Filter{Kind: "ok", BeforeID: okIDs[3], Limit: 2}, []string{okIDs[2], okIDs[1]}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := List(ctx, db, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
					t.Errorf("List(%+v) ids (-want +got):\n%s", tc.filter, diff)
				}
			})
		}
		if _, err := List(ctx, db, Filter{State: "lost"}); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("List with an unknown state = %v, want EINVALID", err)
		}
		if _, err := Get(ctx, db, "job_nope"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("Get of an unknown id = %v, want ENOTFOUND", err)
		}

		// Done jobs finished at t0 are older than t0+1h; the dead job and
		// the queued one stay.
		if n, err := Purge(ctx, db, t0.Add(time.Second), 3); err != nil || n != 3 {
			t.Fatalf("Purge(limit 3) = %d, %v; want 3", n, err)
		}
		if n, err := Purge(ctx, db, t0.Add(time.Second), 100); err != nil || n != 1 {
			t.Fatalf("second Purge = %d, %v; want the 1 left", n, err)
		}
		if diff := cmp.Diff(map[State]int{Queued: 1, Running: 0, Done: 0, Dead: 1}, stats(t, db)); diff != "" {
			t.Errorf("Stats after Purge (-want +got):\n%s", diff)
		}
		if _, err := Purge(ctx, db, t0, 0); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Purge with limit 0 = %v, want EINVALID", err)
		}
	}, Schema)
}

func TestGaugesReflectTheDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		r := newTestRunner(db, fc, Options{})
		r.Handle("bad", func(context.Context, Job) error { return Permanent(errors.New("no")) })
		r.Handle("idle", func(context.Context, Job) error { return nil })
		for range 3 {
			enqueue(t, db, NewJob{Kind: "mail", RunAt: t0.Add(time.Hour)})
		}
		enqueue(t, db, NewJob{Kind: "bad"})
		runOnce(t, r)
		if err := r.refreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"queued mail": 3, "dead bad": 1, "queued bad": 0, "queued idle": 0, "dead idle": 0}
		got := map[string]float64{}
		for key := range want {
			name, kind, _ := strings.Cut(key, " ")
			got[key] = r.metric(t, "jobs_"+name, kind)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("gauges (-want +got):\n%s", diff)
		}

		// Once the mail jobs are gone the gauge drops to zero.
		if _, err := db.Exec(ctx, `DELETE FROM jobs WHERE kind = 'mail'`); err != nil {
			t.Fatal(err)
		}
		if err := r.refreshGauges(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.metric(t, "jobs_queued", "mail"); got != 0 {
			t.Errorf("jobs_queued{mail} = %v after the jobs left, want 0", got)
		}
	}, Schema)
}
