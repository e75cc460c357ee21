package openapitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencashier/cashier/internal/openapi"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
)

// recordingTB collects what the validator reports instead of failing.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

func TestDocumentLoadsAndValidates(t *testing.T) {
	if _, err := openapitest.Load(); err != nil {
		t.Fatal(err)
	}
}

// fixed answers every request with one status, content type and body.
func fixed(status int, contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func TestCheckRules(t *testing.T) {
	const (
		goodLogin = `{"email":"ann@example.com","password":"pw"}`
		tokens    = `{"accessToken":"a","tokenType":"Bearer","expiresIn":900,"refreshToken":"r","refreshExpiresIn":2592000}`
		problem   = `{"type":"https://opencashier.dev/problems/invalid","title":"Bad Request","status":400,"code":"EINVALID"}`
	)
	for _, tc := range []struct {
		name       string
		method     string
		path, body string
		server     http.Handler
		wantErrors []string // substrings, one per report
	}{
		{"conforming exchange", "POST", "/api/v2/auth/login", goodLogin, fixed(200, "application/json", tokens), nil},
		{"response missing a required field", "POST", "/api/v2/auth/login", goodLogin,
			fixed(200, "application/json", `{"accessToken":"a"}`), []string{"does not match"}},
		{"undocumented status", "POST", "/api/v2/auth/login", goodLogin,
			fixed(418, "application/problem+json", problem), []string{"does not match"}},
		{"wrong content type", "POST", "/api/v2/auth/login", goodLogin,
			fixed(400, "application/json", problem), []string{"does not match"}},
		{"invalid request refused with 400", "POST", "/api/v2/auth/login", `{"email":1}`,
			fixed(400, "application/problem+json", problem), nil},
		{"invalid request accepted", "POST", "/api/v2/auth/login", `{"email":"a","pin":"1"}`,
			fixed(200, "application/json", tokens), []string{"refuses the request"}},
		{"unknown path answered 404", "GET", "/nope", "", fixed(404, "text/plain", "404 page not found"), nil},
		{"undocumented JSON endpoint", "GET", "/nope", "", fixed(200, "application/json", `{}`), []string{"lists no such operation"}},
		{"path parameter and query", "GET", "/transactions?limit=101", "",
			fixed(400, "application/json", `{"message":"limit must be a whole number between 1 and 100"}`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, side := range []string{"server", "client"} {
				rec := &recordingTB{TB: t}
				v := openapitest.New(rec, openapitest.Options{})
				h := tc.server
				client := http.DefaultClient
				if side == "server" {
					h = v.Handler(h)
				} else {
					client = &http.Client{Transport: v.Transport(nil)}
				}
				srv := httptest.NewServer(h)
				var rd io.Reader
				if tc.body != "" {
					rd = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, srv.URL+tc.path, rd)
				if err != nil {
					t.Fatal(err)
				}
				if tc.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				srv.Close()
				got := rec.reported()
				if len(got) != len(tc.wantErrors) {
					t.Fatalf("%s side: reports %q, want %d matching %q", side, got, len(tc.wantErrors), tc.wantErrors)
				}
				for i, want := range tc.wantErrors {
					if !strings.Contains(got[i], want) {
						t.Errorf("%s side: report %q does not mention %q", side, got[i], want)
					}
				}
			}
		})
	}
}

func TestBasePathAndIgnore(t *testing.T) {
	rec := &recordingTB{TB: t}
	v := openapitest.New(rec, openapitest.Options{BasePath: "/cid", Ignore: []string{"/sandbox/"}})
	mux := http.NewServeMux()
	mux.Handle("/cid/oauth2/crmApiToken", fixed(200, "application/json", `{"wrong":true}`))
	mux.Handle("/sandbox/api/payments", fixed(200, "application/json", `{"id":"p"}`))
	srv := httptest.NewServer(v.Handler(mux))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/cid/oauth2/crmApiToken", "/sandbox/api/payments"} {
		res, err := http.Post(srv.URL+p, "application/json", strings.NewReader(`{"password":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	got := rec.reported()
	if len(got) != 1 || !strings.Contains(got[0], "/cid/oauth2/crmApiToken") {
		t.Errorf("reports %q, want one about the crmApiToken answer under /cid", got)
	}
	if ids := v.Checked(); len(ids) != 1 || ids[0] != "crmApiToken" {
		t.Errorf("Checked() = %q, want [crmApiToken]", ids)
	}
}

func TestTheDocumentEndpointConforms(t *testing.T) {
	v := openapitest.New(t, openapitest.Options{})
	srv := httptest.NewServer(v.Handler(openapi.Handler()))
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + openapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := v.Checked(); len(got) != 1 || got[0] != "openapiDocument" {
		t.Errorf("Checked() = %q, want [openapiDocument]", got)
	}
}
