package ctradersim_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

// chromium finds a Chromium to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROME_PATH"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium installed (apt-get install chromium); the frame-close test needs a browser")
	return ""
}

// TestFakeAppClosesTheFrameInABrowser logs in through the broker's login
// screen and deposits through its cashier, both inside the app's frame, and
// checks that reaching the success URL closes the frame and that the account
// page then shows the balance the cashier changed.
func TestFakeAppClosesTheFrameInABrowser(t *testing.T) {
	path := chromium(t)
	b := newFakeBroker(t)
	s := startSim(t, func(c *ctradersim.Config) {
		c.App = ctradersim.AppConfig{BrokerURL: b.srv.URL, CRMPassword: "shared"}
	})
	ws, err := ctrader.New(ctrader.Config{BaseURL: s.srv.URL(), ManagerLogin: 1001, ManagerPassword: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	success := s.srv.URL() + "/app/success"
	b.expectLogin("ot-browser", 10000001)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, success+"?token=ot-browser", http.StatusSeeOther) // the user logged in
	})
	mux.HandleFunc("GET /inapp/deposit", func(w http.ResponseWriter, r *http.Request) {
		// The cashier took the payment and credits the account, then goes to the success URL.
		_, err := ws.ChangeBalance(r.Context(), platform.BalanceChange{Login: 3000001, Type: platform.Deposit,
			Amount: money.New(1000, money.MustCurrency("USD")), ExternalID: "dep_" + r.URL.Query().Get("token")})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, success+"?status=done", http.StatusSeeOther)
	})
	b.screens = mux

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	balance := chromedp.CSS(`[data-balance="3000001"]`)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(s.srv.URL()+"/app/login?lang=en&theme=dark&source=Web"),
		chromedp.WaitVisible(balance), // the frame reached the success URL and the app went to the account page
	); err != nil {
		t.Fatalf("login in the frame: %v", err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != s.srv.URL()+"/app/10000001" {
		t.Fatalf("after login the app is at %q (%v), want the account page", loc, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[value="deposit:3000001"]`))); err != nil {
		t.Fatalf("click Deposit: %v", err)
	}
	// The frame page, the broker's cashier inside it, the success page and
	// the account page follow each other quickly; poll the top document
	// (the browser is an outside process) until the new balance shows.
	got := waitForText(t, bctx, `[data-balance="3000001"]`, "110.00")
	if got != "110.00" {
		h, _ := s.srv.Sim().History(3000001)
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		t.Fatalf("balance shown %q at %s; history %+v; app %+v", got, loc, h, s.srv.Sim().AppState())
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != s.srv.URL()+"/app/10000001" {
		t.Errorf("after the deposit the app is at %q (%v), want the account page", loc, err)
	}
	if st := s.srv.Sim().AppState(); st.LastCashierURL == "" {
		t.Error("the app never opened the cashier")
	}
	if n := len(s.srv.Sim().AppState().Sessions); n != 1 {
		t.Errorf("%d app sessions, want 1", n)
	}
}

// waitForText polls the text of the top document's element until it is
// want or ten seconds pass, and returns the last text seen.
func waitForText(t *testing.T, ctx context.Context, selector, want string) string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	expr := `(() => { const e = document.querySelector(` + strconv.Quote(selector) + `); return e ? e.textContent : ""; })()`
	last := ""
	for {
		if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr)); err == nil { // fails while a page loads
			last = got
			if got == want {
				return got
			}
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return last
		}
	}
}
