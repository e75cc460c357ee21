package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// fakeSim serves /_sim/traders with balances the test sets.
type fakeSim struct {
	mu       sync.Mutex
	balances map[int64]money.Amount
}

func (f *fakeSim) set(login int64, a money.Amount) {
	f.mu.Lock()
	f.balances[login] = a
	f.mu.Unlock()
}

func (f *fakeSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_sim/traders" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type trader struct {
		Login   int64        `json:"login"`
		Balance money.Amount `json:"balance"`
	}
	var out []trader
	for l, b := range f.balances {
		out = append(out, trader{l, b})
	}
	_ = json.NewEncoder(w).Encode(out)
}

func TestBooksFindTheAccountThatDisagrees(t *testing.T) {
	usd := money.MustCurrency("USD")
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sim := &fakeSim{balances: map[int64]money.Amount{
			1: money.New(100000, usd), 2: money.New(5000, usd), 3: money.New(700, usd)}}
		srv := httptest.NewServer(sim)
		defer srv.Close()
		c, err := NewClient(Target{CashierURL: "http://127.0.0.1:1", SimulatorURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		books := Books{DB: db, Client: c}
		opening, err := books.Snapshot(ctx, []int64{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := opening[2]; got.Sim != money.New(5000, usd) || !got.Ledger.IsZero() {
			t.Errorf("opening of account 2 = %+v, want 50.00 on the platform and nothing in the ledger", got)
		}

		// The cashier credits 12.34 to account 1 and 1.00 to account 2; the
		// platform shows the first, and 2.00 for the second.
		l := ledger.New(db, nil)
		for _, spec := range []ledger.AccountSpec{
			{ID: "psp:sandbox:USD", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal},
			{ID: "platform:ctrader:1", Kind: "platform", Currency: usd, Normal: ledger.CreditNormal},
			{ID: "platform:ctrader:2", Kind: "platform", Currency: usd, Normal: ledger.CreditNormal},
		} {
			if _, err := l.CreateAccount(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Post(ctx,
			ledger.Transfer{ID: "t1", Debit: "psp:sandbox:USD", Credit: "platform:ctrader:1", Amount: money.New(1234, usd)},
			ledger.Transfer{ID: "t2", Debit: "psp:sandbox:USD", Credit: "platform:ctrader:2", Amount: money.New(100, usd)}); err != nil {
			t.Fatal(err)
		}
		sim.set(1, money.New(101234, usd))
		sim.set(2, money.New(5200, usd))
		sim.set(3, money.New(1, usd)) // not driven: not compared

		got, err := books.Compare(ctx, opening)
		if err != nil {
			t.Fatal(err)
		}
		want := []Mismatch{{Login: 2, SimDelta: money.New(200, usd), LedgerDelta: money.New(100, usd)}}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b money.Amount) bool { return a == b })); diff != "" {
			t.Errorf("mismatches (-want +got):\n%s", diff)
		}
		sim.set(2, money.New(5100, usd))
		if got, err := books.Agree(ctx, opening, 0); err != nil || len(got) != 0 {
			t.Errorf("after the platform caught up: %v, %v; want agreement", got, err)
		}
		if rep, err := books.Verify(ctx); err != nil || !rep.OK() {
			t.Errorf("Verify = %v, %v", rep, err)
		}
		if _, err := books.Snapshot(ctx, []int64{4}); err == nil {
			t.Error("Snapshot of an account the simulator does not have: no error")
		}
	}, ledger.Schema)
}
