package securitytest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/payments"
)

// Every page — the identity screens, the cashier screens (money pages),
// their error pages, the sandbox's hosted checkout — carries a CSP that
// names the frame ancestors and allows no inline script, nosniff, no
// referrer and no-store, and never X-Frame-Options (which would stop
// cTrader from framing the cashier).
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	s := newSystem(t)
	h, first := s.open("deposit", s.alice, simAliceUSD, "")
	hs := url.QueryEscape(h)
	p, err := s.pay.Deposit(ctx, payments.DepositRequest{MethodID: "card", Amount: mustUSD(t, "10.00"), AccountCurrency: mustCur("USD"),
		Customer:  payments.Customer{ID: s.alice.ID, AccountID: "3000001", Email: "alice@example.com", Country: "DE", KYCLevel: 2},
		ReturnURL: s.url + "/inapp/deposit/return", Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]reply{
		"deposit entry":       first,
		"deposit":             s.get("/inapp/deposit?s=" + hs),
		"deposit amount":      s.get("/inapp/deposit/amount?method=card&s=" + hs),
		"deposit quote":       s.get("/inapp/deposit/quote?method=card&amount=10&currency=USD&s=" + hs),
		"deposit review":      s.get("/inapp/deposit/review?method=card&amount=10.00&currency=USD&s=" + hs),
		"deposit status json": s.get("/inapp/deposit/status.json?t=x"),
		"withdraw":            s.get("/inapp/withdraw?s=" + hs),
		"withdraw details":    s.get("/inapp/withdraw/details?method=bank-transfer&s=" + hs),
		"withdraw status":     s.get("/inapp/withdraw/status?t=x"),
		"help":                s.get("/inapp/help?s=" + hs),
		"token error":         s.get("/inapp/deposit?token=x"),
		"session error":       s.get("/inapp/deposit?s=x"),
		"screens not found":   s.get("/inapp/nowhere"),
		"login":               s.get("/auth/login"),
		"login error":         s.postForm("/auth/login", url.Values{"email": {"alice@example.com"}, "password": {"wrong"}}),
		"login success":       s.postForm("/auth/login", url.Values{"email": {"alice@example.com"}, "password": {password}}),
		"reset":               s.get("/auth/reset"),
		"reset confirm":       s.get("/auth/reset/confirm?token=x"),
		"account creation":    s.get("/account/create"),
		"checkout":            s.get("/sandbox/checkout/" + p.ProviderRef),
		"checkout 3-D Secure": s.get("/sandbox/checkout/" + p.ProviderRef + "/3ds"),
		"sandbox control":     s.get("/sandbox/control"),
	}
	for name, r := range pages {
		if r.status >= 500 {
			t.Errorf("%s answered %d", name, r.status)
		}
		csp := r.header.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors " + frameAncestor, "default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", name, csp, want)
			}
		}
		if strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("%s: CSP allows unsafe sources: %q", name, csp)
		}
		if n := len(r.header.Values("Content-Security-Policy")); n != 1 {
			t.Errorf("%s carries %d CSP headers, want exactly one", name, n)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
		if !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: Cache-Control %q, want no-store", name, r.header.Get("Cache-Control"))
		}
		if v := r.header.Get("X-Frame-Options"); v != "" {
			t.Errorf("%s sends X-Frame-Options %q", name, v)
		}
	}
	// The cTrader endpoints and validate-token answer JSON that is never cached.
	for name, r := range map[string]reply{
		"crmApiToken":    s.postJSON("/oauth2/crmApiToken", `{"password":"x"}`),
		"validate-token": s.postJSON("/api/validate-token", `{"token":"x"}`),
	} {
		if !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: Cache-Control %q, want no-store", name, r.header.Get("Cache-Control"))
		}
	}
}

// Every other answer of the server — the APIs, the webhook intake, the
// probes, and the 404 for an address nothing serves — is not to be
// sniffed, framed or given a referrer either.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	s := newSystem(t)
	for name, r := range map[string]reply{
		"not found":       s.get("/"),
		"favicon":         s.get("/favicon.ico"),
		"not found deep":  s.get("/wp-admin/install.php"),
		"healthz":         s.get("/healthz"),
		"readyz":          s.get("/readyz"),
		"metrics":         s.get("/metrics"),
		"crmApiToken":     s.postJSON("/oauth2/crmApiToken", `{"password":"x"}`),
		"oauth not found": s.postJSON("/oauth2/nowhere", `{}`),
		"validate-token":  s.postJSON("/api/validate-token", `{"token":"x"}`),
		"webhook":         s.postJSON("/psp/sandbox/webhook", `{}`),
		"webhook unknown": s.postJSON("/psp/nowhere/webhook", `{}`),
		"sandbox API":     s.postJSON("/sandbox/api/payments", `{}`),
	} {
		if r.status >= 500 {
			t.Errorf("%s answered %d", name, r.status)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s (%d): %s = %q, want %q", name, r.status, k, got, want)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors") {
			t.Errorf("%s (%d): CSP %q names no frame ancestors", name, r.status, csp)
		}
		if n := len(r.header.Values("Content-Security-Policy")); n > 1 {
			t.Errorf("%s carries %d CSP headers", name, n)
		}
		if v := r.header.Get("X-Frame-Options"); v != "" {
			t.Errorf("%s sends X-Frame-Options %q", name, v)
		}
	}
}
