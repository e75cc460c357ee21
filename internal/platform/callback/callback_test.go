package callback_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/callback"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

const (
	login   = 3000001
	cbToken = "callback-secret"
)

var usd = money.MustCurrency("USD")

type env struct {
	sim  *ctradersim.Sim
	srv  *ctradersim.Server
	conn *callback.Connector
}

// newEnv starts a simulator with the callback endpoint on and a connector
// that reads accounts through the WebServices client (or through reader).
func newEnv(t *testing.T, token string, reader callback.AccountReader, faults map[string]ctradersim.Rule) *env {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv, err := ctradersim.Start(context.Background(), ctradersim.Config{
		Clock: clk, CallbackToken: cbToken, Faults: ctradersim.FaultConfig{Seed: 1, Endpoints: faults},
		Seed: ctradersim.Seed{
			Managers: []ctradersim.Manager{{Login: 1001, Password: "pw"}},
			Traders:  []ctradersim.TraderSeed{{Login: login, Currency: "USD", Balance: "100.00", Password: "x"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if reader == nil {
		ws, err := ctrader.New(ctrader.Config{BaseURL: srv.URL(), ManagerLogin: 1001, ManagerPassword: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		reader = ws
	}
	conn, err := callback.New(callback.Config{URL: srv.URL() + "/ctrader/callback/balance-update", Token: token, Accounts: reader,
		Clock: clk, Timeout: 2 * time.Second, HTTPClient: &http.Client{Transport: &http.Transport{}}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: srv.Sim(), srv: srv, conn: conn}
}

func change(typ platform.ChangeType, amount string, id string) platform.BalanceChange {
	a, err := money.Parse(amount, usd)
	if err != nil {
		panic(err)
	}
	return platform.BalanceChange{Login: login, Type: typ, Amount: a, ExternalID: id}
}

// staleReader reports a balance that is out of date.
type staleReader struct{}

func (staleReader) Account(ctx context.Context, l int64) (platform.Account, error) {
	if l != login {
		return platform.Account{}, errs.E(errs.NotFound, "stale", "no such account")
	}
	b := money.New(5000, usd)
	return platform.Account{Login: l, Currency: usd, Balance: b, Equity: b, FreeMargin: b, Withdrawable: b}, nil
}

func TestCallbackAppliesWithTransactionID(t *testing.T) {
	e := newEnv(t, cbToken, nil, nil)
	ctx := context.Background()
	for _, c := range []platform.BalanceChange{change(platform.Deposit, "25.50", "txn_1"), change(platform.Withdraw, "5.25", "txn_2")} {
		got, err := e.conn.ChangeBalance(ctx, c)
		if err != nil || got.BalanceHistoryID == 0 {
			t.Fatalf("%s: %+v, %v", c.ExternalID, got, err)
		}
	}
	tr, _ := e.sim.Trader(login)
	if tr.Balance.Decimal() != "120.25" {
		t.Errorf("balance %s, want 120.25", tr.Balance.Decimal())
	}
	h, _ := e.sim.History(login)
	if len(h) != 2 || h[0].ExternalID != "txn_1" || h[0].Via != "callback" || h[1].Type != "WITHDRAW" {
		t.Errorf("history = %+v", h)
	}
	if n := e.sim.Stats().CallbackBalanceMismatches; n != 0 {
		t.Errorf("newBalance mismatches = %d, want 0 (the reader was current)", n)
	}
	acct, err := e.conn.Account(ctx, login)
	if err != nil || acct.Balance.Decimal() != "120.25" {
		t.Errorf("Account = %+v, %v", acct, err)
	}
}

func TestCallbackStaleNewBalanceIsOnlyCounted(t *testing.T) {
	e := newEnv(t, cbToken, staleReader{}, nil)
	if _, err := e.conn.ChangeBalance(context.Background(), change(platform.Deposit, "1.00", "txn_s")); err != nil {
		t.Fatal(err)
	}
	tr, _ := e.sim.Trader(login)
	if tr.Balance.Decimal() != "101.00" || e.sim.Stats().CallbackBalanceMismatches != 1 {
		t.Errorf("balance %s, mismatches %d; want the amount applied (101.00) and one mismatch counted",
			tr.Balance.Decimal(), e.sim.Stats().CallbackBalanceMismatches)
	}
}

func TestCallbackRefusalsAndFaults(t *testing.T) {
	tests := []struct {
		name          string
		token         string
		faults        map[string]ctradersim.Rule
		change        platform.BalanceChange
		wantRejected  string // code, or "" for ambiguous
		wantRetryable bool
		wantApplied   bool
	}{
		{"withdrawal beyond the balance", cbToken, nil, change(platform.Withdraw, "100.01", "t1"), "INSUFFICIENT_FUNDS", false, false},
		{"wrong bearer token", "wrong", nil, change(platform.Deposit, "1.00", "t2"), "INVALID_TOKEN", true, false},
		{"bonus types are not in the protocol", cbToken, nil, change(platform.DepositBonus, "1.00", "t3"), "INVALID_REQUEST", false, false},
		{"unknown account", cbToken, nil, func() platform.BalanceChange {
			c := change(platform.Deposit, "1.00", "t4")
			c.Login = 4242
			return c
		}(), "TRADER_NOT_FOUND", false, false},
		{"5xx", cbToken, map[string]ctradersim.Rule{ctradersim.EndpointCallback: {ErrorP: 1, ErrorStatus: 503}}, change(platform.Deposit, "1.00", "t5"), "", false, false},
		{"injected 429", cbToken, map[string]ctradersim.Rule{ctradersim.EndpointCallback: {ErrorP: 1, ErrorStatus: 429, ErrorCode: "RATE_LIMITED"}}, change(platform.Deposit, "1.00", "t6"), "RATE_LIMITED", true, false},
		{"apply then reset", cbToken, map[string]ctradersim.Rule{ctradersim.EndpointCallback: {ApplyResetP: 1}}, change(platform.Deposit, "1.00", "t7"), "", false, true},
		{"drop before apply", cbToken, map[string]ctradersim.Rule{ctradersim.EndpointCallback: {DropP: 1}}, change(platform.Deposit, "1.00", "t8"), "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.token, nil, tt.faults)
			_, err := e.conn.ChangeBalance(context.Background(), tt.change)
			if tt.wantRejected != "" {
				r, ok := platform.AsRejected(err)
				if !ok || r.Code != tt.wantRejected || r.Retryable != tt.wantRetryable {
					t.Fatalf("error = %v, want rejection %s (retryable %v)", err, tt.wantRejected, tt.wantRetryable)
				}
			} else {
				a, ok := platform.AsAmbiguous(err)
				if !ok || !strings.Contains(a.Evidence, tt.change.ExternalID) {
					t.Fatalf("error = %v, want an ambiguous outcome with evidence naming the transaction", err)
				}
			}
			if err := e.srv.Close(); err != nil {
				t.Fatal(err)
			}
			h, _ := e.sim.History(login)
			if (len(h) > 0) != tt.wantApplied {
				t.Errorf("history %+v, want applied=%v", h, tt.wantApplied)
			}
		})
	}
}

func TestNewRequiresAReader(t *testing.T) {
	for _, cfg := range []callback.Config{
		{URL: "http://127.0.0.1:1/cb", Token: "t"},
		{URL: "ftp://x/cb", Token: "t", Accounts: staleReader{}},
		{URL: "http://127.0.0.1:1/cb", Accounts: staleReader{}},
	} {
		if _, err := callback.New(cfg); !errs.Is(err, errs.Invalid) {
			t.Errorf("New(%+v) = %v, want EINVALID", cfg, err)
		}
	}
}
