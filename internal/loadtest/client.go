package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Target is the system under load.
type Target struct {
	// CashierURL is the cashier's base URL (no trailing slash); its
	// cTrader-facing /oauth2/* endpoints are at its root.
	CashierURL string
	// SimulatorURL is the cTrader simulator's base URL: its admin API
	// (/_sim/...) gives the trading accounts' balances.
	SimulatorURL string
	// CRMPassword is the password shared with cTrader for
	// /oauth2/crmApiToken.
	CRMPassword string
	// CTraderAddrs is how many loopback source addresses cTrader's calls
	// come from (127.1.0.1, 127.1.0.2, …; default 1). The cashier limits
	// its cTrader endpoints per client address.
	CTraderAddrs int
	// Retry, when positive, retries a step that failed in transport
	// (connection refused or reset, no answer) or with 502/503/504, for up
	// to this long: for a cashier that is being restarted.
	Retry time.Duration
	// Poll is the first interval between status polls (default 15 ms; it
	// grows by half each time up to 16 times that).
	Poll time.Duration
}

// Client drives a Target the way cTrader's backend, the app and traders'
// browsers do. It is safe for concurrent use.
type Client struct {
	t       Target
	base    *url.URL
	ctrader []*http.Client
	next    atomic.Uint64
	sim     *http.Client

	crmMu sync.Mutex
	crm   string

	stepMu sync.Mutex
	steps  map[string]*Histogram
}

// NewClient returns a client of t. It returns errs.Invalid for a bad URL.
func NewClient(t Target) (*Client, error) {
	const op = "loadtest.NewClient"
	base, err := url.Parse(t.CashierURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "cashier URL %q is not an absolute URL", t.CashierURL)
	}
	t.CashierURL = strings.TrimSuffix(t.CashierURL, "/")
	t.SimulatorURL = strings.TrimSuffix(t.SimulatorURL, "/")
	if t.CTraderAddrs <= 0 {
		t.CTraderAddrs = 1
	}
	if t.Poll <= 0 {
		t.Poll = 15 * time.Millisecond
	}
	c := &Client{t: t, base: base, sim: newHTTPClient(nil), steps: map[string]*Histogram{}}
	for i := range t.CTraderAddrs {
		c.ctrader = append(c.ctrader, newHTTPClient(net.IPv4(127, 1, byte(i/250), byte(i%250+1))))
	}
	return c, nil
}

// Target returns what the client drives.
func (c *Client) Target() Target { return c.t }

// newHTTPClient is a keep-alive client that does not follow redirects
// and, with a source address, dials from it.
func newHTTPClient(src net.IP) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConns: 0, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// StepError is a failed step of an operation: an unexpected HTTP status
// (with the answer's error code when it has one), a transport failure, or
// an outcome that is not the one wanted.
type StepError struct {
	Step   string
	Status int    // 0 for a transport failure
	Code   string // the answer's error code, or the transport failure's kind, or the outcome
	Err    error
}

func (e *StepError) Error() string {
	msg := e.Kind()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// Kind names the failure for the error counts: "confirm: HTTP 429",
// "card: connection refused", "outcome: declined".
func (e *StepError) Kind() string {
	if e.Status != 0 {
		k := e.Step + ": HTTP " + strconv.Itoa(e.Status)
		if e.Code != "" {
			k += " " + e.Code
		}
		return k
	}
	return e.Step + ": " + e.Code
}

// transportKind names a transport failure.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no source address"
	}
	return "transport error"
}

// retryable reports whether a step may be sent again as it is while the
// cashier restarts.
func retryable(err error) bool {
	var se *StepError
	if !errors.As(err, &se) {
		return false
	}
	if se.Status == 0 {
		return se.Code != "cancelled" && se.Code != "timeout"
	}
	return se.Status == http.StatusBadGateway || se.Status == http.StatusServiceUnavailable || se.Status == http.StatusGatewayTimeout
}

// exchange is one HTTP exchange's answer.
type exchange struct {
	status int
	header http.Header
	body   []byte
	url    *url.URL
}

// location resolves the answer's Location header.
func (x exchange) location() (*url.URL, error) {
	loc, err := url.Parse(x.header.Get("Location"))
	if err != nil {
		return nil, err
	}
	return x.url.ResolveReference(loc), nil
}

// do sends one request and reads the whole answer. A transport failure
// or a status not in want is a *StepError. With Target.Retry, transport
// failures and 502/503/504 are retried with backoff.
func (c *Client) do(ctx context.Context, hc *http.Client, step, method, rawURL string, body []byte, ctype string, want ...int) (exchange, error) {
	var deadline time.Time
	if c.t.Retry > 0 {
		deadline = time.Now().Add(c.t.Retry)
	}
	wait := 50 * time.Millisecond
	for {
		x, err := c.once(ctx, hc, step, method, rawURL, body, ctype, want)
		if err == nil || deadline.IsZero() || !retryable(err) || time.Now().After(deadline) {
			return x, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return x, err
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// Steps returns the latency of each step's successful exchanges (one
// HTTP request and its answer) so far, by step name.
func (c *Client) Steps() map[string]Summary {
	c.stepMu.Lock()
	defer c.stepMu.Unlock()
	out := make(map[string]Summary, len(c.steps))
	for name, h := range c.steps {
		out[name] = h.Summary()
	}
	return out
}

func (c *Client) record(step string, d time.Duration) {
	c.stepMu.Lock()
	h, ok := c.steps[step]
	if !ok {
		h = &Histogram{}
		c.steps[step] = h
	}
	c.stepMu.Unlock()
	h.Record(d)
}

func (c *Client) once(ctx context.Context, hc *http.Client, step, method, rawURL string, body []byte, ctype string, want []int) (exchange, error) {
	start := time.Now()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return exchange{}, &StepError{Step: step, Code: "bad request", Err: err}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return exchange{}, &StepError{Step: step, Code: transportKind(err), Err: err}
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return exchange{}, &StepError{Step: step, Code: transportKind(err), Err: err}
	}
	x := exchange{status: resp.StatusCode, header: resp.Header, body: b, url: req.URL}
	for _, w := range want {
		if w == resp.StatusCode {
			c.record(step, time.Since(start))
			return x, nil
		}
	}
	return x, &StepError{Step: step, Status: resp.StatusCode, Code: errorCode(b)}
}

// errorCode finds the error code in a JSON answer: the cTrader contract's
// "code", a problem document's "code", or the simulator's "errorCode".
func errorCode(b []byte) string {
	var v struct {
		Code      string `json:"code"`
		ErrorCode string `json:"errorCode"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	if v.Code != "" {
		return v.Code
	}
	return v.ErrorCode
}

func (c *Client) postJSON(ctx context.Context, hc *http.Client, step, rawURL string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return &StepError{Step: step, Code: "bad request", Err: err}
	}
	x, err := c.do(ctx, hc, step, http.MethodPost, rawURL, b, "application/json", http.StatusOK, http.StatusCreated)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(x.body, out); err != nil {
		return &StepError{Step: step, Code: "bad answer", Err: err}
	}
	return nil
}

func (c *Client) postForm(ctx context.Context, hc *http.Client, step, rawURL string, form url.Values, want ...int) (exchange, error) {
	return c.do(ctx, hc, step, http.MethodPost, rawURL, []byte(form.Encode()), "application/x-www-form-urlencoded", want...)
}

// cTrader's side.

func (c *Client) ctraderClient() *http.Client {
	return c.ctrader[c.next.Add(1)%uint64(len(c.ctrader))]
}

// crmToken returns cTrader's cached crmApiToken, fetching one when there
// is none or when stale names the one that was refused.
func (c *Client) crmToken(ctx context.Context, stale string) (string, error) {
	c.crmMu.Lock()
	defer c.crmMu.Unlock()
	if c.crm != "" && c.crm != stale {
		return c.crm, nil
	}
	var out struct {
		CRMAPIToken string `json:"crmApiToken"`
	}
	if err := c.postJSON(ctx, c.ctraderClient(), "crmApiToken", c.t.CashierURL+"/oauth2/crmApiToken",
		map[string]string{"password": c.t.CRMPassword}, &out); err != nil {
		return "", err
	}
	c.crm = out.CRMAPIToken
	return c.crm, nil
}

// ctraderCall posts to one of the cashier's /oauth2 endpoints with the
// crmApiToken, obtaining a new token once when the cashier refuses it, as
// cTrader does.
func (c *Client) ctraderCall(ctx context.Context, step, path string, query url.Values, in, out any) error {
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := c.crmToken(ctx, stale)
		if err != nil {
			return err
		}
		q := url.Values{"crmApiToken": {tok}}
		for k, v := range query {
			q[k] = v
		}
		err = c.postJSON(ctx, c.ctraderClient(), step, c.t.CashierURL+path+"?"+q.Encode(), in, out)
		var se *StepError
		if attempt == 0 && errors.As(err, &se) && se.Status == http.StatusForbidden && se.Code == "CH_CLIENT_AUTH_FAILURE" {
			stale = tok
			continue
		}
		return err
	}
}

// GenerateToken asks for a one-time token that opens a cashier screen for
// the user, as cTrader does when the trader taps Deposit or Withdraw.
func (c *Client) GenerateToken(ctx context.Context, u *User) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	q := url.Values{}
	if tok := u.inAppToken(); tok != "" {
		q.Set("inappToken", tok)
	}
	if err := c.ctraderCall(ctx, "token", "/oauth2/onetime/generate", q, map[string]int64{"userId": u.CTID}, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", &StepError{Step: "token", Code: "no token in the answer"}
	}
	return out.Token, nil
}

// The simulator's admin API.

// simGet reads a JSON document from the simulator's admin API.
func (c *Client) simGet(ctx context.Context, path string, out any) error {
	x, err := c.do(ctx, c.sim, "simulator", http.MethodGet, c.t.SimulatorURL+path, nil, "", http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(x.body, out); err != nil {
		return &StepError{Step: "simulator", Code: "bad answer", Err: err}
	}
	return nil
}

// SimPut sends a JSON document to the simulator's admin API (PUT
// /_sim/faults, for one).
func (c *Client) SimPut(ctx context.Context, path string, in any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, c.sim, "simulator", http.MethodPut, c.t.SimulatorURL+path, b, "application/json", http.StatusOK, http.StatusNoContent)
	return err
}

// SimGet reads a JSON document from the simulator's admin API.
func (c *Client) SimGet(ctx context.Context, path string, out any) error {
	return c.simGet(ctx, path, out)
}

// SandboxSettings sets the sandbox provider's webhook faults on its
// control page: every event delivered twice, final events before earlier
// ones, or none delivered (the cashier must poll).
func (c *Client) SandboxSettings(ctx context.Context, duplicate, outOfOrder, drop bool) error {
	form := url.Values{}
	for name, on := range map[string]bool{"duplicate_webhooks": duplicate, "out_of_order_webhooks": outOfOrder, "drop_webhooks": drop} {
		if on {
			form.Set(name, "on")
		}
	}
	_, err := c.postForm(ctx, c.sim, "sandbox settings", c.t.CashierURL+"/sandbox/control/settings", form, http.StatusSeeOther)
	return err
}

var canonicalRE = regexp.MustCompile(`id="canonical" data-url="([^"]*)"`)

// handleOf finds the session handle a cashier screen opened with a token
// moved to: in the redirect, or in the first screen's canonical address.
func handleOf(x exchange) string {
	if x.status == http.StatusSeeOther {
		if u, err := x.location(); err == nil {
			return u.Query().Get("s")
		}
		return ""
	}
	m := canonicalRE.FindSubmatch(x.body)
	if m == nil {
		return ""
	}
	u, err := url.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return ""
	}
	return u.Query().Get("s")
}

// openScreen asks for a token and opens the deposit or withdrawal screen
// with it, as the app's frame does; it returns the session handle.
func (c *Client) openScreen(ctx context.Context, u *User, op string) (string, error) {
	tok, err := c.GenerateToken(ctx, u)
	if err != nil {
		return "", err
	}
	q := url.Values{"token": {tok}, "account": {strconv.FormatInt(u.Login, 10)}, "lang": {"en"}, "source": {"Web"}}
	x, err := c.do(ctx, u.http, "open", http.MethodGet, c.t.CashierURL+"/inapp/"+op+"?"+q.Encode(), nil, "", http.StatusOK, http.StatusSeeOther)
	if err != nil {
		return "", err
	}
	h := handleOf(x)
	if h == "" {
		return "", &StepError{Step: "open", Code: "no session handle"}
	}
	return h, nil
}

// status polls a status JSON until it is final, the wanted status, or ctx
// ends; it returns the last status.
func (c *Client) status(ctx context.Context, u *User, path, ticket string, done func(status string, final bool) bool) (string, error) {
	wait := c.t.Poll
	for {
		x, err := c.do(ctx, u.http, "status", http.MethodGet, c.t.CashierURL+path+"?"+url.Values{"t": {ticket}}.Encode(), nil, "", http.StatusOK)
		if err != nil {
			return "", err
		}
		var s struct {
			Status string `json:"status"`
			Final  bool   `json:"final"`
		}
		if err := json.Unmarshal(x.body, &s); err != nil {
			return "", &StepError{Step: "status", Code: "bad answer", Err: err}
		}
		if done(s.Status, s.Final) {
			return s.Status, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.Status, &StepError{Step: "settle", Code: "timeout (last status " + s.Status + ")", Err: ctx.Err()}
		case <-t.C:
		}
		wait = min(wait*3/2, 16*c.t.Poll)
	}
}

// ticketOf reads the status page's ticket from a redirect to it.
func ticketOf(x exchange, step string) (string, error) {
	u, err := x.location()
	if err != nil || u.Query().Get("t") == "" {
		return "", &StepError{Step: step, Code: "no status ticket in " + fmt.Sprint(x.header.Get("Location"))}
	}
	return u.Query().Get("t"), nil
}
