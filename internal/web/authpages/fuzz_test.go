package authpages_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/authpages"
)

// fuzzMarker is appended to fuzzed values; seen raw in a page it means a
// value was shown back without escaping.
const fuzzMarker = "<k3w>"

// fuzzRoutes are the identity screens' routes; the fuzzer picks one.
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/auth/login"}, {"POST", "/auth/login"}, {"POST", "/auth/signup"}, {"GET", "/auth/reset"}, {"POST", "/auth/reset"},
	{"GET", "/auth/reset/confirm"}, {"POST", "/auth/reset/confirm"}, {"GET", "/account/create"}, {"POST", "/account/create"},
	{"GET", "/auth/nowhere"},
}

// FuzzPages sends every identity screen arbitrary lang, theme, source,
// attribution parameters, e-mail, password, token and account fields: the
// screens never panic, never answer 5xx, never show a fuzzed value
// unescaped, and redirect only to the success URL or their own origin.
func FuzzPages(f *testing.F) {
	const origin = "https://crm.broker.example"
	const success = "https://app.example/success"
	db := dbtest.Open(f, sqlstore.SQLite, identity.Schema)
	svc, clk, _ := identitytest.NewService(f, db, identity.Config{DefaultLanguage: "en"})
	if _, err := svc.CreateUser(ctx, identity.NewUser{Email: "anna@example.com", Password: "long enough", Language: "en"}); err != nil {
		f.Fatal(err)
	}
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	h, err := authpages.New(svc, r, authpages.Options{SuccessURL: success, PublicURL: origin, Mailer: mail.NewMailbox(10, clk),
		Clock: clk, Logger: slog.New(slog.DiscardHandler), FormEvery: time.Nanosecond, FormBurst: 1 << 30, ResetEvery: time.Nanosecond, ResetBurst: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), "de", "dark", "app", "anna@example.com", "long enough", "")
	f.Add(uint8(1), `"><script>`, "light'", "<img src=x>", "anna@example.com", "long enough", "")
	f.Add(uint8(1), "ar", "", "", "anna@example.com", "wrong", "")
	f.Add(uint8(1), "de", "dark", "<b>", "anna@example.com!", "long enough", "")
	f.Add(uint8(2), "es", "", "", "new@example.com", "long enough", "USD")
	f.Add(uint8(4), "", "", "", "anna@example.com", "", "")
	f.Add(uint8(5), "", "", "", "", "", "AAAA")
	f.Add(uint8(6), "", "", "", "", "long enough 2", "' OR 1=1 --")
	f.Add(uint8(8), "", "", "", "", "", "live")
	f.Fuzz(func(t *testing.T, which uint8, lang, theme, source, email, password, token string) {
		route := fuzzRoutes[int(which)%len(fuzzRoutes)]
		mark := func(v string) string {
			if v == "" {
				return ""
			}
			return v + fuzzMarker
		}
		q := url.Values{}
		for k, v := range map[string]string{"lang": mark(lang), "theme": mark(theme), "source": mark(source), "partnerId": mark(source),
			"utm_source": mark(source), "gclid": mark(token), "email": mark(email), "password": password, "password_confirm": password,
			"token": mark(token), "currency": mark(token), "environment": mark(token), "firstLogin": token} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if route.method == http.MethodPost && strings.HasSuffix(email, "!") {
			q.Set("email", strings.TrimSuffix(email, "!")) // an unmarked e-mail can log in or sign up
		}
		var req *http.Request
		if route.method == http.MethodPost {
			req = httptest.NewRequest(route.method, origin+route.path, strings.NewReader(q.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(route.method, origin+route.path+"?"+q.Encode(), nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %v answered %d:\n%s", route.method, route.path, q, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), fuzzMarker) {
			t.Fatalf("%s %s %v shows a value unescaped:\n%s", route.method, route.path, q, w.Body)
		}
		if loc := w.Header().Get("Location"); loc != "" {
			if strings.Contains(loc, fuzzMarker) {
				t.Fatalf("redirect carries a value unescaped: %q", loc)
			}
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("redirect to an unparsable %q", loc)
			}
			abs := req.URL.ResolveReference(u).String()
			if !strings.HasPrefix(abs, origin+"/") && !strings.HasPrefix(abs, success+"?") && abs != success {
				t.Fatalf("%s %s %v redirects off the configured origins, to %q", route.method, route.path, q, loc)
			}
		}
	})
}
