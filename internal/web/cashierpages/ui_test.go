package cashierpages_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/opencashier/cashier/internal/testutil/browser"
)

// ui drives the screens in headless Chromium, either in the top-level tab
// or inside the fake app's iframe (after Deposit or Withdraw in the app).
type ui struct {
	*browser.Browser
	t       *testing.T
	sys     *system
	inFrame bool
}

func newUI(t *testing.T, sys *system, opt browser.Options) *ui {
	t.Helper()
	return &ui{Browser: browser.New(t, opt), t: t, sys: sys}
}

// wait is how long a step may take: pages, the provider's webhooks and the
// balance push all run for real.
const wait = 20 * time.Second

// scope returns the query options that aim at the current document: the
// iframe's content document when the app shows a screen.
func (u *ui) scope(ctx context.Context) ([]chromedp.QueryOption, error) {
	if !u.inFrame {
		return nil, nil
	}
	frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("iframe"), chromedp.Populate(-1, true)))
	if err != nil {
		return nil, err
	}
	return []chromedp.QueryOption{chromedp.FromNode(frames[0])}, nil
}

// try runs an action on the current document until it succeeds or the
// deadline passes (the document may be between two pages).
func (u *ui) try(what string, act func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(u.Ctx, 2*time.Second)
		opts, err := u.scope(ctx)
		if err == nil {
			err = chromedp.Do(ctx, act(opts))
		}
		cancel()
		if err == nil {
			return
		}
		last = err
	}
	u.t.Fatalf("%s: %v", what, last)
}

// see waits until the element is visible.
func (u *ui) see(sel string) {
	u.t.Helper()
	u.try("wait for "+sel, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(sel), append(opts, chromedp.NodeVisible)...)
	})
}

// seeText waits until the element's text contains want.
func (u *ui) seeText(sel, want string) {
	u.t.Helper()
	u.try("wait for "+sel+" to say "+strconv.Quote(want), func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			text, err := chromedp.Text(chromedp.CSS(sel), append(opts, chromedp.NodeVisible)...)(ctx, t)
			if err != nil {
				return err
			}
			if !strings.Contains(text, want) {
				return errNotYet{sel, want, text}
			}
			return nil
		})
	})
}

type errNotYet struct{ sel, want, got string }

func (e errNotYet) Error() string {
	return e.sel + " says " + strconv.Quote(e.got) + ", not " + strconv.Quote(e.want)
}

func (u *ui) click(sel string) {
	u.t.Helper()
	u.try("click "+sel, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.CSS(sel), append(opts, chromedp.NodeVisible)...)
	})
}

// fill types text into an input (after clearing it).
func (u *ui) fill(sel, text string) {
	u.t.Helper()
	u.try("fill "+sel, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		o := append(opts, chromedp.NodeVisible)
		return chromedp.Steps(chromedp.Focus(chromedp.CSS(sel), o...),
			chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent(kb.Backspace),
			chromedp.SendKeys(chromedp.CSS(sel), text, o...))
	})
}

// attr reads an attribute of an element of the current document.
func (u *ui) attr(sel, name string) string {
	u.t.Helper()
	var v string
	u.try("read "+sel+"@"+name, func(opts []chromedp.QueryOption) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			res, err := chromedp.AttributeValue(chromedp.CSS(sel), name, opts...)(ctx, t)
			v = res.Value
			return err
		})
	})
	return v
}

// navigate loads a URL in the top-level tab.
func (u *ui) navigate(url string) {
	u.t.Helper()
	u.inFrame = false
	u.Must(chromedp.Navigate(url))
}

// openApp shows a user's page in the fake app and taps Deposit or Withdraw
// on an account; the screen then lives in the app's iframe.
func (u *ui) openApp(userID, login int64, action, lang, theme string) {
	u.t.Helper()
	u.navigate(u.sys.sim.URL() + "/app/" + strconv.FormatInt(userID, 10))
	sel := `button[value="` + action + `:` + strconv.FormatInt(login, 10) + `"]`
	u.Must(
		chromedp.SetValue(chromedp.CSS(`select[name="lang"]`), lang),
		chromedp.SetValue(chromedp.CSS(`select[name="theme"]`), theme),
		chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("iframe")),
	)
	u.inFrame = true
}

// location is the top-level tab's URL.
func (u *ui) location() string {
	u.t.Helper()
	return browser.Value(u.Browser, chromedp.Location())
}

// frameURL is the address of the app's iframe as the browser has it now.
func (u *ui) frameURL() string {
	u.t.Helper()
	tree, err := chromedp.Call(u.Ctx, cdppage.GetFrameTree, cdp.Empty{})
	if err != nil {
		u.t.Fatal(err)
	}
	if len(tree.FrameTree.ChildFrames) == 0 {
		u.t.Fatal("the app shows no frame")
	}
	return tree.FrameTree.ChildFrames[0].Frame.URL
}
