package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

type payload struct {
	Amount json.Number `json:"amount"`
	Name   string      `json:"name"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		opt       DecodeOptions
		want      payload
		wantErr   string
		wantTo413 bool
	}{
		{name: "exact number kept", body: `{"amount": 0.10000000000000001, "name":"a"}`, want: payload{Amount: "0.10000000000000001", Name: "a"}},
		{name: "malformed", body: `{"amount": `, wantErr: "malformed JSON: the body ends too early"},
		{name: "syntax error", body: `{"amount" 1}`, wantErr: "malformed JSON at byte 11"},
		{name: "wrong type", body: `{"name": 5}`, wantErr: `field "name" must be a string, not number`},
		{name: "unknown field", body: `{"nmae": "x"}`, wantErr: `unknown field "nmae"`},
		{name: "unknown allowed", body: `{"nmae": "x"}`, opt: DecodeOptions{AllowUnknown: true}},
		{name: "trailing data", body: `{"name":"a"} {"name":"b"}`, wantErr: "request body has data after the JSON value"},
		{name: "empty", body: ``, wantErr: "request body is empty; a JSON object is required"},
		{name: "too large", body: `{"name":"` + strings.Repeat("x", 100) + `"}`, opt: DecodeOptions{MaxBytes: 50}, wantErr: "request body is larger than 50 bytes", wantTo413: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			var got payload
			err := DecodeJSON(httptest.NewRecorder(), r, &got, tc.opt)
			if tc.wantErr != "" {
				if err == nil || errs.MessageOf(err) != tc.wantErr {
					t.Fatalf("err = %v, want message %q", err, tc.wantErr)
				}
				if errs.CodeOf(err) != errs.Invalid {
					t.Errorf("code = %s", errs.CodeOf(err))
				}
				if wantStatus := map[bool]int{true: 413, false: 400}[tc.wantTo413]; StatusOf(err) != wantStatus {
					t.Errorf("status = %d, want %d", StatusOf(err), wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeJSONRefusesOtherMediaTypes(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(`name=a`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var got payload
	if err := DecodeJSON(httptest.NewRecorder(), r, &got, DecodeOptions{}); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("err = %v, want EINVALID", err)
	}
}

func TestWriteProblemHidesInternalDetail(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Problem
	}{
		{"not found", errs.E(errs.NotFound, "x", "Transaction not found."), Problem{Type: ProblemTypeBase + "notfound", Title: "Not Found", Status: 404, Detail: "Transaction not found.", Instance: "/t", Code: "ENOTFOUND"}},
		{"internal", errs.Wrap("x", http.ErrHandlerTimeout), Problem{Type: ProblemTypeBase + "internal", Title: "Internal Server Error", Status: 500, Detail: "An internal error occurred.", Instance: "/t", Code: "EINTERNAL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteProblem(rec, httptest.NewRequest("GET", "/t", nil), tc.err)
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(SecurityOptions{FrameAncestors: []string{"https://app.ctrader.com"}})(NoStore(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://app.ctrader.com") {
		t.Errorf("CSP = %q", csp)
	}
	if rec.Header().Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options set; it would block cTrader's frame")
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// The CSP allows the hashed inline styles and nothing else inline.
func TestSecurityHeadersInlineStyles(t *testing.T) {
	critical := HashSource([]byte("body{margin:0}"))
	tests := []struct {
		name      string
		styles    []string
		wantStyle string
	}{
		{"none", nil, "style-src 'self';"},
		{"one hash", []string{critical}, "style-src 'self' " + critical + ";"},
		{"the same hash twice", []string{critical, critical}, "style-src 'self' " + critical + ";"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := SecurityHeaders(SecurityOptions{InlineStyles: tc.styles})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			csps := rec.Header().Values("Content-Security-Policy")
			if len(csps) != 1 {
				t.Fatalf("%d CSP headers, want 1: %q", len(csps), csps)
			}
			csp := csps[0]
			if !strings.Contains(csp, tc.wantStyle) || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP = %q, want %q, script-src 'self' and nothing unsafe", csp, tc.wantStyle)
			}
		})
	}
}

// An outer SecurityHeaders (the server's) and an inner one (a screen's own,
// with its style hash) leave one policy: the inner one.
func TestSecurityHeadersInnerPolicyWins(t *testing.T) {
	inner := HashSource([]byte("main{padding:16px}"))
	outer := SecurityHeaders(SecurityOptions{})
	h := outer(SecurityHeaders(SecurityOptions{InlineStyles: []string{inner}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if csps := rec.Header().Values("Content-Security-Policy"); len(csps) != 1 || !strings.Contains(csps[0], inner) {
		t.Errorf("CSP headers = %q, want one with %s", csps, inner)
	}
}

func TestSecurityHeadersRefusesOtherSources(t *testing.T) {
	for _, src := range []string{"'unsafe-inline'", "https://cdn.example", "'sha256-abc' 'unsafe-inline'", "sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng="} {
		t.Run(src, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("InlineStyles %q was accepted", src)
				}
			}()
			SecurityHeaders(SecurityOptions{InlineStyles: []string{src}})
		})
	}
}

// The example of the CSP specification (§ "hash-source").
func TestHashSource(t *testing.T) {
	if got, want := HashSource([]byte("alert('Hello, world.');")), "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"; got != want {
		t.Errorf("HashSource = %s, want %s", got, want)
	}
}
