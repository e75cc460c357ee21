package withdrawwizard_test

import (
	"context"
	"regexp"
	"sync"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// recordingFunding offers bank transfers on a USD account and keeps the
// withdrawal requests it is given.
type recordingFunding struct {
	mu   sync.Mutex
	reqs []funding.WithdrawalRequest
}

func (f *recordingFunding) WithdrawalOptions(_ context.Context, _ funding.Customer, login int64) (funding.WithdrawalOptions, error) {
	usd := money.MustCurrency("USD")
	return funding.WithdrawalOptions{Account: funding.AccountView{Login: login, Currency: usd, Kind: "trading"},
		Methods: []payments.Method{{ID: "bank-transfer", Kind: psp.BankTransfer}}}, nil
}

func (f *recordingFunding) RequestWithdrawal(_ context.Context, req funding.WithdrawalRequest) (funding.Withdrawal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return funding.Withdrawal{ID: "wd_" + req.ID, Login: req.Login, MethodID: req.MethodID, Amount: req.Amount,
		Status: funding.WithdrawalDebiting}, nil
}

func (f *recordingFunding) Withdrawal(context.Context, string, string) (funding.Withdrawal, error) {
	return funding.Withdrawal{}, nil
}

type freePricer struct{}

func (freePricer) PriceWithdrawal(_ context.Context, _ string, debit money.Amount, _ money.Currency, _ string) (payments.Price, error) {
	return payments.Price{Quote: payments.Quote{Gross: debit, Fee: money.Zero(debit.Currency()), Net: debit, PaidBy: payments.PaidByClient}, Account: debit}, nil
}

var wizardCodeRE = regexp.MustCompile(`code is (\d{6})`)

// TestConfirmedWithdrawalsSkipFundingsCode: funding is told a withdrawal is
// Confirmed only when the wizard's own code confirmed it, so funding's
// Require2FA asks for no second code then, and still does for a wizard
// that asked for none.
func TestConfirmedWithdrawalsSkipFundingsCode(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		clk := clock.NewFake(clock.System{}.Now())
		box := mail.NewMailbox(0, clk)
		tf, err := twofactor.New(twofactor.Deps{DB: db, Clock: clk, Mailer: box}, twofactor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		customers := func(_ context.Context, userID string) (withdrawwizard.Customer, error) {
			return withdrawwizard.Customer{Customer: funding.Customer{UserID: userID, Email: userID + "@example.com", Lang: "en"}, Name: userID}, nil
		}
		sub := func(userID, uuid string) withdrawwizard.Submission {
			return withdrawwizard.Submission{UserID: userID, UUID: uuid, AccountID: 3000001, MethodNumber: 2, Amount: "100.00", CurrencyCode: 840,
				Data: map[string]string{"iban": "DE89 3704 0044 0532 0130 00", "holderName": "Alice Archer"}}
		}
		for _, tc := range []struct {
			name       string
			require2FA bool
			want       bool
		}{
			{"confirmed with the wizard's e-mailed code", true, true},
			{"no second factor asked", false, false},
		} {
			fund := &recordingFunding{}
			s, err := withdrawwizard.New(withdrawwizard.Deps{DB: db, Clock: clk, Funding: fund, Pricer: freePricer{}, TwoFactor: tf,
				Customers: customers}, withdrawwizard.Config{Require2FA: tc.require2FA})
			if err != nil {
				t.Fatal(err)
			}
			user := "usr_" + map[bool]string{true: "code", false: "nocode"}[tc.require2FA]
			w, err := s.Start(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Submit(ctx, sub(user, w.UUID)); err != nil {
				t.Fatalf("%s: Submit: %v", tc.name, err)
			}
			if tc.require2FA {
				m, ok := box.Last(user + "@example.com")
				found := wizardCodeRE.FindStringSubmatch(m.Mail.Text)
				if !ok || found == nil {
					t.Fatalf("%s: no code mailed", tc.name)
				}
				if _, err := s.Confirm(ctx, user, w.UUID, found[1]); err != nil {
					t.Fatalf("%s: Confirm: %v", tc.name, err)
				}
			}
			if len(fund.reqs) != 1 || fund.reqs[0].Confirmed != tc.want {
				t.Errorf("%s: funding got %+v, want one request with Confirmed %v", tc.name, fund.reqs, tc.want)
			}
		}
	}, twofactor.Schema, withdrawwizard.Schema)
}
