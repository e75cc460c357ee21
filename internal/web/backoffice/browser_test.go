package backoffice_test

// Browser tests: the back office in headless Chromium (internal/testutil/
// browser), over the real funding stack. A page that logs a console error
// (a CSP violation among them) fails the test. With
// BACKOFFICE_SCREENSHOTS=1 the tests also write the README's screenshots
// to docs/img/backoffice-*.png.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/browser"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// wait is how long one step may take in the browser.
const wait = 15 * time.Second

type ui struct {
	*browser.Browser
	t *testing.T
}

// try runs an action until it succeeds or the deadline passes (the page
// may be between two documents).
func (u *ui) try(what string, act chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(u.Ctx, 2*time.Second)
		last = chromedp.Do(ctx, act)
		cancel()
		if last == nil {
			return
		}
	}
	u.t.Fatalf("%s: %v", what, last)
}

func (u *ui) see(sel string) {
	u.t.Helper()
	u.try("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (u *ui) seeText(sel, want string) {
	u.t.Helper()
	u.try("wait for "+sel+" to say "+strconv.Quote(want), func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		text, err := chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		if !strings.Contains(text, want) {
			return chromedp.Void{}, errNotYet(sel + " says " + strconv.Quote(text))
		}
		return chromedp.Void{}, nil
	})
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }

func (u *ui) gone(sel string) {
	u.t.Helper()
	u.try("wait for "+sel+" to go", chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

func (u *ui) click(sel string) {
	u.t.Helper()
	u.try("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (u *ui) fill(sel, text string) {
	u.t.Helper()
	u.try("fill "+sel, chromedp.Steps(chromedp.Focus(chromedp.CSS(sel), chromedp.NodeVisible),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent(kb.Backspace),
		chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible)))
}

func (u *ui) location() string {
	u.t.Helper()
	return browser.Value(u.Browser, chromedp.Location())
}

// shoot writes a screenshot of the whole page to docs/img when
// BACKOFFICE_SCREENSHOTS is set.
func (u *ui) shoot(name string) {
	u.t.Helper()
	if os.Getenv("BACKOFFICE_SCREENSHOTS") == "" {
		return
	}
	png := browser.Value(u.Browser, chromedp.FullScreenshot(100))
	path := filepath.Join("..", "..", "..", "docs", "img", "backoffice-"+name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("screenshot: %s", path)
}

// A finance member signs in with password and TOTP, opens the approvals
// queue, approves a withdrawal and sees it leave the queue with the status
// approved; a four-eyes withdrawal shows the first approval, and approving
// it again shows funding's refusal.
func TestBrowserFinanceApprovesAWithdrawal(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, realSchemas...)
	var st *realStack
	s := newSite(t, withRealFunding(&st, db))
	w := st.withdraw(alice, aliceLogin, "250.00")
	s.clk.Advance(35 * time.Minute)
	big := st.withdraw(bob, bobLogin, "1800.00")
	s.clk.Advance(12 * time.Minute)

	// The four-eyes refusal is answered 403, which Chromium logs.
	u := &ui{Browser: browser.New(t, browser.Options{Width: 1366, Height: 900, Allow: []string{"status of 403"}}), t: t}
	u.Must(chromedp.Navigate(s.url + "/backoffice/queues/withdrawals"))
	u.login(s, "finance@broker.test", financeID)

	// Back at the page asked for, signed in.
	u.seeText("h1", "Withdrawals awaiting approval")
	u.seeText("#who", "finance@broker.test")
	u.see("#row-" + w.ID)
	u.seeText("#row-"+w.ID, "$250.00")
	u.seeText("#row-"+w.ID, "IBAN GB33 … 5555")
	u.seeText("#row-"+big.ID, "Needs two approvers.")
	u.seeText("#row-"+big.ID, "held: new destination")
	if strings.Contains(u.location(), "/login") {
		t.Fatalf("still at %s", u.location())
	}
	u.shoot("queue")

	u.click("#approve-" + w.ID)
	u.seeText(".msg.notice", "Withdrawal "+w.ID+" approved")
	u.gone("#row-" + w.ID)
	got, err := st.fund.GetWithdrawal(ctx, w.ID)
	if err != nil || got.Status != funding.WithdrawalApproved || got.DecidedBy != "staff:"+financeID {
		t.Fatalf("withdrawal %s: %s by %q, %v", w.ID, got.Status, got.DecidedBy, err)
	}
	u.Must(chromedp.Navigate(s.url + "/backoffice/transactions/" + w.ID))
	u.seeText("#status", "approved")
	u.seeText("#timeline", "awaiting_approval → approved")

	// Four-eyes: the first approval is recorded; the same person again is
	// refused with funding's message.
	u.Must(chromedp.Navigate(s.url + "/backoffice/queues/withdrawals"))
	u.click("#approve-" + big.ID)
	u.seeText(".msg.notice", "needs a second approver")
	u.seeText("#foureyes-"+big.ID, "First approval by Finance Person (finance@broker.test) (you)")
	u.click("#approve-" + big.ID)
	u.seeText(".msg.error", "the second approver must be another person")
	u.see("#row-" + big.ID)
	if b, _ := st.fund.GetWithdrawal(ctx, big.ID); b.Status != funding.WithdrawalAwaitingApproval {
		t.Errorf("after the refused second approval: %s", b.Status)
	}
}

// The dashboard's charts show in the browser (inline SVG under the house
// CSP), and a phone-sized window has no sideways scroll on the queue
// outside its table.
func TestBrowserDashboard(t *testing.T) {
	s := newSite(t)
	u := &ui{Browser: browser.New(t, browser.Options{Width: 1366, Height: 900}), t: t}
	u.Must(chromedp.Navigate(s.url + "/backoffice/login"))
	u.login(s, "admin@broker.test", adminID)
	u.seeText("h1", "Overview")
	u.Must(chromedp.Navigate(s.url + "/backoffice/dashboard?from=2026-04-28&to=2026-05-04"))
	u.see("#chart-per_day svg")
	u.see("#chart-funnel svg")
	u.seeText("#fig-deposits_count", "42")
	u.shoot("dashboard")
	u.Must(chromedp.Navigate(s.url + "/backoffice/rules"))
	u.see("#rule-velocity")
	u.shoot("rules")
}

// login fills the login page: password, then the member's TOTP code
// computed from their secret.
func (u *ui) login(s *site, email, memberID string) {
	u.t.Helper()
	u.see("#email")
	u.fill("#email", email)
	u.fill("#password", password)
	u.click("#sign-in")
	u.see("#code")
	u.fill("#code", s.code(s.staff.SecretOf(memberID)))
	u.click("#verify")
}
