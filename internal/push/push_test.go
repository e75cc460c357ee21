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
	return newHarnessWith(t, db, withLookup, nil)
}

// newHarnessWith is newHarness with options changed by set (nil: none).
func newHarnessWith(t *testing.T, db *sqlstore.DB, withLookup bool, set func(*push.Options)) *harness {
	fc := clock.NewFake(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	fake := newFakePlatform()
	var conn platform.Connector = fake
	if withLookup {
		conn = lookupPlatform{fake}
	}
	h := &harness{db: db, clock: fc, fake: fake, settled: map[string][]push.State{}}
	opts := push.Options{Clock: fc, SendTimeout: 10 * time.Second, LookupMargin: 20 * time.Second, RetryAfter: time.Minute}
	if set != nil {
		set(&opts)
	}
	h.svc = push.New(db, conn, opts)
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
		{name: "drop before apply, look-up proves absent, waits to be sent again", script: []outcome{dropBeforeApply}, lookup: true, advance: 30 * time.Second,
			wantState: push.Queued, wantPath: []push.State{push.Queued, push.Sending, push.InDoubt, push.Queued}, wantSends: 1,
			evidence: "look-up after 2026-11-21T10:00:30Z found no change with externalId psh_1: not applied; send 2 of at most 10 after 1m0s"},
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

// settle runs what is due and moves the clock on in steps of ten seconds
// until the push is final (at most six hours).
func (h *harness) settle(t *testing.T, id string) push.Push {
	t.Helper()
	for range 6 * 360 {
		h.runDue(t)
		if p := h.state(t, id); p.State.Final() {
			return p
		}
		h.clock.Advance(10 * time.Second)
	}
	p := h.state(t, id)
	t.Fatalf("push %s is still %s after six hours", id, p.State)
	return p
}

// sendTimes returns when each send of a push began, from the start of the
// first.
func (h *harness) sendTimes(t *testing.T, id string) []time.Duration {
	t.Helper()
	evs, err := h.svc.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	var first time.Time
	for _, e := range evs {
		if e.To != push.Sending {
			continue
		}
		if first.IsZero() {
			first = e.At
		}
		out = append(out, e.At.Sub(first))
	}
	return out
}

func repeat(o outcome, n int) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// TestResendAfterProofOfNotApplied: a push proved not applied (a refusal
// that applied nothing and may pass, or a look-up that found nothing after
// an ambiguous answer) is sent again with the same id, after a growing
// delay, within MaxSends and ResendWindow; only then does it end as not
// applied. An answer that may have applied it never leads to another send.
func TestResendAfterProofOfNotApplied(t *testing.T) {
	const (
		Q, S, D   = push.Queued, push.Sending, push.InDoubt
		A, R      = push.Applied, push.Rejected
		RA, RNA   = push.ResolvedApplied, push.ResolvedNotApplied
		minute    = time.Minute
		unlimited = 100
	)
	tests := []struct {
		name        string
		script      []outcome
		lookup      bool
		maxSends    int
		window      time.Duration
		wantState   push.State
		wantPath    []push.State
		wantSends   []time.Duration // when each send began, from the first
		wantApplied bool
		lastDetail  string // the final event's detail contains it
	}{
		{name: "dropped, proved absent, sent again and applied", script: []outcome{dropBeforeApply, applyOK}, lookup: true,
			wantState: A, wantPath: []push.State{Q, S, D, Q, S, A}, wantSends: []time.Duration{0, 90 * time.Second}, wantApplied: true},
		{name: "applied without an answer, found, never sent again", script: []outcome{applyThenTimeout}, lookup: true,
			wantState: RA, wantPath: []push.State{Q, S, D, RA}, wantSends: []time.Duration{0}, wantApplied: true},
		{name: "dropped, then applied without an answer, found by the second look-up", script: []outcome{dropBeforeApply, applyThenTimeout}, lookup: true,
			wantState: RA, wantPath: []push.State{Q, S, D, Q, S, D, RA}, wantSends: []time.Duration{0, 90 * time.Second}, wantApplied: true},
		{name: "refused for now twice, then applied", script: []outcome{rejectRetryable, rejectRetryable, applyOK},
			wantState: A, wantPath: []push.State{Q, S, Q, S, Q, S, A}, wantSends: []time.Duration{0, minute, 3 * minute}, wantApplied: true},
		{name: "keeps failing: given up after MaxSends", script: repeat(dropBeforeApply, 20), lookup: true, maxSends: 3,
			wantState: RNA, wantPath: []push.State{Q, S, D, Q, S, D, Q, S, D, RNA}, wantSends: []time.Duration{0, 90 * time.Second, 240 * time.Second},
			lastDetail: "no send left: 3 of at most 3 made"},
		{name: "keeps failing: given up at the end of the window, the delays doubling", script: repeat(dropBeforeApply, 20), lookup: true,
			maxSends: unlimited, window: 10 * minute, wantState: RNA,
			wantPath:  []push.State{Q, S, D, Q, S, D, Q, S, D, Q, S, D, RNA},
			wantSends: []time.Duration{0, 90 * time.Second, 240 * time.Second, 510 * time.Second}, lastDetail: "resends within 10m0s"},
		{name: "refused for now every time: rejected after MaxSends", script: repeat(rejectRetryable, 20), maxSends: 3,
			wantState: R, wantPath: []push.State{Q, S, Q, S, Q, S, R}, wantSends: []time.Duration{0, minute, 3 * minute},
			lastDetail: "REQUEST_FREQUENCY_EXCEEDED"},
		{name: "business refusal ends at once", script: []outcome{rejectFinal, applyOK}, lookup: true,
			wantState: R, wantPath: []push.State{Q, S, R}, wantSends: []time.Duration{0}, lastDetail: "NOT_ENOUGH_MONEY"},
		{name: "without a look-up an ambiguous answer is never followed by a send", script: []outcome{dropBeforeApply, applyOK},
			wantState: D, wantPath: []push.State{Q, S, D}, wantSends: []time.Duration{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
				h := newHarnessWith(t, db, tc.lookup, func(o *push.Options) { o.MaxSends, o.ResendWindow = tc.maxSends, tc.window })
				h.fake.script["psh_1"] = tc.script
				h.enqueue(t, "psh_1")
				var p push.Push
				if tc.wantState.Final() {
					p = h.settle(t, "psh_1")
				} else {
					h.runDue(t)
					h.clock.Advance(6 * time.Hour)
					h.runDue(t)
					p = h.state(t, "psh_1")
				}
				if p.State != tc.wantState {
					t.Fatalf("state = %s, want %s (evidence %q)", p.State, tc.wantState, p.Evidence)
				}
				if diff := cmp.Diff(tc.wantPath, h.path(t, "psh_1")); diff != "" {
					t.Errorf("path (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantSends, h.sendTimes(t, "psh_1")); diff != "" {
					t.Errorf("send times (-want +got):\n%s", diff)
				}
				if p.Sends != len(tc.wantSends) || h.fake.calls["psh_1"] != len(tc.wantSends) {
					t.Errorf("sends recorded %d, platform calls %d, want %d", p.Sends, h.fake.calls["psh_1"], len(tc.wantSends))
				}
				if _, ok := h.fake.applied["psh_1"]; ok != tc.wantApplied {
					t.Errorf("applied on the platform = %v, want %v", ok, tc.wantApplied)
				}
				var wantSettled []push.State
				if tc.wantState.Final() {
					wantSettled = []push.State{tc.wantState}
				}
				if diff := cmp.Diff(wantSettled, h.settled["psh_1"]); diff != "" {
					t.Errorf("owner calls (-want +got):\n%s", diff)
				}
				evs, err := h.svc.Events(context.Background(), "psh_1")
				if err != nil {
					t.Fatal(err)
				}
				if last := evs[len(evs)-1]; !strings.Contains(last.Detail, tc.lastDetail) {
					t.Errorf("last event %q does not mention %q", last.Detail, tc.lastDetail)
				}
				if p.State.WasApplied() && p.BalanceHistoryID != h.fake.applied["psh_1"] {
					t.Errorf("balanceHistoryId = %d, platform has %d", p.BalanceHistoryID, h.fake.applied["psh_1"])
				}
			}, jobs.Schema, push.Schema)
		})
	}
}

func TestDelayed(t *testing.T) {
	tests := []struct {
		name  string
		state push.State
		sends int
		want  bool
	}{
		{"queued, never sent", push.Queued, 0, false},
		{"first send", push.Sending, 1, false},
		{"in doubt", push.InDoubt, 1, true},
		{"waiting to be sent again", push.Queued, 1, true},
		{"sent again", push.Sending, 2, true},
		{"applied after a resend", push.Applied, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (push.Push{State: tc.state, Sends: tc.sends}).Delayed(); got != tc.want {
				t.Errorf("Delayed() = %v, want %v", got, tc.want)
			}
		})
	}
}
