package cashierpages_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

// fuzzOrigin is the screens' public URL in the fuzz targets; requests go
// straight to the handler.
const fuzzOrigin = "https://cashier.example"

// fuzzMarker is appended to every fuzzed value: seen raw in a page it means
// a value was reflected without escaping.
const fuzzMarker = "<b7z>"

// fuzzRoutes are the screens' routes, the fuzzer picks one by index.
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/inapp/deposit"}, {"GET", "/inapp/withdraw"}, {"POST", "/inapp/account"},
	{"GET", "/inapp/deposit/amount"}, {"GET", "/inapp/deposit/quote"}, {"GET", "/inapp/deposit/review"},
	{"POST", "/inapp/deposit/confirm"}, {"GET", "/inapp/deposit/return"}, {"GET", "/inapp/deposit/status"},
	{"GET", "/inapp/deposit/status.json"}, {"POST", "/inapp/deposit/retry"}, {"GET", "/inapp/withdraw/details"},
	{"POST", "/inapp/withdraw/details"}, {"POST", "/inapp/withdraw/review"}, {"POST", "/inapp/withdraw/confirm"},
	{"GET", "/inapp/withdraw/status"}, {"GET", "/inapp/withdraw/status.json"}, {"POST", "/inapp/withdraw/code"},
	{"GET", "/inapp/help"}, {"GET", "/inapp/nowhere"},
}

var handleRe = regexp.MustCompile(`[?&;]s=([A-Za-z0-9_%.-]+)`)

// fuzzScreens is the screens with real identity on SQLite and fake funding,
// and a session handle of Alice's USD account.
func fuzzScreens(f *testing.F) (http.Handler, *identity.Service, string) {
	db := dbtest.Open(f, sqlstore.SQLite, identity.Schema)
	svc, clk, _ := identitytest.NewService(f, db, identity.Config{DefaultLanguage: "en"})
	fund := newFakeFunding(fuzzOrigin + "/hosted")
	alice, err := svc.CreateUser(ctx, identity.NewUser{Email: "alice@example.com", Password: "long enough", Language: "en"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.LinkAccount(ctx, identity.NewAccount{UserID: alice.ID, Login: aliceUSD, Environment: identity.Demo, Currency: "USD"}); err != nil {
		f.Fatal(err)
	}
	fund.addAccount(alice.ID, aliceUSD, money.New(100000, usd), money.New(25000, usd))
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	h, err := cashierpages.New(cashierpages.Deps{Identity: svc, Funding: fund, Renderer: r, Methods: payments.DefaultCatalog()},
		cashierpages.Options{PublicURL: fuzzOrigin, SuccessURL: "https://app.example/callback/success", FrameAncestors: []string{"https://app.ctrader.com"},
			SupportEmail: "support@broker.example", DefaultCountry: "DE", DefaultKYCLevel: 2, Clock: clk, Logger: slog.New(slog.DiscardHandler),
			Key: []byte("0123456789abcdef0123456789abcdef"), FormBurst: 1 << 30, RedirectAfterOpen: true})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := svc.IssueInAppToken(ctx, alice.ID, aliceUSD)
	if err != nil {
		f.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", fuzzOrigin+"/inapp/deposit?token="+url.QueryEscape(tok)+"&account="+strconv.FormatInt(aliceUSD, 10), nil))
	m := handleRe.FindStringSubmatch(w.Header().Get("Location"))
	if m == nil {
		f.Fatalf("opening the deposit screen answered %d without a handle: %s", w.Code, w.Body)
	}
	s, err := url.QueryUnescape(m[1])
	if err != nil {
		f.Fatal(err)
	}
	return h, svc, s
}

// FuzzScreens requests every screen with arbitrary token, account, lang,
// theme, source, session handle s, ticket t and form values (the genuine
// handle or not): the screens never panic, never answer 5xx, never show a
// fuzzed value unescaped, and never redirect off the cashier's origin or
// the configured success and payment URLs.
func FuzzScreens(f *testing.F) {
	h, _, handle := fuzzScreens(f)
	f.Add(uint8(0), "tok", "8673590", "de", "dark", "app", "", "", "100", false)
	f.Add(uint8(0), "", "-1", `"><script>`, "light'", "<img src=x>", "", "", "", false)
	f.Add(uint8(3), "", "", "ar", "dark", "", "", "", "12.50", true)
	f.Add(uint8(4), "", "", "", "", "", "", "", "1e9", true)
	f.Add(uint8(6), "", "", "", "", "", "", "", "0.001", true)
	f.Add(uint8(8), "", "", "", "", "", "", "AAAA", "", true)
	f.Add(uint8(11), "", "", "es", "", "", "", "", "-5", true)
	f.Add(uint8(13), "", "", "", "", "", "", "", "99999999999999999999", true)
	f.Add(uint8(15), "", "", "", "", "", "x.y.z", "x.y.z", "", false)
	f.Add(uint8(17), "", "", "", "", "", "", "", "123456", true)
	f.Add(uint8(18), "", "", "de", "", "", "", "", "", false)
	f.Add(uint8(2), "", "99", "", "", "", "", "", "' OR 1=1 --", true)
	f.Fuzz(func(t *testing.T, which uint8, token, account, lang, theme, source, s, tk, value string, genuine bool) {
		route := fuzzRoutes[int(which)%len(fuzzRoutes)]
		mark := func(v string) string {
			if v == "" {
				return ""
			}
			return v + fuzzMarker
		}
		q := url.Values{}
		for k, v := range map[string]string{"token": mark(token), "account": account, "lang": mark(lang), "theme": mark(theme),
			"source": mark(source), "s": mark(s), "t": mark(tk), "amount": mark(value), "method": mark(value), "currency": mark(value),
			"code": mark(value), "id": mark(value), "next": value, "back": mark(value), "holder": mark(value), "iban": mark(value),
			"address": mark(value)} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if genuine {
			q.Set("s", handle)
		}
		var req *http.Request
		if route.method == http.MethodPost {
			req = httptest.NewRequest(route.method, fuzzOrigin+route.path, strings.NewReader(q.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(route.method, fuzzOrigin+route.path+"?"+q.Encode(), nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %v answered %d:\n%s", route.method, route.path, q, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), fuzzMarker) {
			t.Fatalf("%s %s %v shows a value unescaped:\n%s", route.method, route.path, q, w.Body)
		}
		for k, vs := range w.Header() {
			for _, v := range vs {
				if strings.Contains(v, fuzzMarker) {
					t.Fatalf("header %s carries a value unescaped: %q", k, v)
				}
			}
		}
		if loc := w.Header().Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("redirect to an unparsable %q", loc)
			}
			abs := req.URL.ResolveReference(u).String()
			if !strings.HasPrefix(abs, fuzzOrigin+"/") && !strings.HasPrefix(abs, "https://app.example/callback/success") {
				t.Fatalf("%s %s %v redirects off the configured origins, to %q", route.method, route.path, q, loc)
			}
		}
	})
}
