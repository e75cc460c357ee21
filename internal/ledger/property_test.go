package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// model is the obvious in-memory ledger the real one must agree with.
type model struct {
	posted, pendingOut, pendingIn map[string]int64
	holds                         map[string]modelHold
	sent                          map[string]ledger.Transfer
}

type modelHold struct {
	from, to string
	amount   int64
}

// TestLedgerAgreesWithModel applies random operation sequences (transfers,
// holds, full and partial posts, voids, replays, conflicting replays, bad
// transfers) to the ledger and to a simple model, and checks after every step
// that balances agree and at the end that the invariants hold.
func TestLedgerAgreesWithModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
				runModel(t, db, seed, 250)
			}, ledger.Schema)
		})
	}
}

func runModel(t *testing.T, db *sqlstore.DB, seed uint64, steps int) {
	ctx := context.Background()
	l := ledger.New(db, clock.NewFake(epoch))
	rng := rand.New(rand.NewPCG(seed, 99))
	accts := []string{"a", "b", "c", "d"}
	m := model{posted: map[string]int64{}, pendingOut: map[string]int64{}, pendingIn: map[string]int64{}, holds: map[string]modelHold{}, sent: map[string]ledger.Transfer{}}
	if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: "world", Kind: "external", Currency: usd, Normal: ledger.CreditNormal}); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: a, Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero()}); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]string{"world"}, accts...)
	available := func(a string) int64 { return m.posted[a] - m.pendingOut[a] }
	bounded := func(a string) bool { return a != "world" }
	for step := range steps {
		id := fmt.Sprintf("t%d", step)
		var tr ledger.Transfer
		var wantCode errs.Code
		apply := func() {}
		switch op := rng.IntN(8); op {
		case 0, 1, 2: // plain transfer
			from, to := all[rng.IntN(len(all))], all[rng.IntN(len(all))]
			if from == to {
				continue
			}
			amt := 1 + rng.Int64N(20000)
			tr = ledger.Transfer{ID: id, Debit: from, Credit: to, Amount: money.New(amt, usd)}
			if bounded(from) && available(from) < amt {
				wantCode = errs.Insufficient
			}
			apply = func() { m.posted[from] -= amt; m.posted[to] += amt }
		case 3: // hold
			from, to := all[rng.IntN(len(all))], all[rng.IntN(len(all))]
			if from == to {
				continue
			}
			amt := 1 + rng.Int64N(20000)
			tr = ledger.Transfer{ID: id, Action: ledger.Hold, Debit: from, Credit: to, Amount: money.New(amt, usd)}
			if bounded(from) && available(from) < amt {
				wantCode = errs.Insufficient
			}
			apply = func() {
				m.pendingOut[from] += amt
				m.pendingIn[to] += amt
				m.holds[id] = modelHold{from, to, amt}
			}
		case 4, 5: // post (full or part) or void a hold
			var hid string
			for k := range m.holds {
				if hid == "" || k < hid {
					hid = k
				}
			}
			if hid == "" {
				continue
			}
			h := m.holds[hid]
			release := func() { m.pendingOut[h.from] -= h.amount; m.pendingIn[h.to] -= h.amount; delete(m.holds, hid) }
			if op == 4 {
				amt := h.amount
				if rng.IntN(2) == 0 {
					amt = 1 + rng.Int64N(h.amount)
				}
				tr = ledger.Transfer{ID: id, Action: ledger.PostPending, PendingID: hid, Amount: money.New(amt, usd)}
				apply = func() { release(); m.posted[h.from] -= amt; m.posted[h.to] += amt }
			} else {
				tr = ledger.Transfer{ID: id, Action: ledger.VoidPending, PendingID: hid}
				apply = release
			}
		case 6: // replay an earlier transfer: nothing changes
			if len(m.sent) == 0 {
				continue
			}
			for _, prev := range m.sent {
				tr = prev
				break
			}
		case 7: // reuse an id with other fields: conflict
			if len(m.sent) == 0 {
				continue
			}
			for _, prev := range m.sent {
				tr = prev
				break
			}
			tr.Code = "something else"
			wantCode = errs.Conflict
		}
		_, err := l.Post(ctx, tr)
		if errs.CodeOf(err) != wantCode {
			t.Fatalf("step %d %+v: err = %v, want code %q", step, tr, err, wantCode)
		}
		if err == nil {
			if _, replayed := m.sent[tr.ID]; !replayed {
				apply()
				m.sent[tr.ID] = tr
			}
		}
		for _, a := range all {
			b, err := l.Balance(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if b.Posted.Minor() != m.posted[a] || b.PendingOut.Minor() != m.pendingOut[a] || b.PendingIn.Minor() != m.pendingIn[a] {
				t.Fatalf("step %d: %s = %+v, model posted %d out %d in %d", step, a, b, m.posted[a], m.pendingOut[a], m.pendingIn[a])
			}
		}
	}
	r, err := ledger.Verify(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("invariants broken:\n%s", r)
	}
}
