// Package openapitest checks tests' HTTP exchanges against the cashier's
// OpenAPI document (package openapi) with github.com/getkin/kin-openapi. It
// is a separate package so that the cashier binary does not link the
// validator.
//
// Wrap a test server's handler, or a test client's transport:
//
//	v := openapitest.New(t, openapitest.Options{})
//	srv := httptest.NewServer(v.Handler(mux))              // server side, or
//	client := &http.Client{Transport: v.Transport(nil)}    // client side
//
// Every exchange whose method and path the document lists is checked: the
// response (status, content type, headers, body) must match the document,
// and a request the document refuses must have been answered with a 4xx
// status (a test may send malformed requests on purpose; the server must
// refuse them too). Paths the document does not list are skipped, unless
// they answer 2xx JSON: an undocumented JSON endpoint fails the test.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/opencashier/cashier/internal/openapi"
)

// Options tune a Validator.
type Options struct {
	// BasePath is a prefix the server mounts the documented paths under
	// (the cTrader endpoints' CASHIER_CTRADER_BASE_PATH, e.g. "/cid"); it is
	// removed before the path is looked up in the document.
	BasePath string
	// Ignore lists path prefixes that are not the cashier's API (the
	// sandbox provider's own API under /sandbox/, say) and are never
	// checked.
	Ignore []string
}

// Validator checks exchanges against the document and reports failures to
// its test. It is safe for concurrent use.
type Validator struct {
	t      testing.TB
	opt    Options
	doc    *openapi3.T
	router routers.Router

	// off is set for a fuzz target's *testing.F, which cannot report from
	// inside the fuzz function: such a Validator checks nothing.
	off bool

	mu      sync.Mutex
	checked map[string]int // operationId → exchanges checked
}

var (
	loadOnce sync.Once
	loaded   *openapi3.T
	loadErr  error
)

// Load parses and validates the embedded document once per test binary.
// It returns the parser's or the validator's error.
func Load() (*openapi3.T, error) {
	loadOnce.Do(func() {
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(openapi.Document())
		if err != nil {
			loadErr = fmt.Errorf("openapitest: parse openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loadErr = fmt.Errorf("openapitest: openapi.yaml is not a valid OpenAPI document: %w", err)
			return
		}
		loaded = doc
	})
	return loaded, loadErr
}

// New returns a Validator reporting to t. It fails t at once if the
// document does not load. For a *testing.F (a fuzz target's set-up) it
// returns a Validator that checks nothing, since F's methods must not be
// called from inside the fuzz function.
func New(t testing.TB, opt Options) *Validator {
	t.Helper()
	if _, fuzz := t.(*testing.F); fuzz {
		return &Validator{t: t, opt: opt, off: true, checked: map[string]int{}}
	}
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapitest: router: %v", err)
	}
	v := &Validator{t: t, opt: opt, doc: doc, router: router, checked: map[string]int{}}
	if path := os.Getenv(CoverageEnv); path != "" {
		t.Cleanup(func() { v.appendCoverage(path) })
	}
	return v
}

// CoverageEnv names the environment variable that, when set to a file
// path, makes every Validator append the operation ids it checked to that
// file (one a line) when its test ends: run the API tests with it to see
// which operations of the document no test exercises.
const CoverageEnv = "OPENAPITEST_COVERAGE"

func (v *Validator) appendCoverage(path string) {
	ids := v.Checked()
	if len(ids) == 0 {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600) // #nosec G304 -- a path the developer chose for the report
	if err != nil {
		v.t.Errorf("openapitest: coverage file: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(ids, "\n") + "\n"); err != nil {
		v.t.Errorf("openapitest: coverage file: %v", err)
	}
}

// ErrNoRoute is returned by ValidateRequest and ValidateResponse for a
// method and path the document does not list.
var ErrNoRoute = errors.New("openapitest: the document lists no such operation")

func (v *Validator) find(r *http.Request) (*routers.Route, map[string]string, error) {
	u := *r.URL
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	if u.Host == "" {
		u.Host = r.Host
	}
	if v.opt.BasePath != "" {
		rest, ok := strings.CutPrefix(u.Path, v.opt.BasePath)
		if !ok {
			return nil, nil, ErrNoRoute
		}
		u.Path, u.RawPath = rest, ""
	}
	lookup := r.Clone(r.Context())
	lookup.URL = &u
	route, params, err := v.router.FindRoute(lookup)
	if err != nil {
		return nil, nil, ErrNoRoute
	}
	return route, params, nil
}

func (v *Validator) ignored(r *http.Request) bool {
	for _, p := range v.opt.Ignore {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
}

func (v *Validator) input(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := v.find(r)
	if err != nil {
		return nil, err
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	if len(body) > 0 && req.Header.Get("Content-Type") == "" {
		// The servers read a body without a Content-Type as JSON (httpx.DecodeJSON).
		req.Header.Set("Content-Type", "application/json")
	}
	return &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			// Authentication is the server's business; the document only
			// says which scheme applies.
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}, nil
}

// ValidateRequest checks a request (with its body, read by the caller)
// against the document. It returns ErrNoRoute for an operation the
// document does not list, and the validator's error for a request the
// document refuses.
func (v *Validator) ValidateRequest(r *http.Request, body []byte) error {
	in, err := v.input(r, body)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(r.Context(), in)
}

// ValidateResponse checks the answer to r against the document. It returns
// ErrNoRoute for an operation the document does not list, and the
// validator's error for a status, content type or body the document does
// not allow.
func (v *Validator) ValidateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := v.input(r, reqBody)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(r.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: in.Options,
	})
}

// Check applies the rules of the package comment to one exchange and
// reports every failure with t.Errorf. It returns whether the exchange was
// an operation of the document.
func (v *Validator) Check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) bool {
	if v.off || v.ignored(r) {
		return false
	}
	v.t.Helper()
	exchange := fmt.Sprintf("%s %s → %d", r.Method, r.URL.RequestURI(), status)
	route, _, err := v.find(r)
	if err != nil {
		if status >= 200 && status < 300 && isJSON(header.Get("Content-Type")) {
			v.t.Errorf("openapitest: %s answered JSON, but openapi.yaml lists no such operation", exchange)
		}
		return false
	}
	v.mu.Lock()
	v.checked[route.Operation.OperationID]++
	v.mu.Unlock()
	if err := v.ValidateRequest(r, reqBody); err != nil && (status < 400 || status >= 500) {
		v.t.Errorf("openapitest: %s: openapi.yaml refuses the request, yet it was answered %d (the document is too strict, or the server too lenient):\n%v\nrequest body: %s",
			exchange, status, err, clip(reqBody))
	}
	if err := v.ValidateResponse(r, reqBody, status, header, body); err != nil {
		v.t.Errorf("openapitest: %s: the response does not match openapi.yaml:\n%v\nContent-Type: %s\nresponse body: %s",
			exchange, err, header.Get("Content-Type"), clip(body))
	}
	return true
}

// Checked returns the operation ids checked so far, sorted, for tests that
// assert their coverage of the document.
func (v *Validator) Checked() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	ids := make([]string, 0, len(v.checked))
	for id := range v.checked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Operations returns every operation id of the document, sorted.
func (v *Validator) Operations() []string {
	var ids []string
	for _, item := range v.doc.Paths.Map() {
		for _, op := range item.Operations() {
			ids = append(ids, op.OperationID)
		}
	}
	sort.Strings(ids)
	return ids
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// Handler wraps a test server's handler: every exchange is checked before
// the answer leaves (the answer is buffered, so a failure is reported
// while the test still waits for it).
func (v *Validator) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			body, err = io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "openapitest: read the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			_ = r.Body.Close()
		}
		seen := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		v.Check(seen, body, res.StatusCode, res.Header, rec.Body.Bytes())
		for k, vals := range res.Header {
			w.Header()[k] = vals
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Transport wraps a test client's transport (nil means
// http.DefaultTransport): every exchange is checked when its answer has
// been read in full by the transport.
func (v *Validator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{v: v, base: base}
}

type roundTripper struct {
	v    *Validator
	base http.RoundTripper
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	sent := r.Clone(r.Context())
	sent.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) == 0 {
		sent.Body = http.NoBody
	}
	res, err := rt.base.RoundTrip(sent)
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(answer))
	seen := r.Clone(r.Context())
	seen.URL = &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, Scheme: r.URL.Scheme, Host: r.URL.Host}
	rt.v.Check(seen, body, res.StatusCode, res.Header, answer)
	return res, nil
}
