package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opencashier/cashier/internal/testutil/browser"
)

// frameUI drives the fake app in headless Chromium; with inFrame set,
// queries aim at the document in the app's iframe (the broker's screens).
// The browser fails the test on any console error, CSP violations included.
type frameUI struct {
	*browser.Browser
	t       *testing.T
	inFrame bool
}

// do runs an action on the current document until it succeeds or 20 s
// pass: the browser is an outside process and the document may be between
// two pages.
func (u *frameUI) do(what string, act func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(u.Ctx, 2*time.Second)
		var opts []chromedp.QueryOption
		var err error
		if u.inFrame {
			var frames []*chromedp.Node
			frames, err = chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("iframe"), chromedp.Populate(-1, true)))
			if err == nil {
				opts = []chromedp.QueryOption{chromedp.FromNode(frames[0])}
			}
		}
		if err == nil {
			err = chromedp.Do(ctx, act(opts))
		}
		cancel()
		if err == nil {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond) // the page is loading in another process
	}
	u.t.Fatalf("%s: %v", what, last)
}

func (u *frameUI) fill(sel, text string) {
	u.t.Helper()
	u.do("fill "+sel, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.SendKeys(chromedp.CSS(sel), text, append(opts, chromedp.NodeVisible)...)
	})
}

func (u *frameUI) click(sel string) {
	u.t.Helper()
	u.do("click "+sel, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.CSS(sel), append(opts, chromedp.NodeVisible)...)
	})
}

// seeText waits until the element's text contains want.
func (u *frameUI) seeText(sel, want string) {
	u.t.Helper()
	u.do(fmt.Sprintf("see %q in %s", want, sel), func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		text := chromedp.Text(chromedp.CSS(sel), append(opts, chromedp.NodeVisible)...)
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			got, err := text(ctx, tg)
			if err == nil && !strings.Contains(got, want) {
				err = fmt.Errorf("the text is %q", got)
			}
			return chromedp.Void{}, err
		}
	})
}

// TestDemoInABrowser is the newcomer's first minutes with `cashier demo`,
// in headless Chromium: open the fake app, log in on the broker's screen in
// the app's frame, press Deposit, pay 100 USD by card on the sandbox's page
// (still in the frame), see the result, and the app shows the new balance.
// Any console error fails it, so a frame the cashier's CSP refuses would.
func TestDemoInABrowser(t *testing.T) {
	browser.Require(t)
	d := startDemo(t)
	u := &frameUI{Browser: browser.New(t, browser.Options{}), t: t}
	alice := d.man.Users[0]

	u.Must(chromedp.Navigate(d.man.AppURL))
	u.click(`a[href^="/app/login"], form[action="/app/login"] button`)
	u.inFrame = true
	u.fill(`input[name="email"]`, alice.Email)
	u.fill(`input[name="password"]`, alice.Password)
	u.click(`form button[type="submit"]`)
	// The success URL closes the frame; the app shows Alice's accounts.
	u.inFrame = false
	u.seeText(`[data-balance="3000001"]`, "1000.00")

	u.click(`button[value="deposit:3000001"]`)
	u.inFrame = true
	u.click("#method-card")
	u.fill("#amount", "100")
	u.click("#review")
	u.click("#confirm")
	u.fill(`input[name="number"]`, "4242424242424242")
	u.fill(`input[name="expiry"]`, "12/39")
	u.fill(`input[name="cvc"]`, "123")
	u.click(`form button[type="submit"]`)
	u.seeText("#headline", "Deposit completed")
	u.click("#done")
	u.inFrame = false
	u.seeText(`[data-balance="3000001"]`, "1097.20")
}
