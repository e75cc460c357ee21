package validatetoken_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpapi/validatetoken"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var ctx = context.Background()

type balances map[int64]money.Amount

func (b balances) Balance(_ context.Context, login int64) (money.Amount, error) {
	a, ok := b[login]
	if !ok {
		return money.Amount{}, errs.E(errs.NotFound, "fake", "TRADER_NOT_FOUND")
	}
	return a, nil
}

func TestValidateToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
		h, err := validatetoken.New(svc, validatetoken.Options{Logger: slog.New(slog.DiscardHandler), Clock: clk,
			Balances: balances{67890: money.New(1000000, money.MustCurrency("USD")), 67891: money.New(5000000, money.MustCurrency("BTC"))}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(h))
		defer srv.Close()
		post := func(body string) (int, string) {
			res, err := http.Post(srv.URL+"/api/validate-token", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, strings.TrimSpace(string(b))
		}
		anna, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"}})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "bob@example.com", Password: "long enough"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []identity.NewAccount{
			{UserID: anna.User.ID, Login: 67890, Environment: identity.Live, Currency: "USD"},
			{UserID: anna.User.ID, Login: 67891, Environment: identity.Demo, Currency: "BTC"},
			{UserID: anna.User.ID, Login: 67892, Environment: identity.Demo, Currency: "EUR"},
			{UserID: bob.User.ID, Login: 11111, Environment: identity.Live, Currency: "USD"},
		} {
			if _, err := svc.LinkAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		gen := func() string {
			tok, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, "")
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		tok := gen()
		status, body := post(`{"token":"` + tok + `","account":67890}`)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		// The session token differs per call; check it, then compare the rest.
		i := strings.Index(body, `"sessionToken":"`)
		sessTok := body[i+16 : i+16+identity.TokenLen]
		sess, err := svc.Session(ctx, sessTok)
		if err != nil || sess.Account != 67890 || sess.UserID != anna.User.ID {
			t.Fatalf("session %+v, %v", sess, err)
		}
		want := `{"valid":true,"userId":` + strconv.FormatInt(anna.User.CTIDUserID, 10) + `,"email":"anna@example.com","tradingLogin":67890,"accounts":[` +
			`{"login":67890,"balance":10000.00,"currency":"USD","environment":"live"},` +
			`{"login":67891,"balance":0.05000000,"currency":"BTC","environment":"demo"},` +
			`{"login":67892,"balance":null,"currency":"EUR","environment":"demo"}],` +
			`"sessionToken":"` + sessTok + `","sessionExpiresAt":"` + clk.Now().Add(30*time.Minute).Format(time.RFC3339) + `"}`
		if diff := cmp.Diff(want, body); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
		invalid := `{"error":"Invalid Token","message":"Authentication token is invalid or expired.","code":"INVALID_TOKEN"}`
		late := gen()
		clk.Advance(61 * time.Second)
		tests := []struct {
			name   string
			body   string
			status int
			want   string
		}{
			{"used token", `{"token":"` + tok + `"}`, 401, invalid},
			{"expired token", `{"token":"` + late + `"}`, 401, invalid},
			{"unknown token", `{"token":"` + strings.Repeat("A", 43) + `"}`, 401, invalid},
			{"malformed token", `{"token":"abc"}`, 401, invalid},
			{"someone else's account", `{"token":"` + gen() + `","account":11111}`, 403, ""},
			{"missing token", `{}`, 400, `{"error":"Invalid Request","message":"Required parameter 'token' is missing","code":"INVALID_REQUEST"}`},
			{"token not a string", `{"token":5}`, 400, ""},
			{"malformed JSON", `{"token":`, 400, ""},
			{"oversized", `{"token":"` + strings.Repeat("x", 5000) + `"}`, 413, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body := post(tc.body)
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.want != "" {
					if diff := cmp.Diff(tc.want, body); diff != "" {
						t.Errorf("body (-want +got):\n%s", diff)
					}
				} else if !strings.Contains(body, `"code":"`) || !strings.Contains(body, `"message":"`) {
					t.Errorf("error body lacks code or message: %s", body)
				}
			})
		}
		// Without an account the session takes the only account there is.
		single, err := svc.GenerateInAppOT(ctx, bob.User.CTIDUserID, "")
		if err != nil {
			t.Fatal(err)
		}
		if status, body := post(`{"token":"` + single + `"}`); status != 200 || !strings.Contains(body, `"tradingLogin":11111`) {
			t.Errorf("bob's token: %d %s", status, body)
		}
	}, identity.Schema)
}

func TestNewNeedsBalances(t *testing.T) {
	if _, err := validatetoken.New(nil, validatetoken.Options{}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("New without balances: %v", err)
	}
}
