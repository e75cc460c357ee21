package wizardapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/wizardapi"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// fakeFunding offers Alice's USD account with the default catalog's
// methods and records nothing: the fuzz target only needs the checks.
type fakeFunding struct{ catalog *payments.Catalog }

func (f fakeFunding) WithdrawalOptions(_ context.Context, u funding.Customer, login int64) (funding.WithdrawalOptions, error) {
	if login != aliceUSD || u.UserID != "usr_alice" {
		return funding.WithdrawalOptions{}, errs.E(errs.NotFound, "fakeFunding", "no such account")
	}
	return funding.WithdrawalOptions{
		Account: funding.AccountView{Login: login, Currency: usd, Balance: money.New(100000, usd), Withdrawable: money.New(100000, usd), BalanceKnown: true},
		Methods: f.catalog.Methods(),
	}, nil
}

func (fakeFunding) RequestWithdrawal(context.Context, funding.WithdrawalRequest) (funding.Withdrawal, error) {
	return funding.Withdrawal{}, errs.E(errs.Unavailable, "fakeFunding", "previews only")
}

func (fakeFunding) Withdrawal(context.Context, string, string) (funding.Withdrawal, error) {
	return funding.Withdrawal{}, errs.E(errs.NotFound, "fakeFunding", "previews only")
}

// catalogPricer prices with the catalog alone (no FX).
type catalogPricer struct{ catalog *payments.Catalog }

func (p catalogPricer) PriceWithdrawal(_ context.Context, methodID string, debit money.Amount, _ money.Currency, lang string) (payments.Price, error) {
	q, err := p.catalog.Quote(methodID, payments.Withdrawal, debit, lang)
	if err != nil {
		return payments.Price{}, err
	}
	return payments.Price{Quote: q, Account: debit}, nil
}

// FuzzSubmitPreview sends arbitrary bodies to the submit endpoint as
// previews: the answer is always JSON with a 2xx or 4xx status, and a
// preview's amount is exactly the decimal that was sent.
func FuzzSubmitPreview(f *testing.F) {
	for _, seed := range []string{
		`{"accountId":8673590,"methodId":2,"amount":100.00,"currencyCode":840,"uuid":"U","isPretend":true,"data":{"iban":"DE89 3704 0044 0532 0130 00","holderName":"A"}}`,
		`{"accountId":8673590,"methodId":3,"amount":12.5,"currencyCode":840,"uuid":"U","isPretend":true,"data":{"walletId":"w-123"}}`,
		`{"accountId":8673590,"methodId":2,"amount":1e2,"currencyCode":840,"uuid":"U","isPretend":true}`,
		`{"accountId":"1","methodId":2.0,"amount":"100","currencyCode":-1,"uuid":"U","isPretend":true}`,
		`{"amount":100.001,"uuid":"U","isPretend":true}`,
		`[]`, `null`, `{"data":{"iban":null}}`, `{"accountId":8673590,"accountId":1}`,
	} {
		f.Add(seed)
	}
	db := dbtest.Open(f, sqlstore.SQLite, twofactor.Schema, withdrawwizard.Schema)
	clk := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	tf, err := twofactor.New(twofactor.Deps{DB: db, Clock: clk}, twofactor.Config{})
	if err != nil {
		f.Fatal(err)
	}
	cat := payments.DefaultCatalog()
	wiz, err := withdrawwizard.New(withdrawwizard.Deps{DB: db, Clock: clk, Funding: fakeFunding{cat}, Pricer: catalogPricer{cat}, TwoFactor: tf,
		Customers: func(_ context.Context, userID string) (withdrawwizard.Customer, error) { return customers[userID], nil }},
		withdrawwizard.Config{})
	if err != nil {
		f.Fatal(err)
	}
	h, err := wizardapi.New(wizardapi.Options{Wizard: wiz, Authenticate: authenticate})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	w, err := wiz.Start(context.Background(), "usr_alice")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(body, `"U"`, `"`+w.UUID+`"`)
		req := httptest.NewRequest("POST", "/api/v2/my/withdrawals", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok-alice")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		raw, _ := io.ReadAll(rec.Body)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, raw)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("non-JSON answer %q for %q", raw, body)
		}
		if rec.Code != http.StatusOK {
			return
		}
		var in struct {
			Amount json.Number `json:"amount"`
		}
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("a body that does not decode was accepted: %q", body)
		}
		sent, err := money.ParseNumber(in.Amount, usd)
		if err != nil {
			t.Fatalf("accepted amount %q that does not parse: %v", in.Amount, err)
		}
		var got struct {
			Amount json.Number `json:"amount"`
			Status string      `json:"status"`
		}
		_ = json.Unmarshal(raw, &got)
		answered, err := money.ParseNumber(got.Amount, usd)
		if got.Status != "preview" || err != nil || !answered.Equal(sent) {
			t.Fatalf("preview of %s answered %s (%s)", in.Amount, got.Amount, raw)
		}
	})
}
