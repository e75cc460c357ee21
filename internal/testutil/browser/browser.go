// Package browser starts a headless Chromium for tests and drives it with
// chromedp. A test gets a fresh browser with its own profile; the test fails
// if any page logs a console error or throws an uncaught exception, and a
// screenshot of the tab is written to the test's artifact directory when
// the test fails (run `go test -artifacts` to keep it).
//
// Chromium is found at $CHROME_PATH, /usr/bin/chromium, or as chromium,
// chromium-browser or google-chrome on PATH. Without one, tests skip, unless
// the CI environment variable is set, in which case they fail.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Options configure a browser.
type Options struct {
	// Width and Height are the window size in CSS pixels (default 1280×900).
	Width, Height int
	// Mobile emulates a phone: touch, a mobile user agent's viewport rules
	// and device scale factor 3 at Width×Height.
	Mobile bool
	// Timeout bounds the whole test's use of the browser (default 2 minutes).
	Timeout time.Duration
	// Allow lists substrings of console messages that are expected (a page
	// that answers with a 4xx status on purpose logs one in some cases).
	Allow []string
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx context.Context

	t       testing.TB
	cancel  func()
	mu      sync.Mutex
	console []string
	allow   []string
	done    chan struct{}
}

// Path returns the Chromium to use, or "" if there is none.
func Path() string {
	cands := []string{os.Getenv("CHROME_PATH"), "/usr/bin/chromium"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Require returns the Chromium to use; without one it skips the test, or
// fails it when CI is set.
func Require(t testing.TB) string {
	t.Helper()
	p := Path()
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is required in CI (apt-get install chromium, or set CHROME_PATH)")
		}
		t.Skip("no Chromium installed (apt-get install chromium, or set CHROME_PATH)")
	}
	return p
}

// New starts a browser for the test and opens its tab. The browser stops
// when the test ends; before that, a failed test gets a screenshot, and
// console errors fail the test.
func New(t testing.TB, opt Options) *Browser {
	t.Helper()
	path := Require(t)
	if opt.Width == 0 || opt.Height == 0 {
		opt.Width, opt.Height = 1280, 900
	}
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Minute
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(opt.Width, opt.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("lang", "en-US"),
	)
	root, cancelRoot := context.WithTimeout(context.Background(), opt.Timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	// The browser asks every origin for /favicon.ico by itself; a missing
	// one is not an error of the page under test.
	allow := append([]string{"/favicon.ico"}, opt.Allow...)
	b := &Browser{Ctx: ctx, t: t, allow: allow, done: make(chan struct{})}
	b.cancel = func() { cancelCtx(); cancelAlloc(); cancelRoot() }
	if err := chromedp.Do(ctx); err != nil {
		b.cancel()
		t.Fatalf("start Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	if opt.Mobile {
		b.Must(chromedp.EmulateViewport(int64(opt.Width), int64(opt.Height), chromedp.EmulateMobile, chromedp.EmulateScale(3)))
	} else {
		b.Must(chromedp.EmulateViewport(int64(opt.Width), int64(opt.Height)))
	}
	t.Cleanup(b.close)
	return b
}

func (b *Browser) close() {
	if b.t.Failed() {
		b.Screenshot("failure")
	}
	b.cancel()
	<-b.done
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		b.t.Errorf("the pages logged %d console error(s):\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
}

// ConsoleErrors returns the console errors and uncaught exceptions logged
// so far, without the allowed ones.
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if !slices.ContainsFunc(b.allow, func(a string) bool { return strings.Contains(m, a) }) {
			out = append(out, m)
		}
	}
	return out
}

// Allow adds an expected console message (a substring).
func (b *Browser) Allow(substr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allow = append(b.allow, substr)
}

// Screenshot writes a PNG of the visible tab to the test's artifact
// directory and returns its path ("" if it could not be taken).
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("no screenshot: %v", err)
		return ""
	}
	dir := b.t.ArtifactDir()
	path := filepath.Join(dir, sanitize(name)+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		b.t.Logf("no screenshot: %v", err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// Must runs actions and fails the test at the first error.
func (b *Browser) Must(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Value runs one action that returns a value and fails the test on error.
func Value[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// Throttle emulates a slow network: latency in milliseconds and throughput
// in bytes per second each way (0 lifts the limit).
func Throttle(latencyMS float64, downBps, upBps float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Latency: latencyMS, DownloadThroughput: downBps, UploadThroughput: upBps}}})
		return err
	})
}

// Slow3G is Chromium DevTools' "3G" preset (formerly "Slow 3G"): 2 s of
// latency per request (400 ms × the 5× factor DevTools applies) and
// 500 kbit/s × 0.8 each way.
func Slow3G() chromedp.Action[chromedp.Void] {
	return Throttle(400*5, 500*1000/8*0.8, 500*1000/8*0.8)
}

// DisableJavaScript turns script execution off in the tab (or on again).
func DisableJavaScript(off bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return err
	})
}
