package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// waitLimit bounds how long a test waits for an event that must happen;
// reaching it fails the test.
const waitLimit = 30 * time.Second

type testRunner struct {
	*Runner
	reg *prometheus.Registry
}

// newTestRunner returns a runner on the fake clock with its own metrics
// registry and a discarded log. opts fields left zero take the defaults.
func newTestRunner(db *sqlstore.DB, fc *clock.Fake, opts Options) testRunner {
	reg := prometheus.NewRegistry()
	opts.Clock = fc
	opts.Registerer = reg
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return testRunner{Runner: NewRunner(db, opts), reg: reg}
}

// metric returns the value of a counter or gauge series, or 0 if the series
// does not exist.
func (tr testRunner) metric(t *testing.T, name, kind string) float64 {
	t.Helper()
	mfs, err := tr.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func enqueue(t *testing.T, db *sqlstore.DB, j NewJob) string {
	t.Helper()
	var id string
	err := db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
		var err error
		id, err = Enqueue(context.Background(), tx, j)
		return err
	})
	if err != nil {
		t.Fatalf("enqueue %+v: %v", j, err)
	}
	return id
}

func get(t *testing.T, db *sqlstore.DB, id string) Job {
	t.Helper()
	j, err := Get(context.Background(), db, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return j
}

func runOnce(t *testing.T, r testRunner) int {
	t.Helper()
	n, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func stats(t *testing.T, db *sqlstore.DB) map[State]int {
	t.Helper()
	s, err := Stats(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// receive returns the next value from ch, failing the test if none comes
// within waitLimit.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// runLog records handler entries per job id, and fails the test if one job
// is ever inside a handler twice at the same time.
type runLog struct {
	t      *testing.T
	mu     sync.Mutex
	inside map[string]int
	runs   map[string]int
}

func newRunLog(t *testing.T) *runLog {
	return &runLog{t: t, inside: map[string]int{}, runs: map[string]int{}}
}

func (l *runLog) enter(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inside[id]++
	l.runs[id]++
	if l.inside[id] > 1 {
		l.t.Errorf("job %s is running %d times at once", id, l.inside[id])
	}
}

func (l *runLog) leave(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inside[id]--
}

// notOnce lists the ids in want that did not run exactly once.
func (l *runLog) notOnce(want []string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []string
	for _, id := range want {
		if n := l.runs[id]; n != 1 {
			bad = append(bad, fmt.Sprintf("%s ran %d times", id, n))
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, ", ")
}
