package cashierpages_test

// Browser tests: the whole system (see system_test.go) driven through
// headless Chromium. Each test fails if a page logs a console error
// (including CSP violations) and leaves a screenshot in its artifact
// directory when it fails (go test -artifacts to keep them).

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/testutil/browser"
)

// payByCard fills the sandbox provider's hosted card form.
func (u *ui) payByCard(number string) {
	u.t.Helper()
	u.see(`input[name="number"]`)
	u.fill(`input[name="number"]`, number)
	u.fill(`input[name="expiry"]`, "12/34")
	u.fill(`input[name="cvc"]`, "123")
	u.click(`form button[type="submit"]`)
}

// depositFlow goes from the method list to the provider's step.
func (u *ui) depositFlow(method, amount string) {
	u.t.Helper()
	u.click("#method-" + method)
	u.fill("#amount", amount)
	u.click("#review")
	u.see("#confirm")
	u.click("#confirm")
}

// waitBalance waits until the platform shows the balance.
func (u *ui) waitBalance(login int64, want string) {
	u.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := u.sys.simBalance(login)
		if got.Decimal() == want {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("login %d: platform balance %s, want %s", login, got.Decimal(), want)
		}
		time.Sleep(50 * time.Millisecond) // polling a real external process with a deadline
	}
}

// The trader taps Deposit in the app, pays 100 USD by card on the
// provider's hosted page inside the app's frame, sees the result, and the
// app closes the frame and shows the new balance, credited exactly once.
func TestBrowserCardDepositFromTheApp(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.openApp(simAlice, simAliceUSD, "deposit", "en", "light")
	u.see("#method-card")
	u.seeText("#balance", "$1,000.00")
	if src := u.frameURL(); strings.Contains(src, "token=") || !strings.Contains(src, "/inapp/deposit?s=") {
		t.Errorf("the frame shows %s; the token must be gone from its address", src)
	}
	u.click("#method-card")
	u.fill("#amount", "100")
	u.seeText("#preview", "$97.20") // the live preview, by our script
	u.click("#review")
	u.seeText(".summary", "$2.80")
	u.click("#confirm")
	u.payByCard("4242424242424242")
	u.seeText("#headline", "Deposit completed")
	u.seeText(".summary", "$97.20")
	u.click("#done")
	// The success URL makes the app close the frame and show the account.
	u.inFrame = false
	u.seeText(`[data-balance="3000001"]`, "1097.20")
	if loc := u.location(); !strings.HasSuffix(loc, "/app/10000001") {
		t.Errorf("the app is at %s, want the user's page", loc)
	}
	if got := sys.simBalance(simAliceUSD).Decimal(); got != "1097.20" {
		t.Errorf("platform balance %s, want 1097.20", got)
	}
}

// A 3-D Secure card asks for the one-time code on the provider's page.
func TestBrowserThreeDSecure(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.navigate(sys.cashierURL(t, sys.alice, "deposit", simAliceEUR, "&lang=de&theme=light"))
	u.depositFlow("card", "50")
	u.payByCard("4000000000003220")
	u.see(`input[name="code"]`)
	u.fill(`input[name="code"]`, "123456")
	u.click(`button[value="verify"]`)
	u.seeText("#headline", "Einzahlung abgeschlossen")
	u.waitBalance(simAliceEUR, "298.45")
}

// A declined card shows a friendly error with Try again; the retry with a
// good card completes, and only the good payment is credited.
func TestBrowserDeclineThenRetry(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.openApp(simAlice, simAliceUSD, "deposit", "es", "dark")
	u.depositFlow("card", "20")
	u.payByCard("4000000000000002")
	u.seeText("#headline", "El pago no se ha realizado")
	u.seeText("#status-text", "Su banco rechazó el pago")
	u.click("#retry")
	u.payByCard("5555555555554444")
	u.seeText("#headline", "Depósito completado")
	u.waitBalance(simAliceUSD, "1019.20")
}

// A bank transfer shows the bank details and waits; the money arrives
// later (the sandbox's control page), and the open status page updates by
// itself.
func TestBrowserBankTransferCompletedLater(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.openApp(simAlice, simAliceUSD, "deposit", "en", "light")
	u.depositFlow("bank-transfer", "250")
	u.seeText("#bank", "GB33 BUKB 2020 1555 5555 55")
	u.seeText("#bank", "Reference (required)")
	deps, err := sys.fund.Deposits(context.Background(), sys.alice.ID, 10)
	if err != nil || len(deps) != 1 || deps[0].Status != funding.DepositAwaitingPayment {
		t.Fatalf("deposits %+v, %v", deps, err)
	}
	sys.sandboxControl(t, deps[0].PaymentID, "arrive")
	u.seeText("#headline", "Deposit completed")
	u.waitBalance(simAliceUSD, "1250.00")
}

// A withdrawal above the automatic-approval limit waits for an operator;
// once approved it is paid out, and the open status page shows it.
func TestBrowserWithdrawalApprovedAndPaid(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.openApp(simAlice, simAliceUSD, "withdraw", "en", "light")
	u.seeText("#withdrawable", "$1,000.00")
	u.click("#method-bank-transfer")
	u.fill("#amount", "300")
	u.fill("#f-holderName", "Alice Archer")
	u.fill("#f-iban", "DE89 3704 0044 0532 0130 01")
	u.click("#amount") // leaves the IBAN field: the script checks it
	u.seeText("#f-iban-error", "not a valid IBAN")
	if v := u.attr("#f-iban", "aria-invalid"); v != "true" {
		t.Errorf("aria-invalid = %q on a bad IBAN", v)
	}
	u.fill("#f-iban", "DE89 3704 0044 0532 0130 00")
	u.click("#amount")
	u.click("#review")
	u.seeText(".summary", "DE89 3704 0044 0532 0130 00")
	u.click("#confirm")
	u.seeText("#headline", "Waiting for approval")
	u.waitBalance(simAliceUSD, "700.00")
	pending, err := sys.fund.PendingApprovals(context.Background(), 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending approvals %+v, %v", pending, err)
	}
	if _, err := sys.fund.ApproveWithdrawal(context.Background(), pending[0].ID, "operator@broker"); err != nil {
		t.Fatal(err)
	}
	u.seeText("#headline", "Withdrawal paid")
	u.click("#done")
	u.inFrame = false
	u.seeText(`[data-balance="3000001"]`, "700.00")
}

// Asking for more than may be withdrawn is refused on the form, with the
// amounts, and nothing moves.
func TestBrowserWithdrawalInsufficientFunds(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	// The refusal comes with status 422, which Chromium logs.
	u := newUI(t, sys, browser.Options{Allow: []string{"status of 422"}})
	u.navigate(sys.cashierURL(t, sys.alice, "withdraw", simAliceEUR, "&lang=en"))
	u.click("#method-ewallet")
	u.fill("#amount", "300")
	u.fill("#f-walletId", "alice@wallet.test")
	u.click("#review")
	u.seeText(".msg.error", "Insufficient funds: you can withdraw up to €250.00, and asked for €300.00.")
	if got := sys.simBalance(simAliceEUR).Decimal(); got != "250.00" {
		t.Errorf("platform balance %s after a refused withdrawal", got)
	}
}

// A used token, an expired one and someone else's account each get a clear
// page with a 4xx status.
func TestBrowserTokenProblems(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{Allow: []string{"status of 410", "status of 403"}})

	u.openApp(simAlice, simAliceUSD, "deposit", "en", "light")
	u.see("#method-card") // the frame consumed the token
	used := sys.sim.Sim().AppState().LastCashierURL
	resp := browser.Value(u.Browser, chromedp.NavigateResponse(used))
	u.inFrame = false
	if resp.Status != 410 {
		t.Errorf("a reused token answered %d", resp.Status)
	}
	u.seeText("#problem", "already been used")

	expired := sys.cashierURL(t, sys.alice, "deposit", simAliceUSD, "&lang=de")
	sys.idClock.Advance(2 * time.Minute)
	if resp := browser.Value(u.Browser, chromedp.NavigateResponse(expired)); resp.Status != 410 {
		t.Errorf("an expired token answered %d", resp.Status)
	}
	u.seeText("#problem", "abgelaufen")

	foreign := strings.Replace(sys.cashierURL(t, sys.bob, "withdraw", 0, ""), "account=0", "account=3000001", 1)
	if resp := browser.Value(u.Browser, chromedp.NavigateResponse(foreign)); resp.Status != 403 {
		t.Errorf("someone else's account answered %d", resp.Status)
	}
	u.seeText("#problem", "does not belong to you")
	u.see("a.ctl.close")
}

// Arabic is right to left, the dark theme applies, and a 390×844 phone
// shows the screens without sideways scrolling.
func TestBrowserArabicDarkPhone(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{Width: 390, Height: 844, Mobile: true})
	u.navigate(sys.cashierURL(t, sys.alice, "deposit", simAliceUSD, "&lang=ar&theme=dark&source=iOS"))
	u.see("#method-card")
	if dir := u.attr("html", "dir"); dir != "rtl" {
		t.Errorf("dir = %q", dir)
	}
	if theme := u.attr("html", "data-theme"); theme != "dark" {
		t.Errorf("data-theme = %q", theme)
	}
	bg := browser.Value(u.Browser, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if bg != "rgb(18, 20, 23)" {
		t.Errorf("body background %q, want the dark theme's", bg)
	}
	// Right to left: the close control sits on the left.
	x := browser.Value(u.Browser, chromedp.Evaluate[float64](`document.querySelector(".ctl.close").getBoundingClientRect().left`))
	if x > 100 {
		t.Errorf("the close control is at x=%v; in Arabic it belongs on the left", x)
	}
	u.click("#method-card")
	u.fill("#amount", "١٠٠")
	u.seeText("#preview", "٩٧٫٢٠")
	overflow := browser.Value(u.Browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if overflow {
		t.Error("the page scrolls sideways at 390 px")
	}
	u.click("#review")
	u.see("#confirm")
	u.Screenshot("arabic-dark-390x844-review")
}

// The screens work without JavaScript: the Review step prices the
// deposit, and the status page refreshes itself with <meta> until the
// provider's answer arrives.
func TestBrowserWithoutJavaScript(t *testing.T) {
	sys := newSystem(t, systemOptions{})
	u := newUI(t, sys, browser.Options{})
	u.Must(browser.DisableJavaScript(true))
	u.navigate(sys.cashierURL(t, sys.bob, "deposit", simBobJPY, "&lang=de&theme=light"))
	u.see("#method-bank-transfer")
	deadline := time.Now().Add(wait)
	for strings.Contains(u.location(), "token=") { // the <meta> refresh to the token-less URL
		if time.Now().After(deadline) {
			t.Fatalf("still at %s", u.location())
		}
		time.Sleep(50 * time.Millisecond) // polling the browser with a deadline
	}
	u.depositFlow("bank-transfer", "10000")
	u.seeText("#bank", "Verwendungszweck")
	deps, err := sys.fund.Deposits(context.Background(), sys.bob.ID, 10)
	if err != nil || len(deps) != 1 {
		t.Fatalf("deposits %+v, %v", deps, err)
	}
	sys.sandboxControl(t, deps[0].PaymentID, "arrive")
	u.seeText("#headline", "Einzahlung abgeschlossen")
	u.waitBalance(simBobJPY, money.New(160000, money.MustCurrency("JPY")).Decimal())
}

var mailCodeRe = regexp.MustCompile(`\n    (\d{6})\n`)

// With 2FA on, a withdrawal waits for the code e-mailed to the trader: a
// wrong code is refused with the attempts left, the right one sends it on
// (here to automatic approval and the payout to the card deposited with).
func TestBrowserWithdrawalWithCode(t *testing.T) {
	sys := newSystem(t, systemOptions{funding: func(c *funding.Config) { c.Require2FA = true }})
	u := newUI(t, sys, browser.Options{Allow: []string{"status of 422"}})
	// A card deposit first, so that the card can be paid out to.
	u.navigate(sys.cashierURL(t, sys.alice, "deposit", simAliceUSD, "&lang=en"))
	u.depositFlow("card", "40")
	u.payByCard("4242424242424242")
	u.seeText("#headline", "Deposit completed")

	u.openApp(simAlice, simAliceUSD, "withdraw", "en", "dark")
	u.click("#method-card")
	u.seeText("fieldset", "visa •••• 4242")
	u.fill("#amount", "25")
	u.click("#review")
	u.seeText(".summary", "visa •••• 4242")
	u.click("#confirm")
	u.seeText("#headline", "Enter your confirmation code")
	m, ok := sys.box.Last("alice@example.com")
	code := mailCodeRe.FindStringSubmatch(m.Mail.Text)
	if !ok || code == nil {
		t.Fatalf("no code mailed: %+v", m)
	}
	u.fill("#code", "000000")
	u.click("#code-submit")
	u.seeText("#code-error", "This code is not right")
	u.seeText("#code-note", "Attempts left: 4.")
	u.fill("#code", code[1])
	u.click("#code-submit")
	u.seeText("#headline", "Withdrawal paid")
	u.waitBalance(simAliceUSD, "1013.70") // 1000 + 38.70 (40 less the 1.30 fee) − 25
}
