package withdrawwizard_test

import (
	"context"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// nothingFunding is a Funding that is never reached in these tests.
type nothingFunding struct{}

func (nothingFunding) WithdrawalOptions(context.Context, funding.Customer, int64) (funding.WithdrawalOptions, error) {
	return funding.WithdrawalOptions{}, errs.E(errs.Unavailable, "nothingFunding", "not here")
}

func (nothingFunding) RequestWithdrawal(context.Context, funding.WithdrawalRequest) (funding.Withdrawal, error) {
	return funding.Withdrawal{}, errs.E(errs.Unavailable, "nothingFunding", "not here")
}

func (nothingFunding) Withdrawal(context.Context, string, string) (funding.Withdrawal, error) {
	return funding.Withdrawal{}, errs.E(errs.Unavailable, "nothingFunding", "not here")
}

type nothingPricer struct{}

func (nothingPricer) PriceWithdrawal(context.Context, string, money.Amount, money.Currency, string) (payments.Price, error) {
	return payments.Price{}, errs.E(errs.Unavailable, "nothingPricer", "not here")
}

func TestNewAndMethodNumbers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		clk := clock.NewFake(clock.System{}.Now())
		tf, err := twofactor.New(twofactor.Deps{DB: db, Clock: clk}, twofactor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		deps := withdrawwizard.Deps{DB: db, Clock: clk, Funding: nothingFunding{}, Pricer: nothingPricer{}, TwoFactor: tf,
			Customers: func(context.Context, string) (withdrawwizard.Customer, error) { return withdrawwizard.Customer{}, nil }}
		for name, numbers := range map[string]map[int]string{
			"one method twice": {1: "card", 2: "card"},
			"zero":             {0: "card"},
			"empty id":         {1: ""},
		} {
			t.Run(name, func(t *testing.T) {
				if _, err := withdrawwizard.New(deps, withdrawwizard.Config{MethodNumbers: numbers}); errs.CodeOf(err) != errs.Invalid {
					t.Fatalf("New = %v, want EINVALID", err)
				}
			})
		}
		if _, err := withdrawwizard.New(withdrawwizard.Deps{DB: db}, withdrawwizard.Config{}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("New without dependencies = %v", err)
		}
		s, err := withdrawwizard.New(deps, withdrawwizard.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]int{"card": 1, "bank-transfer": 2, "ewallet": 3, "crypto": 4} {
			if n, ok := s.MethodNumber(id); !ok || n != want {
				t.Errorf("MethodNumber(%q) = %d, %v; want %d", id, n, ok, want)
			}
		}
		// A wizard is the user's own: another user cannot see it.
		w, err := s.Start(context.Background(), "usr_a")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(context.Background(), "usr_a", w.UUID); err != nil || got.State != withdrawwizard.StateOpen {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if _, err := s.Get(context.Background(), "usr_b", w.UUID); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("another user's Get = %v, want ENOTFOUND", err)
		}
	}, twofactor.Schema, withdrawwizard.Schema)
}
