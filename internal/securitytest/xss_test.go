package securitytest

import (
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// payloads are script injections for HTML text, attributes, URLs and
// inline script or style contexts.
var payloads = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`'><svg onload=alert(1)>`,
	`</style><script>alert(1)</script>`,
	`javascript:alert(1)//<b>`,
}

// shownRaw reports the payload a page carries unescaped, if any.
func shownRaw(body string) string {
	for _, p := range payloads {
		if strings.Contains(body, p) {
			return p
		}
	}
	return ""
}

// Every field the screens show back — lang, theme and source, amounts and
// currencies, the IBAN holder and the other withdrawal details, e-mail
// addresses, tokens in error pages, the help page's back link — appears
// only escaped, on the page and in its headers.
func TestShownBackFieldsAreEscaped(t *testing.T) {
	s := newSystem(t)
	for _, p := range payloads {
		q := "&lang=" + url.QueryEscape(p) + "&theme=" + url.QueryEscape(p) + "&source=" + url.QueryEscape(p)
		h, first := s.open("deposit", s.alice, simAliceUSD, q)
		wh, wfirst := s.open("withdraw", s.alice, simAliceUSD, q)
		hs, whs := url.QueryEscape(h), url.QueryEscape(wh)
		pe := url.QueryEscape(p)
		pages := map[string]reply{
			"deposit entry":          first,
			"withdraw entry":         wfirst,
			"deposit amount":         s.get("/inapp/deposit/amount?method=card&amount=" + pe + "&currency=" + pe + "&s=" + hs),
			"deposit amount, method": s.get("/inapp/deposit/amount?method=" + pe + "&s=" + hs),
			"deposit quote":          s.get("/inapp/deposit/quote?method=card&amount=" + pe + "&currency=USD&s=" + hs),
			"deposit review":         s.get("/inapp/deposit/review?method=card&amount=" + pe + "&currency=USD&s=" + hs),
			"deposit status":         s.get("/inapp/deposit/status?t=" + pe),
			"withdraw details": s.postForm("/inapp/withdraw/details", url.Values{"s": {wh}, "method": {"bank-transfer"}, "amount": {p},
				"holderName": {p}, "iban": {p}, "bic": {p}}),
			"withdraw review": s.postForm("/inapp/withdraw/review", url.Values{"s": {wh}, "method": {"bank-transfer"}, "amount": {"10.00"},
				"holderName": {p}, "iban": {"DE89 3704 0044 0532 0130 00"}}),
			"withdraw wallet": s.postForm("/inapp/withdraw/review", url.Values{"s": {wh}, "method": {"ewallet"}, "amount": {"10.00"},
				"walletId": {p}}),
			"withdraw status":  s.get("/inapp/withdraw/status?t=" + pe + "&s=" + whs),
			"help":             s.get("/inapp/help?back=" + pe + "&s=" + hs + "&lang=" + pe + "&theme=" + pe),
			"token error":      s.get("/inapp/deposit?token=" + pe + "&lang=" + pe + "&theme=" + pe + "&source=" + pe),
			"account error":    s.get("/inapp/withdraw?token=x&account=" + pe),
			"not found":        s.get("/inapp/" + pe),
			"login page":       s.get("/auth/login?lang=" + pe + "&theme=" + pe + "&source=" + pe + "&partnerId=" + pe + "&utm_source=" + pe),
			"login error":      s.postForm("/auth/login", url.Values{"email": {p + "@example.com"}, "password": {p}, "lang": {p}, "source": {p}}),
			"signup error":     s.postForm("/auth/signup", url.Values{"email": {p}, "password": {"x"}, "currency": {p}, "environment": {p}}),
			"reset":            s.postForm("/auth/reset", url.Values{"email": {p}, "theme": {p}}),
			"reset confirm":    s.get("/auth/reset/confirm?token=" + pe + "&lang=" + pe),
			"account creation": s.get("/account/create?token=" + pe + "&lang=" + pe),
		}
		s.clk.Advance(10 * time.Minute) // refill the form limits between payloads
		// The fields are really shown back (escaped), so the check above
		// looks at pages that carry them.
		for _, name := range []string{"withdraw details", "withdraw review", "deposit amount", "login error"} {
			if b := pages[name].body; !strings.Contains(b, html.EscapeString(p)) && !strings.Contains(b, template.HTMLEscapeString(p)) {
				t.Errorf("%s does not show %q back at all; the test looks at the wrong page:\n%s", name, p, b)
			}
		}
		for name, r := range pages {
			if r.status >= 500 {
				t.Errorf("%s with %q answered %d", name, p, r.status)
			}
			if raw := shownRaw(r.body); raw != "" {
				t.Errorf("%s shows %q unescaped:\n%s", name, raw, r.body)
			}
			for k, vs := range r.header {
				for _, v := range vs {
					if raw := shownRaw(v); raw != "" {
						t.Errorf("%s: header %s carries %q unescaped", name, k, raw)
					}
				}
			}
			if ct := r.header.Get("Content-Type"); r.status != http.StatusSeeOther && r.body != "" &&
				!strings.HasPrefix(ct, "text/html") && !strings.Contains(ct, "json") {
				t.Errorf("%s answered with Content-Type %q", name, ct)
			}
		}
	}
}

// Error messages that name what was sent (an unknown JSON field, a bad
// value) come back as JSON with nosniff, and the JSON escapes the payload,
// so no browser renders them as HTML.
func TestErrorMessagesAreNotHTML(t *testing.T) {
	s := newSystem(t)
	bearer := http.Header{"Authorization": {"Bearer sk_security"}}
	for _, p := range payloads {
		key := jsonString(p)
		for name, r := range map[string]reply{
			"sandbox API unknown field": s.do(http.MethodPost, "/sandbox/api/payments", `{`+key+`:1}`, bearer),
			"sandbox API bad value":     s.do(http.MethodPost, "/sandbox/api/payments", `{"amount":`+key+`,"currency":`+key+`,"method":`+key+`}`, bearer),
			"validate-token":            s.postJSON("/api/validate-token", `{"token":`+key+`,"account":`+key+`}`),
			"crmApiToken":               s.postJSON("/oauth2/crmApiToken", `{"password":{`+key+`:1}}`),
			"webhook":                   s.postJSON("/psp/sandbox/webhook", `{`+key+`:1}`),
			"screens status.json":       s.get("/inapp/deposit/status.json?t=" + url.QueryEscape(p)),
		} {
			if r.status >= 500 {
				t.Errorf("%s answered %d", name, r.status)
			}
			if raw := shownRaw(r.body); raw != "" {
				t.Errorf("%s answers %q unescaped: %s", name, raw, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "json") {
				t.Errorf("%s answered Content-Type %q, want JSON", name, ct)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s answered without nosniff", name)
			}
		}
	}
}
