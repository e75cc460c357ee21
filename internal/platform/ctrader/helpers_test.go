package ctrader_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/prometheus/client_golang/prometheus"
)

// Accounts of the test seed.
const (
	loginUSD  = 3000001 // 1000.00 USD
	loginJPY  = 3000002 // 150000 JPY
	loginBTC  = 3000003 // 0.05000000 BTC
	loginUSD2 = 3000004 // 0.00 USD
	userAlice = 10000001
	managerRW = 1001
	managerRO = 1002
	managerPW = "manager-password"
	traderPW  = "trader-password"
	brokerCRM = "demo_crm"
	brokerWL  = "demo_broker"
)

var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
	jpy = money.MustCurrency("JPY")
	btc = money.MustCurrency("BTC")
)

func testSeed() ctradersim.Seed {
	return ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: managerRW, Password: managerPW}, {Login: managerRO, Password: managerPW, ReadOnly: true}},
		Traders: []ctradersim.TraderSeed{
			{Login: loginUSD, Currency: "USD", Balance: "1000.00", Password: traderPW},
			{Login: loginJPY, Currency: "JPY", Balance: "150000", Password: traderPW},
			{Login: loginBTC, Currency: "BTC", Balance: "0.05", Password: traderPW},
			{Login: loginUSD2, Currency: "USD", Balance: "0", Password: traderPW},
		},
		Users: []ctradersim.UserSeed{{UserID: userAlice, Email: "alice@example.com", Logins: []int64{loginUSD, loginJPY}}},
	}
}

// env is a simulator listening on 127.0.0.1 and a client pointed at it.
type env struct {
	srv    *ctradersim.Server
	sim    *ctradersim.Sim
	clk    *clock.Fake
	client *ctrader.Client
	reg    *prometheus.Registry
	tr     *http.Transport // the client's transport
}

type option func(*ctradersim.Config, *ctrader.Config)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	scfg := ctradersim.Config{Clock: clk, Seed: testSeed()}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	reg := prometheus.NewRegistry()
	ccfg := ctrader.Config{ManagerLogin: managerRW, ManagerPassword: managerPW, Timeout: 5 * time.Second,
		HTTPClient: &http.Client{Transport: transport}, Metrics: reg}
	for _, o := range opts {
		o(&scfg, &ccfg)
	}
	srv, err := ctradersim.Start(context.Background(), scfg)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ccfg.BaseURL = srv.URL()
	c, err := ctrader.New(ccfg)
	if err != nil {
		t.Fatalf("ctrader.New: %v", err)
	}
	return &env{srv: srv, sim: srv.Sim(), clk: clk, client: c, reg: reg, tr: transport}
}

func withFaults(endpoint string, r ctradersim.Rule) option {
	return func(s *ctradersim.Config, _ *ctrader.Config) {
		s.Faults = ctradersim.FaultConfig{Seed: 1, Endpoints: map[string]ctradersim.Rule{endpoint: r}}
	}
}

func withTimeout(d time.Duration) option {
	return func(_ *ctradersim.Config, c *ctrader.Config) { c.Timeout = d }
}

// must turns a (value, error) result into the value, failing the test on an
// error: must(f())(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func amount(t *testing.T, s string, cur money.Currency) money.Amount {
	t.Helper()
	return must(money.Parse(s, cur))(t)
}

func deposit(login int64, a money.Amount, id string) platform.BalanceChange {
	return platform.BalanceChange{Login: login, Type: platform.Deposit, Amount: a, ExternalID: id, Source: "card"}
}

// balance reads a trader's balance straight from the simulator.
func (e *env) balance(t *testing.T, login int64) string {
	t.Helper()
	return must(e.sim.Trader(login))(t).Balance.Decimal()
}

// applied counts the history entries of a login carrying externalID.
func (e *env) applied(t *testing.T, login int64, externalID string) int {
	t.Helper()
	n := 0
	for _, h := range must(e.sim.History(login))(t) {
		if h.ExternalID == externalID {
			n++
		}
	}
	return n
}
