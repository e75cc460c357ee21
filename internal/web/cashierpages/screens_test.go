package cashierpages_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

// The token is consumed on first load and replaced by a handle: the first
// screen comes at once with the token-less URL, which the page's script
// puts in the address bar (and a <meta> refresh goes to without
// JavaScript); the same token cannot open the cashier again.
func TestOpenReplacesTokenWithSession(t *testing.T) {
	s := newSite(t)
	tok := s.token(s.alice, aliceUSD)
	first := s.get("/inapp/deposit?token=" + url.QueryEscape(tok) + "&account=8673590&lang=en&theme=light&source=iOS&utm_source=x&eventName=deposit_initiated")
	first.must(t, 200, "8673590", `id="method-card"`, `id="method-bank-transfer"`, "Bank card", "$1,000.00", `aria-current="step"`)
	m := regexp.MustCompile(`<div hidden id="canonical" data-url="([^"]+)"></div><noscript><meta http-equiv="refresh" content="0;url=([^"]+)"></noscript>`).FindStringSubmatch(first.body)
	if m == nil || html.UnescapeString(m[1]) != html.UnescapeString(m[2]) {
		t.Fatalf("the first screen names no token-less URL:\n%s", first.body)
	}
	canonical, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || canonical.Path != "/inapp/deposit" || canonical.Query().Get("s") == "" || canonical.Query().Has("token") {
		t.Fatalf("token-less URL %q", m[1])
	}
	if strings.Contains(first.body, tok) {
		t.Fatal("the first screen carries the token in a link or form")
	}
	s.get(canonical.String()).must(t, 200, `id="method-card"`)
	s.get("/inapp/deposit?token="+url.QueryEscape(tok)+"&account=8673590").must(t, http.StatusGone, "already been used")

	// With RedirectAfterOpen the server redirects instead.
	r := newSite(t, func(o *cashierpages.Options) { o.RedirectAfterOpen = true })
	red := r.get("/inapp/withdraw?token=" + url.QueryEscape(r.token(r.bob, bobUSD)) + "&account=8673592")
	loc, err := url.Parse(red.location())
	if red.status != http.StatusSeeOther || err != nil || loc.Path != "/inapp/withdraw" || loc.Query().Get("s") == "" || loc.Query().Has("token") {
		t.Fatalf("RedirectAfterOpen: %d → %q", red.status, red.location())
	}
	r.get(red.location()).must(t, 200, "Available to withdraw")
}

func TestTokenProblemsGetAClearPage(t *testing.T) {
	s := newSite(t)
	expired := s.token(s.alice, aliceUSD)
	s.clk.Advance(2 * time.Minute)
	tests := []struct {
		name   string
		path   string
		status int
		text   string
	}{
		{"expired", "/inapp/deposit?token=" + url.QueryEscape(expired) + "&account=8673590", http.StatusGone, "This link has expired"},
		{"malformed", "/inapp/deposit?token=not-a-token&account=8673590", http.StatusBadRequest, "This link is not valid"},
		{"missing", "/inapp/withdraw?account=8673590", http.StatusBadRequest, "Please open the cashier from the trading app"},
		{"someone else's account", "/inapp/deposit?token=" + url.QueryEscape(s.token(s.bob, bobUSD)) + "&account=8673590", http.StatusForbidden, "does not belong to you"},
		{"account nobody owns", "/inapp/deposit?token=" + url.QueryEscape(s.token(s.bob, bobUSD)) + "&account=1234", http.StatusForbidden, "does not belong to you"},
		{"account not a number", "/inapp/deposit?token=" + url.QueryEscape(s.token(s.bob, bobUSD)) + "&account=abc", http.StatusBadRequest, "trading account in this link is not valid"},
		{"tampered handle", "/inapp/deposit?s=AAAA" + strings.Repeat("x", 80), http.StatusBadRequest, "This screen has expired"},
		{"unknown step", "/inapp/nope", http.StatusNotFound, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := s.get(tc.path)
			p.must(t, tc.status, tc.text, `class="ctl close"`, `href="`+s.success+`"`)
			if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			for _, leak := range []string{"goroutine", ".go:", "identity.", "EINVALID", "ENOTFOUND"} {
				if strings.Contains(p.body, leak) {
					t.Errorf("the page shows internals (%q):\n%s", leak, p.body)
				}
			}
		})
	}
}

// Every page carries the CSP with the configured frame-ancestors, no-store,
// no inline script, and no inline style but its critical CSS in the head,
// which the CSP allows by its hash.
func TestPagesAreLockedDown(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "&lang=en")
	amount := s.get(methods.link(t, "method-card"))
	pages := []page{methods, amount, s.get("/inapp/deposit?token=x"), s.get("/inapp/help?lang=de")}
	for i, p := range pages {
		csps := p.header.Values("Content-Security-Policy")
		if len(csps) != 1 {
			t.Fatalf("page %d: %d CSP headers %q, want one", i, len(csps), csps)
		}
		csp := csps[0]
		if !strings.Contains(csp, "frame-ancestors https://app.ctrader.com") || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("page %d: CSP %q", i, csp)
		}
		styles := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatchIndex(p.body, -1)
		if len(styles) != 1 || styles[0][1] > strings.Index(p.body, "</head>") {
			t.Fatalf("page %d: %d <style> elements, want one in the head", i, len(styles))
		}
		css := p.body[styles[0][2]:styles[0][3]]
		if want := "style-src 'self' " + httpx.HashSource([]byte(css)) + ";"; !strings.Contains(csp, want) {
			t.Errorf("page %d: CSP %q lacks the hash of its inline CSS (%s)", i, csp, want)
		}
		for _, want := range []string{".progress", "[data-theme=\"dark\"]"} {
			if !strings.Contains(css, want) {
				t.Errorf("page %d: the inline CSS lacks %s (the shared and the screens' CSS)", i, want)
			}
		}
		if strings.Contains(p.body, `rel="stylesheet"`) {
			t.Errorf("page %d still waits for an external stylesheet", i)
		}
		if p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("page %d: headers %v", i, p.header)
		}
		if p.header.Get("X-Frame-Options") != "" {
			t.Errorf("page %d sends X-Frame-Options, which stops cTrader from framing it", i)
		}
		for _, banned := range []string{" style=", "onclick", "javascript:", "cTrader ID"} {
			if strings.Contains(p.body, banned) {
				t.Errorf("page %d contains %q", i, banned)
			}
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1) {
			if !strings.Contains(tag, ` src="/inapp/assets/cashier.js?v=`) {
				t.Errorf("page %d has an inline or foreign script: %s", i, tag)
			}
		}
	}
	js := s.get("/inapp/assets/cashier.js?v=1")
	if js.status != 200 || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") || !strings.Contains(js.header.Get("Cache-Control"), "immutable") {
		t.Errorf("script: %d %v", js.status, js.header)
	}
}

// A card deposit without JavaScript: method, amount, review with fee and
// credit, confirm → the provider's page; back from it → status page that
// refreshes itself → the result, which goes to the success URL.
func TestDepositByCardWithoutJavaScript(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "&lang=en")
	amount := s.get(methods.link(t, "method-card"))
	amount.must(t, 200, `name="amount"`, "$10.00 to $10,000.00", "2.5\u00a0% + $0.30", `aria-live="polite"`)
	review := s.get("/inapp/deposit/review?" + amount.form("amount", "100").Encode())
	review.must(t, 200, "You pay", "$100.00", "$2.80", "Credited to your account", "$97.20", `id="confirm"`)
	confirm := s.post("/inapp/deposit/confirm", review.hidden())
	if confirm.status != http.StatusSeeOther || !strings.HasPrefix(confirm.location(), s.url+"/hosted/dep_1?return=") {
		t.Fatalf("confirm answered %d → %q", confirm.status, confirm.location())
	}
	again := s.post("/inapp/deposit/confirm", review.hidden())
	if again.location() != confirm.location() || len(s.fund.deposits) != 1 {
		t.Fatalf("a second confirm of the same form started another deposit: %q", again.location())
	}
	ret, _ := url.Parse(strings.TrimPrefix(confirm.location(), s.url+"/hosted/dep_1?return="))
	if strings.Contains(ret.String(), "s=") || !strings.HasPrefix(ret.String(), s.url+"/inapp/deposit/return?t=") {
		t.Fatalf("the provider's return URL %q must be a ticket, not the session", ret)
	}
	waiting := s.follow(s.get(ret.String()))
	waiting.must(t, 200, "Waiting for your payment", `<meta http-equiv="refresh" content="3">`, `data-poll="/inapp/deposit/status.json?t=`)
	poll := s.get(html.UnescapeString(regexp.MustCompile(`data-poll="([^"]+)"`).FindStringSubmatch(waiting.body)[1]))
	var answer struct {
		Status string
		Final  bool
	}
	if err := json.Unmarshal([]byte(poll.body), &answer); err != nil || answer.Status != "awaiting_payment" || answer.Final {
		t.Fatalf("status.json = %s (%v)", poll.body, err)
	}
	s.fund.settle("dep_1", funding.DepositCompleted)
	done := s.follow(s.get(ret.String()))
	done.must(t, 200, "Deposit completed", "$97.20", `content="5;url=`+s.success+`"`, `id="done"`)
	if strings.Contains(done.body, `content="3"`) {
		t.Error("a completed deposit still refreshes")
	}
	if got := done.link(t, "done"); got != s.success {
		t.Errorf("Done goes to %q, want the success URL", got)
	}
}

func TestDepositDeclinedThenRetried(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "")
	review := s.get("/inapp/deposit/review?" + s.get(methods.link(t, "method-card")).form("amount", "50").Encode())
	first := s.post("/inapp/deposit/confirm", review.hidden())
	ret := strings.SplitN(first.location(), "?return=", 2)[1]
	s.fund.settle("dep_1", funding.DepositDeclined)
	declined := s.follow(s.get(ret))
	declined.must(t, 200, "The payment did not go through", "Your bank declined the payment", `id="retry"`)
	retry := s.post("/inapp/deposit/retry", declined.hidden())
	if retry.status != http.StatusSeeOther || !strings.HasPrefix(retry.location(), s.url+"/hosted/dep_2") {
		t.Fatalf("retry answered %d → %q", retry.status, retry.location())
	}
	if twice := s.post("/inapp/deposit/retry", declined.hidden()); twice.location() != retry.location() {
		t.Errorf("a double click on retry started another deposit: %q", twice.location())
	}
	if d := s.fund.lastDeposit(); d.MethodID != "card" || d.Amount.Decimal() != "50.00" {
		t.Errorf("the retry is %+v, want the same card deposit of 50.00", d)
	}
	s.fund.settle("dep_2", funding.DepositCompleted)
	s.follow(s.get(strings.SplitN(retry.location(), "?return=", 2)[1])).must(t, 200, "Deposit completed")
}

func TestDepositAmountIsCheckedAndPriced(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "&lang=de")
	amount := s.get(methods.link(t, "method-card"))
	tests := []struct {
		name, currency, amount string
		status                 int
		text                   string
	}{
		{"below the minimum", "USD", "5", http.StatusUnprocessableEntity, "Das Minimum für Bankkarte ist 10,00\u00a0$."},
		{"above the maximum", "USD", "20000", http.StatusUnprocessableEntity, "Das Maximum für Bankkarte ist 10.000,00\u00a0$."},
		{"too many decimals", "USD", "10.001", http.StatusUnprocessableEntity, "höchstens 2 Nachkommastellen"},
		{"not a number", "USD", "zehn", http.StatusUnprocessableEntity, "Bitte geben Sie einen Betrag in USD"},
		{"decimal comma", "USD", "100,50", http.StatusOK, "97,68\u00a0$"},
		{"another currency", "EUR", "100", http.StatusOK, "1 EUR = 1,0835 USD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := s.get("/inapp/deposit/review?" + amount.form("currency", tc.currency, "amount", tc.amount).Encode())
			p.must(t, tc.status, tc.text)
			if tc.status != http.StatusOK && !strings.Contains(p.body, `value="`+tc.amount+`"`) {
				t.Errorf("the form lost what was typed:\n%s", p.body)
			}
		})
	}
	q := s.get("/inapp/deposit/quote?" + amount.form("currency", "EUR", "amount", "100").Encode())
	var answer struct {
		OK    bool `json:"ok"`
		Lines []struct{ Label, Value string }
	}
	if err := json.Unmarshal([]byte(q.body), &answer); err != nil || !answer.OK || len(answer.Lines) != 4 || answer.Lines[2].Value != "1 EUR = 1,0835 USD" {
		t.Fatalf("quote = %s (%v)", q.body, err)
	}
	bad := s.get("/inapp/deposit/quote?" + amount.form("currency", "USD", "amount", "1").Encode())
	if !strings.Contains(bad.body, "Das Minimum") {
		t.Errorf("quote of 1 USD = %s", bad.body)
	}
}

func TestBankTransferShowsInstructions(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "&lang=es")
	review := s.get("/inapp/deposit/review?" + s.get(methods.link(t, "method-bank-transfer")).form("amount", "500").Encode())
	confirm := s.post("/inapp/deposit/confirm", review.hidden())
	if !strings.HasPrefix(confirm.location(), "/inapp/deposit/status?t=") {
		t.Fatalf("confirm went to %q, want the status page with the instructions", confirm.location())
	}
	st := s.get(confirm.location())
	st.must(t, 200, "Datos para la transferencia", "GB33 BUKB 2020 1555 5555 55", "REF-dep_1", "Referencia (obligatoria)", "ya puede cerrar esta pantalla")
}

func TestCryptoShowsAddress(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "&lang=en")
	amount := s.get(methods.link(t, "method-crypto"))
	amount.must(t, 200, `<option value="USDT"`, `<option value="BTC"`)
	review := s.get("/inapp/deposit/review?" + amount.form("currency", "USDT", "amount", "25").Encode())
	review.must(t, 200, "1 USDT = 1 USD", "$25.00")
	st := s.get(s.post("/inapp/deposit/confirm", review.hidden()).location())
	st.must(t, 200, "Send crypto", "TXYZsandboxAddress0000000000000001", "TRC20", "Confirmations needed", "USDT")
}

func TestWithdrawalIsCheckedThenRequested(t *testing.T) {
	s := newSite(t)
	methods := s.open("withdraw", s.alice, aliceUSD, "")
	methods.must(t, 200, "Available to withdraw", "$250.00", `id="method-bank-transfer"`)
	details := s.get(methods.link(t, "method-bank-transfer"))
	details.must(t, 200, `name="iban"`, `name="holderName"`, `data-check="iban"`, `aria-describedby="f-iban-hint f-iban-error"`)
	tests := []struct {
		name   string
		fields []string
		status int
		text   []string
	}{
		{"bad IBAN", []string{"amount", "100", "holderName", "Alice Archer", "iban", "DE89 3704 0044 0532 0130 01"}, http.StatusBadRequest,
			[]string{"This is not a valid IBAN", `aria-invalid="true"`}},
		{"no holder", []string{"amount", "100", "iban", "DE89 3704 0044 0532 0130 00"}, http.StatusBadRequest, []string{"account holder&#39;s name"}},
		{"more than withdrawable", []string{"amount", "300", "holderName", "Alice Archer", "iban", "DE89 3704 0044 0532 0130 00"},
			http.StatusUnprocessableEntity, []string{"Insufficient funds: you can withdraw up to $250.00, and asked for $300.00."}},
		{"below the minimum", []string{"amount", "20", "holderName", "Alice Archer", "iban", "DE89 3704 0044 0532 0130 00"},
			http.StatusUnprocessableEntity, []string{"The minimum for Bank transfer is $50.00."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.post("/inapp/withdraw/review", details.form(tc.fields...)).must(t, tc.status, tc.text...)
		})
	}
	review := s.post("/inapp/withdraw/review", details.form("amount", "100", "holderName", "Alice Archer", "iban", "de89 3704 0044 0532 0130 00"))
	review.must(t, 200, "DE89 3704 0044 0532 0130 00", "$100.00", `id="confirm"`, `formaction="/inapp/withdraw/details"`)
	done := s.post("/inapp/withdraw/confirm", review.hidden())
	if done.status != http.StatusSeeOther || !strings.HasPrefix(done.location(), "/inapp/withdraw/status?t=") {
		t.Fatalf("confirm answered %d → %q:\n%s", done.status, done.location(), done.body)
	}
	if req := s.fund.wdReqs[len(s.fund.wdReqs)-1]; req.Details["iban"] != "DE89370400440532013000" || req.Amount.Decimal() != "100.00" {
		t.Errorf("funding got %+v", req)
	}
	s.get(done.location()).must(t, 200, "Waiting for approval", "You can close this screen")

	// The funding service has the last word on the withdrawable amount.
	s.fund.mu.Lock()
	s.fund.accounts[aliceUSD] = fakeAccount{user: s.alice.ID, balance: s.fund.accounts[aliceUSD].balance, withdrawable: money.New(10000, usd)}
	s.fund.mu.Unlock()
	late := s.post("/inapp/withdraw/review", details.form("amount", "150", "holderName", "Alice Archer", "iban", "DE89370400440532013000"))
	late.must(t, http.StatusUnprocessableEntity, "up to $100.00")
}

func TestWithdrawalWithCode(t *testing.T) {
	s := newSite(t)
	s.fund.require2FA = true
	methods := s.open("withdraw", s.alice, aliceEUR, "&lang=ar")
	details := s.get(methods.link(t, "method-ewallet"))
	review := s.post("/inapp/withdraw/review", details.form("amount", "20", "walletId", "alice@wallet.test"))
	review.must(t, 200, "alice@wallet.test")
	st := s.get(s.post("/inapp/withdraw/confirm", review.hidden()).location())
	st.must(t, 200, `dir="rtl"`, "أدخل رمز التأكيد", `name="code"`, "المحاولات المتبقية: ٣.")
	wrong := s.post("/inapp/withdraw/code", st.form("code", "000000"))
	wrong.must(t, http.StatusUnprocessableEntity, "هذا الرمز غير صحيح", "المحاولات المتبقية: ٢.")
	right := s.post("/inapp/withdraw/code", st.form("code", "424242"))
	if right.status != http.StatusSeeOther {
		t.Fatalf("the right code answered %d:\n%s", right.status, right.body)
	}
	s.get(right.location()).must(t, 200, "بانتظار الموافقة")
}

// Posts from another site are refused, whatever they carry.
func TestCrossSitePostsAreRefused(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "")
	review := s.get("/inapp/deposit/review?" + s.get(methods.link(t, "method-card")).form("amount", "100").Encode())
	p := s.do(http.MethodPost, "/inapp/deposit/confirm", review.hidden(), http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
	if p.status != http.StatusForbidden || len(s.fund.requests) != 0 {
		t.Fatalf("a cross-site post answered %d and started %d deposits", p.status, len(s.fund.requests))
	}
}

func TestLanguagesThemesAndDirection(t *testing.T) {
	s := newSite(t)
	tests := []struct {
		lang, theme, wantLang, dir, title, step string
	}{
		{"en", "dark", "en", "ltr", "Deposit", "Method"},
		{"de", "light", "de", "ltr", "Einzahlung", "Methode"},
		{"es-MX", "dark", "es", "ltr", "Depósito", "Método"},
		{"ar", "dark", "ar", "rtl", "إيداع", "الطريقة"},
		{"ja", "neon", "en", "ltr", "Deposit", "Method"},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			p := s.open("deposit", s.alice, aliceUSD, "&lang="+tc.lang+"&theme="+tc.theme)
			htmlTag := `<html lang="` + tc.wantLang + `" dir="` + tc.dir + `"`
			if th := strings.TrimSpace(tc.theme); th == "dark" || th == "light" {
				htmlTag += ` data-theme="` + th + `"`
			}
			p.must(t, 200, htmlTag, "<h1>"+tc.title+"</h1>", tc.step)
		})
	}
}

// A token without an account for a user with several accounts asks which
// one; the choice must be the user's.
func TestChooseAccount(t *testing.T) {
	s := newSite(t)
	tok, _, err := s.svc.IssueInAppToken(ctx, s.alice.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	choose := s.follow(s.get("/inapp/withdraw?token=" + url.QueryEscape(tok)))
	choose.must(t, 200, `value="8673590"`, `value="8673591"`, "Choose a trading account")
	s.post("/inapp/account", choose.form("account", "8673592")).must(t, http.StatusForbidden, "does not belong to you")
	picked := s.follow(s.post("/inapp/account", choose.form("account", "8673591")))
	picked.must(t, 200, "8673591", "Available to withdraw", "€500.00")
}

func TestSessionEnds(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "")
	link := methods.link(t, "method-card")
	s.get(link).must(t, 200)
	s.clk.Advance(31 * time.Minute)
	s.get(link).must(t, http.StatusGone, "This screen has expired")
}

func TestUnavailableFundingOffersRetry(t *testing.T) {
	s := newSite(t)
	methods := s.open("deposit", s.alice, aliceUSD, "")
	review := s.get("/inapp/deposit/review?" + s.get(methods.link(t, "method-card")).form("amount", "100").Encode())
	s.fund.fail = errs.E(errs.Unavailable, "fake", "provider down")
	p := s.post("/inapp/deposit/confirm", review.hidden())
	p.must(t, http.StatusServiceUnavailable, "temporarily unavailable", `id="confirm"`)
	if p.hidden().Get("id") != review.hidden().Get("id") {
		t.Errorf("the form id changed on the retry page (%q → %q); confirming again could start a second deposit", review.hidden().Get("id"), p.hidden().Get("id"))
	}
	if again := s.post("/inapp/deposit/confirm", p.hidden()); again.status != http.StatusSeeOther {
		t.Errorf("confirming again answered %d", again.status)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	s := newSite(t)
	tests := []struct {
		name string
		opt  cashierpages.Options
	}{
		{"no public URL", cashierpages.Options{SuccessURL: "https://a.example/ok"}},
		{"relative success URL", cashierpages.Options{PublicURL: "https://c.example", SuccessURL: "/ok"}},
		{"short key", cashierpages.Options{PublicURL: "https://c.example", SuccessURL: "https://a.example/ok", Key: []byte("short")}},
		{"bad path", cashierpages.Options{PublicURL: "https://c.example", SuccessURL: "https://a.example/ok", DepositPath: "inapp/deposit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cashierpages.New(cashierpages.Deps{Identity: s.svc, Funding: s.fund, Renderer: web.New(web.Options{})}, tc.opt)
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("New = %v, want an EINVALID error", err)
			}
		})
	}
}

// Each language has exactly the English messages, with the same template
// fields.
func TestEveryMessageTranslated(t *testing.T) {
	load := func(lang string) map[string]string {
		data, err := os.ReadFile("i18n/cashier." + lang + ".json")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		return m
	}
	fieldRe := regexp.MustCompile(`\{\{\.\w+\}\}`)
	en := load("en")
	for id := range en {
		if !strings.HasPrefix(id, "cashier.") {
			t.Errorf("en: %s lacks the cashier. prefix", id)
		}
	}
	for _, lang := range []string{"de", "es", "ar"} {
		other := load(lang)
		for id, msg := range en {
			tr, ok := other[id]
			if !ok {
				t.Errorf("%s lacks %s", lang, id)
				continue
			}
			want, got := fieldRe.FindAllString(msg, -1), fieldRe.FindAllString(tr, -1)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("%s %s has fields %v, English has %v", lang, id, got, want)
			}
		}
		for id := range other {
			if _, ok := en[id]; !ok {
				t.Errorf("%s has %s, which English lacks", lang, id)
			}
		}
	}
}

// A deposit's steps read only what they show: the first screen uses the
// session it has just opened, the confirmation does not read the account
// (its balance comes from the platform; funding checks the account when it
// starts the deposit) unless a page must show it again, and coming back
// from the provider needs no profile read (the request's is in the
// ticket).
func TestDepositStepsReadOnlyWhatTheyShow(t *testing.T) {
	s := newSite(t)
	optionsRead := func() int {
		s.fund.mu.Lock()
		defer s.fund.mu.Unlock()
		return s.fund.optionsRead
	}

	methods := s.open("deposit", s.alice, aliceUSD, "&lang=en")
	methods.must(t, 200, "$1,000.00")
	if n := s.reads.sessions.Load(); n != 0 {
		t.Errorf("opening the first screen read the session %d times, want 0 (it has just opened it)", n)
	}
	review := s.get("/inapp/deposit/review?" + s.get(methods.link(t, "method-card")).form("amount", "100").Encode())
	review.must(t, 200, "$97.20", `id="confirm"`)

	sessions, options := s.reads.sessions.Load(), optionsRead()
	confirm := s.post("/inapp/deposit/confirm", review.hidden())
	if confirm.status != http.StatusSeeOther || !strings.HasPrefix(confirm.location(), s.url+"/hosted/dep_1?return=") {
		t.Fatalf("confirm answered %d → %q", confirm.status, confirm.location())
	}
	if got := optionsRead() - options; got != 0 {
		t.Errorf("the confirmation read the account %d times, want 0", got)
	}
	if got := s.reads.sessions.Load() - sessions; got != 1 {
		t.Errorf("the confirmation read the session %d times, want 1", got)
	}

	profiles := s.reads.profiles.Load()
	ret := strings.SplitN(confirm.location(), "?return=", 2)[1]
	back := s.get(ret)
	if back.status != http.StatusSeeOther || !strings.HasPrefix(back.location(), "/inapp/deposit/status?t=") {
		t.Fatalf("back from the provider: %d → %q", back.status, back.location())
	}
	if got := s.reads.profiles.Load() - profiles; got != 0 {
		t.Errorf("coming back from the provider read the profile %d times, want 0", got)
	}

	// A confirmation that must be fixed shows the account (and its
	// currency) again.
	bad := review.hidden()
	bad.Set("amount", "1.234")
	bad.Set("id", "req_another_form_1")
	options = optionsRead()
	fix := s.post("/inapp/deposit/confirm", bad)
	fix.must(t, http.StatusBadRequest, "8673590", "converted into USD", `name="amount"`)
	if got := optionsRead() - options; got != 1 {
		t.Errorf("the page to fix the amount read the account %d times, want 1", got)
	}
}
