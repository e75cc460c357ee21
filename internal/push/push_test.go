package push_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var usd = money.MustCurrency("USD")

// outcome scripts what the fake platform does with one call.
type outcome int

const (
	applyOK          outcome = iota // apply and answer 200
	rejectFinal                     // refuse: NOT_ENOUGH_MONEY, nothing applied
	rejectRetryable                 // refuse: REQUEST_FREQUENCY_EXCEEDED, nothing applied
	applyThenTimeout                // apply, then the answer is lost
	dropBeforeApply                 // the connection drops before anything is applied
	applyThenPanic                  // apply, then the worker dies
)

// fakePlatform is a platform whose answers follow a script, keyed by
// externalId and call number.
type fakePlatform struct {
	mu      sync.Mutex
	script  map[string][]outcome
	applied map[string]int64 // externalId -> balanceHistoryId
	calls   map[string]int
	lookups int
	nextID  int64
}

func newFakePlatform() *fakePlatform {
	return &fakePlatform{script: map[string][]outcome{}, applied: map[string]int64{}, calls: map[string]int{}, nextID: 1000}
}

func (f *fakePlatform) ChangeBalance(ctx context.Context, c platform.BalanceChange) (platform.Applied, error) {
	f.mu.Lock()
	n := f.calls[c.ExternalID]
	f.calls[c.ExternalID]++
	o := applyOK
	if s := f.script[c.ExternalID]; n < len(s) {
		o = s[n]
	}
	apply := func() int64 {
		f.nextID++
		f.applied[c.ExternalID] = f.nextID
		return f.nextID
	}
	switch o {
	case applyOK:
		id := apply()
		f.mu.Unlock()
		return platform.Applied{BalanceHistoryID: id}, nil
	case rejectFinal:
		f.mu.Unlock()
		return platform.Applied{}, &platform.RejectedError{Code: "NOT_ENOUGH_MONEY", Message: "not enough money", Status: 400}
	case rejectRetryable:
		f.mu.Unlock()
		return platform.Applied{}, &platform.RejectedError{Code: "REQUEST_FREQUENCY_EXCEEDED", Message: "slow down", Status: 429, Retryable: true}
	case applyThenTimeout:
		apply()
		f.mu.Unlock()
		return platform.Applied{}, &platform.AmbiguousError{Cause: context.DeadlineExceeded, Evidence: "timeout after 10s"}
	case dropBeforeApply:
		f.mu.Unlock()
		return platform.Applied{}, &platform.AmbiguousError{Cause: errors.New("connection reset"), Evidence: "reset before a response"}
	default: // applyThenPanic
		apply()
		f.mu.Unlock()
		panic("worker died after the platform applied the change")
	}
}

func (f *fakePlatform) Account(ctx context.Context, login int64) (platform.Account, error) {
	return platform.Account{}, errs.E(errs.NotFound, "fake", "no accounts")
}

// lookupPlatform adds the look-up capability.
type lookupPlatform struct{ *fakePlatform }

func (f lookupPlatform) FindChange(ctx context.Context, login int64, externalID string) (platform.Applied, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	id, ok := f.applied[externalID]
	return platform.Applied{BalanceHistoryID: id}, ok, nil
}

type harness struct {
	db      *sqlstore.DB
	svc     *push.Service
	runner  *jobs.Runner
	clock   *clock.Fake
	fake    *fakePlatform
	mu      sync.Mutex
	settled map[string][]push.State
}

func newHarness(t *testing.T, db *sqlstore.DB, withLookup bool) *harness {
	fc := clock.NewFake(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	fake := newFakePlatform()
	var conn platform.Connector = fake
	if withLookup {
		conn = lookupPlatform{fake}
	}
	h := &harness{db: db, clock: fc, fake: fake, settled: map[string][]push.State{}}
	h.svc = push.New(db, conn, push.Options{Clock: fc, SendTimeout: 10 * time.Second, LookupMargin: 20 * time.Second, RetryAfter: time.Minute})
	h.svc.RegisterOwner("deposit", push.OwnerFunc(func(ctx context.Context, tx *sqlstore.Tx, p push.Push) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.settled[p.ID] = append(h.settled[p.ID], p.State)
		return nil
	}))
	h.runner = jobs.NewRunner(db, jobs.Options{Clock: fc, Workers: 1, HeartbeatInterval: -1, BackoffBase: time.Second, BackoffMax: time.Second})
	h.svc.Register(h.runner)
	return h
}

func (h *harness) enqueue(t *testing.T, id string) {
	t.Helper()
	err := h.db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
		_, err := h.svc.EnqueueTx(context.Background(), tx, push.Request{ID: id, Owner: "deposit", OwnerID: "dep_" + id,
			Change: platform.BalanceChange{Login: 8673590, Type: platform.Deposit, Amount: money.New(12345, usd), Source: "card"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) runDue(t *testing.T) {
	t.Helper()
	for range 10 {
		n, err := h.runner.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (h *harness) state(t *testing.T, id string) push.Push {
	t.Helper()
	p, err := h.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (h *harness) path(t *testing.T, id string) []push.State {
	t.Helper()
	evs, err := h.svc.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []push.State
	for _, e := range evs {
		out = append(out, e.To)
	}
	return out
}

func TestPushOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		script      []outcome
		lookup      bool
		advance     time.Duration // moved after the first run, before the second
		wantState   push.State
		wantPath    []push.State
		wantSends   int
		wantApplied bool // on the platform, exactly once
		wantSettled []push.State
		evidence    string
	}{
		{name: "applied", script: []outcome{applyOK}, wantState: push.Applied,
			wantPath: []push.State{push.Queued, push.Sending, push.Applied}, wantSends: 1, wantApplied: true, wantSettled: []push.State{push.Applied}},
		{name: "rejected", script: []outcome{rejectFinal}, wantState: push.Rejected,
			wantPath: []push.State{push.Queued, push.Sending, push.Rejected}, wantSends: 1, wantSettled: []push.State{push.Rejected}},
		{name: "refused for now then applied", script: []outcome{rejectRetryable, applyOK}, advance: time.Minute, wantState: push.Applied,
			wantPath: []push.State{push.Queued, push.Sending, push.Queued, push.Sending, push.Applied}, wantSends: 2, wantApplied: true, wantSettled: []push.State{push.Applied}},
		{name: "timeout after apply, look-up finds it", script: []outcome{applyThenTimeout}, lookup: true, advance: 30 * time.Second, wantState: push.ResolvedApplied,
			wantPath: []push.State{push.Queued, push.Sending, push.InDoubt, push.ResolvedApplied}, wantSends: 1, wantApplied: true, wantSettled: []push.State{push.ResolvedApplied},
			evidence: "timeout after 10s"},
		{name: "drop before apply, look-up proves absent", script: []outcome{dropBeforeApply}, lookup: true, advance: 30 * time.Second, wantState: push.ResolvedNotApplied,
			wantPath: []push.State{push.Queued, push.Sending, push.InDoubt, push.ResolvedNotApplied}, wantSends: 1, wantSettled: []push.State{push.ResolvedNotApplied},
			evidence: "reset before a response"},
		{name: "worker dies after apply", script: []outcome{applyThenPanic}, lookup: true, advance: 30 * time.Second, wantState: push.ResolvedApplied,
			wantPath: []push.State{push.Queued, push.Sending, push.InDoubt, push.ResolvedApplied}, wantSends: 1, wantApplied: true, wantSettled: []push.State{push.ResolvedApplied},
			evidence: "the worker stopped while sending"},
		{name: "timeout without look-up waits for an operator", script: []outcome{applyThenTimeout}, advance: time.Hour, wantState: push.InDoubt,
			wantPath: []push.State{push.Queued, push.Sending, push.InDoubt}, wantSends: 1, wantApplied: true, evidence: "timeout after 10s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
				h := newHarness(t, db, tc.lookup)
				h.fake.script["psh_1"] = tc.script
				h.enqueue(t, "psh_1")
				h.runDue(t)
				if tc.lookup && tc.advance > 0 && h.fake.lookups != 0 {
					t.Errorf("looked up %d times before the original request's deadline", h.fake.lookups)
				}
				h.clock.Advance(tc.advance)
				h.runDue(t)
				p := h.state(t, "psh_1")
				if p.State != tc.wantState {
					t.Fatalf("state = %s, want %s (evidence %q)", p.State, tc.wantState, p.Evidence)
				}
				if diff := cmp.Diff(tc.wantPath, h.path(t, "psh_1")); diff != "" {
					t.Errorf("path (-want +got):\n%s", diff)
				}
				if p.Sends != tc.wantSends || h.fake.calls["psh_1"] != tc.wantSends {
					t.Errorf("sends recorded %d, platform calls %d, want %d", p.Sends, h.fake.calls["psh_1"], tc.wantSends)
				}
				if _, ok := h.fake.applied["psh_1"]; ok != tc.wantApplied {
					t.Errorf("applied on the platform = %v, want %v", ok, tc.wantApplied)
				}
				if diff := cmp.Diff(tc.wantSettled, h.settled["psh_1"]); diff != "" {
					t.Errorf("owner calls (-want +got):\n%s", diff)
				}
				if tc.evidence != "" && !strings.Contains(p.Evidence, tc.evidence) {
					t.Errorf("evidence %q does not mention %q", p.Evidence, tc.evidence)
				}
				if tc.wantApplied && p.State.WasApplied() && p.BalanceHistoryID != h.fake.applied["psh_1"] {
					t.Errorf("balanceHistoryId = %d, platform has %d", p.BalanceHistoryID, h.fake.applied["psh_1"])
				}
			}, jobs.Schema, push.Schema)
		})
	}
}

func TestOperatorResolvesInDoubtPush(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		h := newHarness(t, db, false)
		ctx := context.Background()
		h.fake.script["psh_1"] = []outcome{dropBeforeApply}
		h.enqueue(t, "psh_1")
		h.runDue(t)
		if _, err := h.svc.Resolve(ctx, "psh_1", false, "", ""); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("resolve without operator: err = %v, want EINVALID", err)
		}
		p, err := h.svc.Resolve(ctx, "psh_1", false, "ana@broker", "checked the cTrader balance history")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != push.ResolvedNotApplied || p.ResolvedBy != "operator:ana@broker" {
			t.Errorf("after resolve: %s by %q", p.State, p.ResolvedBy)
		}
		if _, err := h.svc.Resolve(ctx, "psh_1", true, "bob", ""); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("second resolve: err = %v, want ECONFLICT", err)
		}
		evs, _ := h.svc.Events(ctx, "psh_1")
		if last := evs[len(evs)-1]; !strings.Contains(last.Detail, "operator ana@broker confirmed not applied: checked the cTrader balance history") {
			t.Errorf("last event = %+v", last)
		}
		if diff := cmp.Diff([]push.State{push.ResolvedNotApplied}, h.settled["psh_1"]); diff != "" {
			t.Errorf("owner calls (-want +got):\n%s", diff)
		}
	}, jobs.Schema, push.Schema)
}

func TestEnqueueIsAtomicAndIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		h := newHarness(t, db, false)
		ctx := context.Background()
		boom := errors.New("booking failed")
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if _, err := h.svc.EnqueueTx(ctx, tx, push.Request{ID: "psh_rb", Owner: "deposit", OwnerID: "d",
				Change: platform.BalanceChange{Login: 1, Type: platform.Deposit, Amount: money.New(1, usd)}}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := h.svc.Get(ctx, "psh_rb"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("a rolled-back push exists: %v", err)
		}
		h.enqueue(t, "psh_2")
		h.enqueue(t, "psh_2") // same request again: no second push, no second job
		h.runDue(t)
		if h.fake.calls["psh_2"] != 1 {
			t.Errorf("platform calls = %d, want 1", h.fake.calls["psh_2"])
		}
		err = db.Transact(ctx, func(tx *sqlstore.Tx) error {
			_, err := h.svc.EnqueueTx(ctx, tx, push.Request{ID: "psh_2", Owner: "deposit", OwnerID: "dep_psh_2",
				Change: platform.BalanceChange{Login: 8673590, Type: platform.Withdraw, Amount: money.New(12345, usd), Source: "card"}})
			return err
		})
		if errs.CodeOf(err) != errs.Conflict {
			t.Errorf("same id, other change: err = %v, want ECONFLICT", err)
		}
	}, jobs.Schema, push.Schema)
}
