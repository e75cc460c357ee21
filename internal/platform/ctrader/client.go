// Package ctrader is OpenCashier's client for cTrader's WebServices (manager)
// API and the cTID endpoints a broker calls: balance changes, trader
// accounts, cTID users and links, and the in-app token handoff redeem.
//
// Client implements platform.Connector and platform.ChangeLookup. Its
// ChangeBalance follows the platform error contract exactly: a definite
// business refusal is a *platform.RejectedError, anything that leaves the
// outcome open is a *platform.AmbiguousError carrying the evidence.
//
// Wire facts (spec §2, §3.1, §5): the manager token is obtained with
// POST /v2/webserv/managers/token (MD5 of the password) and sent as ?token=;
// the client sends Accept and Content-Type application/json; money read back
// is an integer scaled by moneyDigits; preciseAmount is written as a JSON
// number formatted from the exact decimal, never through a float.
package ctrader

import (
	"bytes"
	"context"
	"crypto/md5" // #nosec G501 -- cTrader's wire protocol hashes passwords with MD5
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrLookupUnsupported is platform.ErrLookupUnsupported: FindChange returns
// it (wrapped) when the server answers 404 for the simulator's balance
// history extension, as real cTrader presumably does.
var ErrLookupUnsupported = platform.ErrLookupUnsupported

// DefaultRedeemPath is where the handoff redeem lives by default. The spec
// does not say under which base /ctid2/ hangs; the simulator serves it at
// both this path and /cid/ctid2/inAppToken/redeem.
const DefaultRedeemPath = "/ctid2/inAppToken/redeem"

// Config configures a Client.
type Config struct {
	// BaseURL is https://HOST:PORT as Spotware issues it; the client adds
	// /v2/webserv/..., /cid/... and the redeem path.
	BaseURL         string
	ManagerLogin    int64
	ManagerPassword string        // plain; the client sends its MD5 hex
	Timeout         time.Duration // per HTTP request; default 10 s
	HTTPClient      *http.Client  // default: a client with the default transport
	// Metrics, when set, receives ctrader_requests_total{endpoint,outcome}
	// and ctrader_request_duration_seconds{endpoint}.
	Metrics    prometheus.Registerer
	RedeemPath string // default DefaultRedeemPath
}

// Client is a cTrader WebServices client. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	hashed  string
	http    *http.Client
	metrics *metrics

	loginMu sync.Mutex // one login at a time
	mu      sync.Mutex
	token   string                   // cached webservToken
	accts   map[int64]money.Currency // currency per login; it never changes
}

// New returns a client for cfg. It returns an errs.Invalid error for a
// missing or malformed BaseURL, a manager login that is not positive, or an
// empty manager password.
func New(cfg Config) (*Client, error) {
	const op = "ctrader.New"
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "base URL %q is not http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.ManagerLogin <= 0 || cfg.ManagerPassword == "" {
		return nil, errs.E(errs.Invalid, op, "manager login and password are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RedeemPath == "" {
		cfg.RedeemPath = DefaultRedeemPath
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: base, hashed: HashPassword(cfg.ManagerPassword), http: hc,
		metrics: newMetrics(cfg.Metrics), accts: map[int64]money.Currency{}}, nil
}

// HashPassword returns the MD5 hex digest cTrader expects for manager and
// trader passwords (hashedPassword, traderPasswordHash).
func HashPassword(password string) string {
	sum := md5.Sum([]byte(password)) // #nosec G401 -- cTrader's wire protocol hashes passwords with MD5
	return hex.EncodeToString(sum[:])
}

// APIError is an error answer from cTrader, parsed leniently from
// {"errorCode","description"}, {"error","message","code"} or plain text.
type APIError struct {
	Status  int
	Code    string // e.g. TRADER_NOT_FOUND; empty when the body had none
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// parseAPIError reads an error body in any of the shapes cTrader or a proxy
// may send.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		str := func(keys ...string) string {
			for _, k := range keys {
				if v, ok := m[k].(string); ok && v != "" {
					return v
				}
			}
			return ""
		}
		e.Code = str("errorCode", "code")
		e.Message = str("description", "message", "error")
		return e
	}
	e.Message = excerpt(body)
	return e
}

// excerpt is a short, single-line piece of a body for errors and evidence.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// call is one request to cTrader.
type call struct {
	endpoint string // metrics label and fault endpoint name
	method   string
	path     string
	query    url.Values
	body     any // JSON; nil for none
}

// result is what one HTTP exchange produced.
type result struct {
	status  int
	body    []byte
	elapsed time.Duration
	// sent reports that the request's headers were written to a
	// connection, so the server may have received it. When false, the
	// request certainly did not reach the server.
	sent bool
}

// loginError wraps a failure to obtain the manager token; the request it
// was for was not sent.
type loginError struct{ err error }

func (e *loginError) Error() string { return "manager login: " + e.err.Error() }
func (e *loginError) Unwrap() error { return e.err }

// roundTrip performs one HTTP exchange with the given manager token ("" for
// none). Transport errors never contain the URL, which carries the token.
func (c *Client) roundTrip(ctx context.Context, cl call, token string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := c.base.JoinPath(cl.path)
	q := url.Values{}
	for k, v := range cl.query {
		q[k] = v
	}
	if token != "" {
		q.Set("token", token)
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if cl.body != nil {
		data, err := json.Marshal(cl.body)
		if err != nil {
			return result{}, fmt.Errorf("encode %s body: %w", cl.endpoint, err)
		}
		body = bytes.NewReader(data)
	}
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return result{}, fmt.Errorf("build %s request: %w", cl.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := c.http.Do(req)
	r := result{sent: sent.Load()}
	if err != nil {
		r.elapsed = time.Since(start)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: it carries the token
		}
		c.metrics.observe(cl.endpoint, outcomeOf(0, err), r.elapsed)
		return r, err
	}
	defer res.Body.Close()
	r.status = res.StatusCode
	r.body, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	r.elapsed = time.Since(start)
	if err != nil {
		c.metrics.observe(cl.endpoint, outcomeOf(0, err), r.elapsed)
		return r, fmt.Errorf("read the %d answer: %w", r.status, err)
	}
	c.metrics.observe(cl.endpoint, outcomeOf(r.status, nil), r.elapsed)
	return r, nil
}

// managerToken returns the cached token, or logs in when there is none or
// the cached one is stale (the one a request was just refused with). It
// reports whether it logged in.
func (c *Client) managerToken(ctx context.Context, stale string) (string, bool, error) {
	cached := func() string {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.token != "" && c.token != stale {
			return c.token
		}
		return ""
	}
	if t := cached(); t != "" {
		return t, false, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if t := cached(); t != "" { // another caller logged in meanwhile
		return t, false, nil
	}
	res, err := c.roundTrip(ctx, call{endpoint: "token", method: http.MethodPost, path: "/v2/webserv/managers/token",
		body: map[string]any{"login": c.cfg.ManagerLogin, "hashedPassword": c.hashed}}, "")
	if err != nil {
		return "", false, &errs.Error{Code: errs.Unavailable, Op: "ctrader.login", Message: "cTrader did not answer the manager login", Err: err}
	}
	if res.status != http.StatusOK {
		return "", false, apiFailure("ctrader.login", res)
	}
	var out struct {
		WebservToken string `json:"webservToken"`
	}
	if err := decode(res.body, &out); err != nil || out.WebservToken == "" {
		return "", false, errs.Ef(errs.Internal, "ctrader.login", "the manager login answer has no webservToken: %q", excerpt(res.body))
	}
	c.mu.Lock()
	c.token = out.WebservToken
	c.mu.Unlock()
	return out.WebservToken, true, nil
}

// do sends an authenticated request. On 401 or 403 with a cached token it
// logs in again once and repeats the request; an authentication refusal
// proves the first request was not applied, so this is safe for every call.
func (c *Client) do(ctx context.Context, cl call) (result, error) {
	tok, fresh, err := c.managerToken(ctx, "")
	if err != nil {
		return result{}, &loginError{err}
	}
	res, err := c.roundTrip(ctx, cl, tok)
	if err == nil && (res.status == http.StatusUnauthorized || res.status == http.StatusForbidden) && !fresh {
		if tok, _, err = c.managerToken(ctx, tok); err != nil {
			return result{}, &loginError{err}
		}
		res, err = c.roundTrip(ctx, cl, tok)
	}
	return res, err
}

// call sends cl and decodes a 2xx answer into out (nil: ignore the body; an
// empty body leaves out unchanged).
// Failures are *errs.Error values: the platform's refusal mapped with
// platform.CodeForPlatform (wrapping an *APIError), errs.Unavailable when
// cTrader did not answer, errs.Internal for an unreadable answer.
func (c *Client) call(ctx context.Context, op string, cl call, out any) error {
	res, err := c.do(ctx, cl)
	if err != nil {
		var le *loginError
		if errors.As(err, &le) {
			return errs.Wrap(op, le.err)
		}
		return &errs.Error{Code: errs.Unavailable, Op: op, Message: "cTrader did not answer", Err: err}
	}
	if res.status < 200 || res.status > 299 {
		return apiFailure(op, res)
	}
	if out == nil || len(bytes.TrimSpace(res.body)) == 0 { // an empty answer leaves out as it is
		return nil
	}
	if err := decode(res.body, out); err != nil {
		return &errs.Error{Code: errs.Internal, Op: op, Message: "cTrader's answer could not be read", Err: fmt.Errorf("%w; body %q", err, excerpt(res.body))}
	}
	return nil
}

func apiFailure(op string, res result) error {
	ae := parseAPIError(res.status, res.body)
	msg := ae.Message
	if msg == "" {
		msg = ae.Error()
	}
	return &errs.Error{Code: platform.CodeForPlatform(ae.Code, ae.Status), Op: op, Message: msg, Err: ae}
}

// decode reads a JSON answer with exact numbers. Unknown fields are
// ignored: cTrader may add fields at any time.
func decode(body []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(out)
}

// metrics are the client's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ctrader_requests_total",
			Help: "HTTP requests to cTrader by endpoint and outcome (ok, client_error, server_error, timeout, transport_error).",
		}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ctrader_request_duration_seconds",
			Help:    "Duration of HTTP requests to cTrader by endpoint, answered or not.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register registers c or returns the collector already registered under
// its name, so several clients in one process share their metrics. Any other
// registration error is a programming mistake and panics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("ctrader: register metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observe(endpoint, outcome string, d time.Duration) {
	m.requests.WithLabelValues(endpoint, outcome).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

func outcomeOf(status int, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case err != nil:
		return "transport_error"
	case status >= 500:
		return "server_error"
	case status >= 400:
		return "client_error"
	}
	return "ok"
}
