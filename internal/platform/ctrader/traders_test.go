package ctrader_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	dto "github.com/prometheus/client_model/go"
)

func TestGetTraderScalesByMoneyDigits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		login       int64
		wantDigits  int
		wantBalance string
		wantCode    string
	}{
		{loginUSD, 2, "1000.00", "USD"},
		{loginJPY, 0, "150000", "JPY"},
		{loginBTC, 8, "0.05000000", "BTC"},
	}
	for _, tt := range tests {
		t.Run(tt.wantCode, func(t *testing.T) {
			tr := must(e.client.GetTrader(ctx, tt.login))(t)
			got := []any{tr.MoneyDigits, tr.Balance.Decimal(), tr.Currency.Code, tr.Equity.Decimal(), tr.FreeMargin.Decimal(), tr.CashEquity.Decimal()}
			want := []any{tt.wantDigits, tt.wantBalance, tt.wantCode, tt.wantBalance, tt.wantBalance, tt.wantBalance}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("digits, balance, currency, equity, free margin, cash equity (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := e.client.GetTrader(ctx, 4242); !errs.Is(err, errs.NotFound) {
		t.Errorf("GetTrader(unknown) = %v, want ENOTFOUND", err)
	}
}

func TestCreatePatchListTraders(t *testing.T) {
	e := newEnv(t, func(s *ctradersim.Config, _ *ctrader.Config) {
		s.Groups = []string{"default", "retail"}
		s.ListPageSize = 2
	})
	ctx := context.Background()
	e.clk.Advance(time.Hour) // created traders register an hour after the seeded ones
	created := must(e.client.CreateTrader(ctx, ctrader.NewTrader{
		Currency: jpy, Balance: amount(t, "5000", jpy), BrokerName: brokerWL, GroupName: "retail",
		HashedPassword: ctrader.HashPassword(traderPW), Name: "Jun", LastName: "Ito",
		ContactDetails: &ctrader.ContactDetails{Email: "jun@example.com", CountryID: 392},
	}))(t)
	if created.Login <= loginUSD2 || created.Balance.Decimal() != "5000" || created.MoneyDigits != 0 ||
		created.AccessRights != "FULL_ACCESS" || created.LeverageInCents != 10000 || created.ContactDetails.Email != "jun@example.com" {
		t.Errorf("created trader = %+v", created)
	}
	if !created.Registered.Equal(e.clk.Now().Truncate(time.Millisecond)) {
		t.Errorf("registered %v, want the simulator's clock %v", created.Registered, e.clk.Now())
	}
	read := must(e.client.GetTrader(ctx, created.Login))(t)
	if diff := cmp.Diff(created, read); diff != "" {
		t.Errorf("GetTrader differs from CreateTrader (-created +read):\n%s", diff)
	}

	name, lev := "Junichi", int64(5000)
	patched := must(e.client.PatchTrader(ctx, created.Login, ctrader.TraderPatch{Name: &name, LeverageInCents: &lev}))(t)
	if patched.Name != "Junichi" || patched.LeverageInCents != 5000 || patched.LastName != "Ito" || patched.Balance.Decimal() != "5000" {
		t.Errorf("patched trader = %+v", patched)
	}

	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	page := must(e.client.ListTraders(ctx, start, start.Add(24*time.Hour)))(t)
	if len(page.Traders) != 2 || !page.HasMore {
		t.Errorf("first page has %d traders, hasMore %v; want 2 and more", len(page.Traders), page.HasMore)
	}
	late := must(e.client.ListTraders(ctx, e.clk.Now(), e.clk.Now().Add(time.Minute)))(t)
	if len(late.Traders) != 1 || late.Traders[0].Login != created.Login || late.HasMore {
		t.Errorf("traders registered in the last minute = %+v", late)
	}

	refusals := []struct {
		name string
		nt   ctrader.NewTrader
		want errs.Code
	}{
		{"unknown access rights", ctrader.NewTrader{AccessRights: "ROOT"}, errs.Invalid},
		{"unknown group", ctrader.NewTrader{GroupName: "vip"}, errs.NotFound},
		{"broker of another plant", ctrader.NewTrader{BrokerName: "other_broker"}, errs.Invalid},
		{"password not hashed", ctrader.NewTrader{HashedPassword: "plain"}, errs.Invalid},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			nt := ctrader.NewTrader{Currency: usd, BrokerName: brokerWL, GroupName: "default", HashedPassword: ctrader.HashPassword("x")}
			if r.nt.AccessRights != "" {
				nt.AccessRights = r.nt.AccessRights
			}
			if r.nt.GroupName != "" {
				nt.GroupName = r.nt.GroupName
			}
			if r.nt.BrokerName != "" {
				nt.BrokerName = r.nt.BrokerName
			}
			if r.nt.HashedPassword != "" {
				nt.HashedPassword = r.nt.HashedPassword
			}
			if _, err := e.client.CreateTrader(ctx, nt); !errs.Is(err, r.want) {
				t.Errorf("CreateTrader = %v, want %s", err, r.want)
			}
		})
	}
}

func TestCTIDCalls(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := must(e.client.CreateCTID(ctx, ctrader.NewCTID{Email: "Dora@Example.com", BrokerCrmName: brokerCRM, PreferredLanguage: "de", NickName: "dora"}))(t)
	again := must(e.client.CreateCTID(ctx, ctrader.NewCTID{Email: "dora@example.com", BrokerCrmName: brokerCRM}))(t)
	if id <= userAlice || again != id {
		t.Errorf("CreateCTID = %d then %d for the same email; want one new id", id, again)
	}
	link := must(e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: loginUSD2, TraderPasswordHash: ctrader.HashPassword(traderPW),
		UserID: id, BrokerName: brokerWL, EnvironmentName: "demo"}))(t)
	relink := must(e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: loginUSD2, TraderPasswordHash: ctrader.HashPassword(traderPW),
		UserID: id, BrokerName: brokerWL, EnvironmentName: "demo"}))(t)
	if link <= 0 || relink != link {
		t.Errorf("LinkAccount = %d then %d; want one link id", link, relink)
	}
	if err := e.client.ChangeEmail(ctx, id, "dora.new@example.com", brokerCRM); err != nil {
		t.Fatalf("ChangeEmail: %v", err)
	}
	if got := must(e.client.CreateCTID(ctx, ctrader.NewCTID{Email: "dora.new@example.com", BrokerCrmName: brokerCRM}))(t); got != id {
		t.Errorf("the new email belongs to user %d, want %d", got, id)
	}

	refusals := []struct {
		name string
		call func() error
		want errs.Code
	}{
		{"apple private relay", func() error {
			_, err := e.client.CreateCTID(ctx, ctrader.NewCTID{Email: "x@privaterelay.appleid.com", BrokerCrmName: brokerCRM})
			return err
		}, errs.Invalid},
		{"unknown brokerCrmName", func() error {
			_, err := e.client.CreateCTID(ctx, ctrader.NewCTID{Email: "y@example.com", BrokerCrmName: "Demo_CRM"})
			return err
		}, errs.Invalid},
		{"wrong trader password", func() error {
			_, err := e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: loginBTC, TraderPasswordHash: ctrader.HashPassword("nope"),
				UserID: id, BrokerName: brokerWL, EnvironmentName: "demo"})
			return err
		}, errs.Invalid},
		{"unknown trader", func() error {
			_, err := e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: 4242, TraderPasswordHash: ctrader.HashPassword(traderPW),
				UserID: id, BrokerName: brokerWL, EnvironmentName: "demo"})
			return err
		}, errs.NotFound},
		{"unknown user", func() error {
			_, err := e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: loginBTC, TraderPasswordHash: ctrader.HashPassword(traderPW),
				UserID: 99, BrokerName: brokerWL, EnvironmentName: "demo"})
			return err
		}, errs.NotFound},
		{"account linked to another user", func() error {
			_, err := e.client.LinkAccount(ctx, ctrader.Link{TraderLogin: loginUSD, TraderPasswordHash: ctrader.HashPassword(traderPW),
				UserID: id, BrokerName: brokerWL, EnvironmentName: "demo"})
			return err
		}, errs.Conflict},
		{"email of an unknown user", func() error { return e.client.ChangeEmail(ctx, 99, "z@example.com", brokerCRM) }, errs.NotFound},
		{"email taken by another user", func() error { return e.client.ChangeEmail(ctx, id, "alice@example.com", brokerCRM) }, errs.Conflict},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			if err := r.call(); !errs.Is(err, r.want) {
				t.Errorf("error = %v, want %s", err, r.want)
			}
		})
	}
}

func TestRedeemInAppToken(t *testing.T) {
	for _, path := range []string{ctrader.DefaultRedeemPath, "/cid/ctid2/inAppToken/redeem"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, func(_ *ctradersim.Config, c *ctrader.Config) { c.RedeemPath = path })
			ctx := context.Background()
			tok, _ := must2(e.sim.IssueHandoffToken(userAlice, loginJPY))(t)
			got := must(e.client.RedeemInAppToken(ctx, tok))(t)
			if diff := cmp.Diff(ctrader.Handoff{UserID: userAlice, Email: "alice@example.com", TradingLogin: loginJPY}, got); diff != "" {
				t.Errorf("redeemed (-want +got):\n%s", diff)
			}
			if _, err := e.client.RedeemInAppToken(ctx, tok); !errs.Is(err, errs.NotFound) {
				t.Errorf("second redeem = %v, want ENOTFOUND (single use)", err)
			}
		})
	}
	t.Run("lifetime", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		fresh, _ := must2(e.sim.IssueHandoffToken(userAlice, 0))(t)
		old, exp := must2(e.sim.IssueHandoffToken(userAlice, 0))(t)
		if want := e.clk.Now().Add(60 * time.Second); !exp.Equal(want) {
			t.Errorf("expires %v, want %v", exp, want)
		}
		e.clk.Advance(59 * time.Second)
		if h, err := e.client.RedeemInAppToken(ctx, fresh); err != nil || h.TradingLogin != loginUSD {
			t.Errorf("redeem at 59 s = %+v, %v; want alice's first account", h, err)
		}
		e.clk.Advance(time.Second)
		if _, err := e.client.RedeemInAppToken(ctx, old); !errs.Is(err, errs.NotFound) {
			t.Errorf("redeem at 60 s = %v, want ENOTFOUND (expired)", err)
		}
		if _, err := e.client.RedeemInAppToken(ctx, "never-issued"); !errs.Is(err, errs.NotFound) {
			t.Errorf("redeem of an unknown token = %v, want ENOTFOUND", err)
		}
	})
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// stub is a WebServices server that answers the manager login, the trader
// read of loginUSD, and one scripted answer for every other request.
func stub(t *testing.T, status int, contentType, body string) *ctrader.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/webserv/managers/token":
			fmt.Fprint(w, `{"webservToken":"t-1"}`)
		case r.Method == http.MethodGet && r.URL.Path == fmt.Sprintf("/v2/webserv/traders/%d", loginUSD):
			fmt.Fprintf(w, `{"login":%d,"depositCurrency":"USD","moneyDigits":2,"balance":100,"equity":100,"cashEquity":100,"freeMargin":100,"someFutureField":{"a":1}}`, loginUSD)
		default:
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := ctrader.New(ctrader.Config{BaseURL: srv.URL, ManagerLogin: 1, ManagerPassword: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTolerantErrorParsing(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		// what GetTrader reports
		wantCode errs.Code
		wantMsg  string
		// what ChangeBalance reports: "rejected:CODE" or "ambiguous"
		wantChange string
	}{
		{"WebServices shape", 404, "application/json", `{"errorCode":"TRADER_NOT_FOUND","description":"no such trader"}`, errs.NotFound, "no such trader", "rejected:TRADER_NOT_FOUND"},
		{"SSO shape", 400, "application/json", `{"error":"Bad Request","message":"amount is negative","code":"CHANGE_BALANCE_BAD_AMOUNT"}`, errs.Invalid, "amount is negative", "rejected:CHANGE_BALANCE_BAD_AMOUNT"},
		{"plain text 4xx", 400, "text/plain", "Bad Request\n", errs.Invalid, "Bad Request", "ambiguous"},
		{"HTML 502 from a proxy", 502, "text/html", "<html><body>Bad Gateway</body></html>", errs.Unavailable, "<html><body>Bad Gateway</body></html>", "ambiguous"},
		{"408", 408, "application/json", `{"errorCode":"INVALID_REQUEST","description":"timeout"}`, errs.Invalid, "timeout", "ambiguous"},
		{"200 with garbage", 200, "application/json", `{"balanceHistoryId":`, errs.Internal, "cTrader's answer could not be read", "ambiguous"},
		{"200 without an id", 200, "application/json", `{}`, "", "", "ambiguous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stub(t, tt.status, tt.contentType, tt.body)
			_, err := c.PatchTrader(ctx, loginUSD, ctrader.TraderPatch{})
			if tt.wantCode != "" {
				if !errs.Is(err, tt.wantCode) || errs.MessageOf(err) != tt.wantMsg && tt.wantCode != errs.Internal {
					t.Errorf("PatchTrader error = %v (code %s, message %q), want %s %q", err, errs.CodeOf(err), errs.MessageOf(err), tt.wantCode, tt.wantMsg)
				}
			}
			_, err = c.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "x"))
			got := "ok"
			if r, ok := platform.AsRejected(err); ok {
				got = "rejected:" + r.Code
			} else if a, ok := platform.AsAmbiguous(err); ok {
				got = "ambiguous"
				if !strings.Contains(a.Evidence, fmt.Sprintf("HTTP %d", tt.status)) {
					t.Errorf("evidence %q does not give the status", a.Evidence)
				}
			}
			if got != tt.wantChange {
				t.Errorf("ChangeBalance = %s (%v), want %s", got, err, tt.wantChange)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must(e.client.GetTrader(ctx, loginUSD))(t)
	_, _ = e.client.GetTrader(ctx, 4242)
	if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "m1")); err != nil {
		t.Fatal(err)
	}
	families := must(e.reg.Gather())(t)
	counts := map[string]float64{}
	var observed uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "ctrader_requests_total":
				counts[label(m, "endpoint")+"/"+label(m, "outcome")] = m.GetCounter().GetValue()
			case "ctrader_request_duration_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{"token/ok": 1, "trader.read/ok": 1, "trader.read/client_error": 1, "changebalance/ok": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("ctrader_requests_total (-want +got):\n%s", diff)
	}
	if observed != 4 {
		t.Errorf("latency samples = %d, want 4", observed)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
