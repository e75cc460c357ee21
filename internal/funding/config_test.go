package funding_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func TestParseAutoApproveLimits(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     map[string]string
		bad      bool
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "several", in: "USD:1000.00, EUR:900,JPY:150000", want: map[string]string{"USD": "1000.00 USD", "EUR": "900.00 EUR", "JPY": "150000 JPY"}},
		{name: "too many decimals", in: "JPY:10.5", bad: true},
		{name: "negative", in: "USD:-1", bad: true},
		{name: "unknown currency", in: "XXY:10", bad: true},
		{name: "no amount", in: "USD", bad: true},
		{name: "twice", in: "USD:1,USD:2", bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := funding.ParseAutoApproveLimits(c.in)
			if c.bad {
				if !errs.Is(err, errs.Invalid) {
					t.Errorf("%q: %v, want an invalid error", c.in, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%q gave %v, want %v", c.in, got, c.want)
			}
			for code, a := range got {
				if a.String() != c.want[code] {
					t.Errorf("%s = %s, want %s", code, a, c.want[code])
				}
			}
		})
	}
}

func TestNewChecksDependenciesAndRules(t *testing.T) {
	providers, err := psp.NewRegistry(stubProvider{})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := payments.NewService(nil, payments.Options{Providers: providers, Methods: payments.DefaultCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	deps := funding.Deps{DB: &sqlstore.DB{}, Ledger: ledger.New(nil, nil), Push: push.New(nil, nil, push.Options{}), Payments: pay,
		Platform: stubPlatform{}, Accounts: directory{}}
	for _, c := range []struct {
		name   string
		change func(*funding.Deps, *funding.Config)
		ok     bool
	}{
		{"complete", func(*funding.Deps, *funding.Config) {}, true},
		{"no platform", func(d *funding.Deps, _ *funding.Config) { d.Platform = nil }, false},
		{"no accounts", func(d *funding.Deps, _ *funding.Config) { d.Accounts = nil }, false},
		{"2FA without a mailer", func(_ *funding.Deps, c *funding.Config) { c.Require2FA = true }, false},
		{"limit in another currency", func(_ *funding.Deps, c *funding.Config) {
			c.AutoApproveWithdrawalsUpTo = map[string]money.Amount{"USD": amt("10.00", eur)}
		}, false},
		{"unknown auto-approval method", func(_ *funding.Deps, c *funding.Config) { c.AutoApproveMethods = []string{"cheque"} }, false},
	} {
		d, cfg := deps, funding.Config{}
		c.change(&d, &cfg)
		_, err := funding.New(d, cfg)
		if c.ok != (err == nil) || (err != nil && !errs.Is(err, errs.Invalid)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// stubProvider supports everything and is never called.
type stubProvider struct{}

func (stubProvider) Name() string { return "sandbox" }
func (stubProvider) Capabilities() psp.Capabilities {
	return psp.Capabilities{Methods: []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet, psp.Crypto},
		PayoutMethods: []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet}}
}
func (stubProvider) StartPayment(context.Context, psp.PaymentRequest) (psp.Payment, error) {
	return psp.Payment{}, errs.E(errs.Unavailable, "stub", "never called")
}
func (stubProvider) PaymentStatus(context.Context, string) (psp.Payment, error) {
	return psp.Payment{}, errs.E(errs.Unavailable, "stub", "never called")
}
func (stubProvider) ParseWebhook(http.Header, []byte) (psp.Event, error) {
	return psp.Event{}, errs.E(errs.Unauthorized, "stub", "never called")
}
func (stubProvider) StartPayout(context.Context, psp.PayoutRequest) (psp.Payout, error) {
	return psp.Payout{}, errs.E(errs.Unavailable, "stub", "never called")
}
func (stubProvider) PayoutStatus(context.Context, string) (psp.Payout, error) {
	return psp.Payout{}, errs.E(errs.Unavailable, "stub", "never called")
}

type stubPlatform struct{}

func (stubPlatform) ChangeBalance(context.Context, platform.BalanceChange) (platform.Applied, error) {
	return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent}
}
func (stubPlatform) Account(context.Context, int64) (platform.Account, error) {
	return platform.Account{}, errs.E(errs.Unavailable, "stub", "never called")
}
