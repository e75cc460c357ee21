package loadtest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Books compares what the ledger says the cashier moved onto each trading
// account with what the platform (the simulator) shows.
type Books struct {
	DB     *sqlstore.DB
	Client *Client
	// Platform names the platform in the ledger's account ids
	// (platform:{Platform}:{login}); default "ctrader", funding's default.
	Platform string
}

// AccountState is one trading account seen from both sides: the
// simulator's balance and the posted balance of the ledger's platform
// account (what the cashier moved onto it).
type AccountState struct {
	Sim, Ledger money.Amount
}

// Mismatch is a trading account whose balance did not change by what the
// ledger says.
type Mismatch struct {
	Login                 int64
	SimDelta, LedgerDelta money.Amount
}

func (m Mismatch) String() string {
	return fmt.Sprintf("account %d: the platform balance changed by %s, the ledger says %s", m.Login, m.SimDelta, m.LedgerDelta)
}

func (b Books) prefix() string {
	p := b.Platform
	if p == "" {
		p = "ctrader"
	}
	return "platform:" + p + ":"
}

// Snapshot reads every given account on both sides: the simulator's
// balances in one call (GET /_sim/traders), the ledger's platform
// accounts in one query. An account the ledger does not know yet has a
// zero ledger balance.
func (b Books) Snapshot(ctx context.Context, logins []int64) (map[int64]AccountState, error) {
	const op = "loadtest.Books.Snapshot"
	var traders []struct {
		Login   int64        `json:"login"`
		Balance money.Amount `json:"balance"`
	}
	if err := b.Client.simGet(ctx, "/_sim/traders", &traders); err != nil {
		return nil, errs.Wrap(op, err)
	}
	accs, err := ledger.New(b.DB, clock.System{}).Accounts(ctx, b.prefix())
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	posted := map[int64]money.Amount{}
	for _, a := range accs {
		login, err := strconv.ParseInt(strings.TrimPrefix(a.ID, b.prefix()), 10, 64)
		if err == nil {
			posted[login] = a.Balance().Posted
		}
	}
	want := map[int64]bool{}
	for _, l := range logins {
		want[l] = true
	}
	out := map[int64]AccountState{}
	for _, t := range traders {
		if !want[t.Login] {
			continue
		}
		st := AccountState{Sim: t.Balance, Ledger: money.Zero(t.Balance.Currency())}
		if p, ok := posted[t.Login]; ok {
			st.Ledger = p
		}
		out[t.Login] = st
	}
	for _, l := range logins {
		if _, ok := out[l]; !ok {
			return nil, errs.Ef(errs.NotFound, op, "trading account %d is not on the simulator", l)
		}
	}
	return out, nil
}

// Compare returns the accounts of opening whose simulator balance has not
// changed by exactly as much as their ledger balance since opening.
func (b Books) Compare(ctx context.Context, opening map[int64]AccountState) ([]Mismatch, error) {
	logins := make([]int64, 0, len(opening))
	for l := range opening {
		logins = append(logins, l)
	}
	slices.Sort(logins)
	now, err := b.Snapshot(ctx, logins)
	if err != nil {
		return nil, err
	}
	var out []Mismatch
	for _, l := range logins {
		o, n := opening[l], now[l]
		simDelta, err1 := n.Sim.Sub(o.Sim)
		ledgerDelta, err2 := n.Ledger.Sub(o.Ledger)
		if err1 != nil || err2 != nil {
			return nil, errs.Ef(errs.Internal, "loadtest.Books.Compare", "account %d: currencies differ: %v %v", l, err1, err2)
		}
		if simDelta != ledgerDelta {
			out = append(out, Mismatch{Login: l, SimDelta: simDelta, LedgerDelta: ledgerDelta})
		}
	}
	return out, nil
}

// Agree compares until the books agree or timeout passes (a push may be
// on its way: the platform changes before the cashier records it), and
// returns the mismatches left.
func (b Books) Agree(ctx context.Context, opening map[int64]AccountState, timeout time.Duration) ([]Mismatch, error) {
	deadline := time.Now().Add(timeout)
	for {
		ms, err := b.Compare(ctx, opening)
		if err != nil || len(ms) == 0 || time.Now().After(deadline) {
			return ms, err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ms, ctx.Err()
		case <-t.C:
		}
	}
}

// Verify runs the ledger's own invariant check (cashier ledger verify).
func (b Books) Verify(ctx context.Context) (ledger.Report, error) {
	return ledger.Verify(ctx, b.DB)
}
