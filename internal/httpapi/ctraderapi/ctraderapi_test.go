package ctraderapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var ctx = context.Background()

// env is a running API with its service.
type env struct {
	t   *testing.T
	url string
	svc *identity.Service
	clk *clock.Fake
}

func newEnv(t *testing.T, db *sqlstore.DB, opt ctraderapi.Options) *env {
	t.Helper()
	svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
	if opt.Clock == nil {
		opt.Clock = clk
	}
	api, err := ctraderapi.New(svc, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(api.Prefix(), api)
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{BasePath: opt.BasePath}).Handler(mux))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL + opt.BasePath, svc: svc, clk: clk}
}

// reply is an answer: status, raw body and the decoded object.
type reply struct {
	status int
	raw    string
	body   map[string]any
}

func (e *env) post(path string, query url.Values, body string) reply {
	e.t.Helper()
	u := e.url + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, raw: string(data)}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&r.body); err != nil {
			e.t.Fatalf("answer %d is not a JSON object: %q", res.StatusCode, data)
		}
	}
	return r
}

// wantError checks an error answer: status, code and the error text.
func (r reply) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.raw, status)
	}
	want := map[string]any{"error": http.StatusText(status), "code": code}
	got := map[string]any{"error": r.body["error"], "code": r.body["code"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("error body (-want +got):\n%s\nraw: %s", diff, r.raw)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Errorf("error body has no message: %s", r.raw)
	}
	for _, k := range []string{"crmApiToken", "accessToken", "inappToken", "token", "userId"} {
		if _, ok := r.body[k]; ok {
			t.Errorf("error body carries %q: %s", k, r.raw)
		}
	}
}

func (r reply) wantKeys(t *testing.T, keys ...string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d (%s), want 200", r.status, r.raw)
	}
	var got []string
	for k := range r.body {
		got = append(got, k)
	}
	if diff := cmp.Diff(keys, got, cmpSorted); diff != "" {
		t.Fatalf("answer keys (-want +got):\n%s\nraw: %s", diff, r.raw)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return m
})

func (r reply) str(t *testing.T, key string) string {
	t.Helper()
	s, ok := r.body[key].(string)
	if !ok || s == "" {
		t.Fatalf("answer has no string %q: %s", key, r.raw)
	}
	return s
}

// userID checks that userId is a JSON number and returns it.
func (r reply) userID(t *testing.T) int64 {
	t.Helper()
	n, ok := r.body["userId"].(json.Number)
	if !ok {
		t.Fatalf("userId is not a JSON number: %s", r.raw)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("userId %s is not an integer", n)
	}
	return v
}

func (e *env) crmToken() string {
	e.t.Helper()
	r := e.post("/oauth2/crmApiToken", nil, `{"password":"`+identitytest.CRMPassword+`"}`)
	r.wantKeys(e.t, "crmApiToken")
	return r.str(e.t, "crmApiToken")
}

func auth(tok string, kv ...string) url.Values {
	q := url.Values{"crmApiToken": {tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// user signs a user up and returns it with a fresh login token.
func (e *env) user(email string, remember bool) identity.LoginResult {
	e.t.Helper()
	res, err := e.svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: email, Password: "long enough"}, Remember: remember})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

var badCRM = strings.Repeat("A", 43)

func each(t *testing.T, fn func(t *testing.T, e *env)) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) { fn(t, newEnv(t, db, ctraderapi.Options{})) }, identity.Schema)
}

// 6.1.1: valid password → 200 and a token; invalid → 403 and no token.
func TestConformance_6_1_1_CrmApiToken(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		tok := e.crmToken()
		if !identity.WellFormedToken(tok) {
			t.Errorf("crmApiToken %q is not a 256-bit token", tok)
		}
		if again := e.crmToken(); again == tok {
			t.Error("two requests returned the same crmApiToken")
		}
		e.post("/oauth2/crmApiToken", nil, `{"password":"wrong password"}`).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		e.post("/oauth2/crmApiToken", nil, `{}`).wantError(t, 400, "MISSING_REQUIRED_PARAMETER")
		// The token authenticates later calls under either parameter name.
		u := e.user("a@example.com", false)
		for _, name := range []string{"crmApiToken", "token"} {
			r := e.post("/oauth2/onetime/generate", url.Values{name: {tok}}, fmt.Sprintf(`{"userId":%d}`, u.User.CTIDUserID))
			r.wantKeys(t, "token")
		}
		// Valid for at least 7 days.
		e.clk.Advance(7*24*time.Hour - time.Minute)
		e.post("/oauth2/onetime/generate", auth(tok), fmt.Sprintf(`{"userId":%d}`, u.User.CTIDUserID)).wantKeys(t, "token")
		e.clk.Advance(time.Minute)
		e.post("/oauth2/onetime/generate", auth(tok), fmt.Sprintf(`{"userId":%d}`, u.User.CTIDUserID)).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
	})
}

// 6.1.2: OT exchange: valid → 200 with accessToken and userId; invalid OT
// → error without tokens; invalid crmApiToken → 403.
func TestConformance_6_1_2_OneTimeAuthorize(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		u := e.user("anna@example.com", true)
		r := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+u.LoginToken+`"}`)
		r.wantKeys(t, "accessToken", "userId", "inappToken")
		if got := r.userID(t); got != u.User.CTIDUserID {
			t.Errorf("userId = %d, want %d", got, u.User.CTIDUserID)
		}
		if !strings.Contains(r.raw, fmt.Sprintf(`"userId":%d`, u.User.CTIDUserID)) {
			t.Errorf("userId is not written as a bare number: %s", r.raw)
		}
		// Without "keep me logged in": no accessToken.
		plain := e.user("bob@example.com", false)
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+plain.LoginToken+`"}`).wantKeys(t, "userId", "inappToken")

		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+u.LoginToken+`"}`).wantError(t, 404, "NOT_FOUND")
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+strings.Repeat("A", 43)+`"}`).wantError(t, 404, "NOT_FOUND")
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"not a token"}`).wantError(t, 417, "CID_NON_EXISTED_TOKEN")
		fresh := e.user("carl@example.com", true)
		e.post("/oauth2/onetime/authorize", auth(badCRM), `{"code":"`+fresh.LoginToken+`"}`).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		// The refused call did not use the token up.
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+fresh.LoginToken+`"}`).wantKeys(t, "accessToken", "userId", "inappToken")
	})
}

// 6.1.3: accessToken verification: valid → 200 userId (repeatedly);
// invalid → error; invalid crmApiToken → 403.
func TestConformance_6_1_3_Authorize(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		u := e.user("anna@example.com", true)
		ex := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+u.LoginToken+`"}`)
		access := ex.str(t, "accessToken")
		for range 2 {
			r := e.post("/oauth2/authorize", auth(crm), `{"accessToken":"`+access+`"}`)
			r.wantKeys(t, "userId", "inappToken")
			if r.userID(t) != u.User.CTIDUserID {
				t.Errorf("userId = %d, want %d", r.userID(t), u.User.CTIDUserID)
			}
		}
		e.post("/oauth2/authorize", auth(crm), `{"accessToken":"`+strings.Repeat("A", 43)+`"}`).wantError(t, 404, "NOT_FOUND")
		e.post("/oauth2/authorize", auth(crm), `{"accessToken":"%%%"}`).wantError(t, 417, "CID_NON_EXISTED_TOKEN")
		e.post("/oauth2/authorize", auth(badCRM), `{"accessToken":"`+access+`"}`).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		e.post("/oauth2/authorize", auth(crm), `{}`).wantError(t, 400, "MISSING_REQUIRED_PARAMETER")
		e.clk.Advance(90 * 24 * time.Hour)
		e.post("/oauth2/authorize", auth(e.crmToken()), `{"accessToken":"`+access+`"}`).wantError(t, 410, "CID_TOKEN_EXPIRED")
	})
}

// 6.1.4: in-app OT generation: valid → 200 token; invalid inappToken →
// error; invalid crmApiToken → 403.
func TestConformance_6_1_4_OneTimeGenerate(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		anna := e.user("anna@example.com", true)
		bob := e.user("bob@example.com", true)
		annaEx := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+anna.LoginToken+`"}`)
		bobEx := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+bob.LoginToken+`"}`)
		body := fmt.Sprintf(`{"userId":%d}`, anna.User.CTIDUserID)

		r := e.post("/oauth2/onetime/generate", auth(crm, "inappToken", annaEx.str(t, "inappToken")), body)
		r.wantKeys(t, "token")
		if _, err := e.svc.OpenInApp(ctx, r.str(t, "token"), 0); err != nil {
			t.Errorf("the generated token does not open an in-app screen: %v", err)
		}
		e.post("/oauth2/onetime/generate", auth(crm, "inappToken", bobEx.str(t, "inappToken")), body).wantError(t, 403, "CH_INSUFFICIENT_PERMISSIONS")
		e.post("/oauth2/onetime/generate", auth(crm, "inappToken", strings.Repeat("A", 43)), body).wantError(t, 403, "CH_INSUFFICIENT_PERMISSIONS")
		e.post("/oauth2/onetime/generate", auth(crm), body).wantError(t, 403, "CH_INSUFFICIENT_PERMISSIONS")
		e.post("/oauth2/onetime/generate", auth(crm, "inappToken", "bad"), body).wantError(t, 417, "CID_NON_EXISTED_TOKEN")
		e.post("/oauth2/onetime/generate", auth(badCRM, "inappToken", annaEx.str(t, "inappToken")), body).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		e.post("/oauth2/onetime/generate", auth(crm), `{"userId":99}`).wantError(t, 404, "NOT_FOUND")
	})
}

// 6.1.5: a new OT token for every login.
func TestConformance_6_1_5_NewTokenPerLogin(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		e.user("anna@example.com", false)
		seen := map[string]bool{}
		for range 3 {
			lr, err := e.svc.Login(ctx, "anna@example.com", "long enough", false)
			if err != nil {
				t.Fatal(err)
			}
			if seen[lr.LoginToken] {
				t.Fatal("a login reused an earlier one-time token")
			}
			seen[lr.LoginToken] = true
			e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+lr.LoginToken+`"}`).wantKeys(t, "userId", "inappToken")
		}
	})
}

// 6.1.6: different users get different tokens, each exchanging to its user.
func TestConformance_6_1_6_DifferentUsersDifferentTokens(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		anna, bob := e.user("anna@example.com", false), e.user("bob@example.com", false)
		if anna.LoginToken == bob.LoginToken {
			t.Fatal("two users got the same one-time token")
		}
		for _, u := range []identity.LoginResult{anna, bob} {
			r := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+u.LoginToken+`"}`)
			if r.userID(t) != u.User.CTIDUserID {
				t.Errorf("token of %s exchanged to userId %d, want %d", u.User.Email, r.userID(t), u.User.CTIDUserID)
			}
		}
	})
}

// 6.1.7: an OT token older than one minute fails the exchange (59 s ok,
// 61 s → 410).
func TestConformance_6_1_7_ExpiredOneTimeToken(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		early, late := e.user("early@example.com", false), e.user("late@example.com", false)
		e.clk.Advance(59 * time.Second)
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+early.LoginToken+`"}`).wantKeys(t, "userId", "inappToken")
		e.clk.Advance(2 * time.Second)
		e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+late.LoginToken+`"}`).wantError(t, 410, "CID_TOKEN_EXPIRED")
	})
}

// Fifty cTrader calls exchanging one token at once: exactly one 200.
func TestParallelExchangeOfOneToken(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		u := e.user("race@example.com", true)
		const n = 50
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth2/onetime/authorize?crmApiToken="+crm,
					strings.NewReader(`{"code":"`+u.LoginToken+`"}`))
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				res.Body.Close()
				statuses <- res.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		if diff := cmp.Diff(map[int]int{200: 1, 404: n - 1}, count); diff != "" {
			t.Fatalf("statuses (-want +got):\n%s", diff)
		}
	})
}

func TestLogout(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		u := e.user("anna@example.com", true)
		ex := e.post("/oauth2/onetime/authorize", auth(crm), `{"code":"`+u.LoginToken+`"}`)
		access := ex.str(t, "accessToken")
		uid := fmt.Sprint(u.User.CTIDUserID)
		r := e.post("/oauth2/logout", auth(crm, "userId", uid, "accessToken", access), "")
		if r.status != 200 || r.raw != "" {
			t.Fatalf("logout = %d %q, want 200 with no body", r.status, r.raw)
		}
		e.post("/oauth2/authorize", auth(crm), `{"accessToken":"`+access+`"}`).wantError(t, 404, "NOT_FOUND")
		e.post("/oauth2/onetime/generate", auth(crm, "inappToken", ex.str(t, "inappToken")), `{"userId":`+uid+`}`).
			wantError(t, 403, "CH_INSUFFICIENT_PERMISSIONS")
		e.post("/oauth2/logout", auth(crm), "").wantError(t, 400, "MISSING_REQUIRED_PARAMETER")
		e.post("/oauth2/logout", auth(crm, "userId", "abc"), "").wantError(t, 400, "INVALID_REQUEST")
		e.post("/oauth2/logout", auth(crm, "userId", "77"), "").wantError(t, 404, "NOT_FOUND")
		e.post("/oauth2/logout", auth(badCRM, "userId", uid), "").wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
	})
}

// TestBadRequests: malformed JSON, missing fields, wrong types, oversized
// bodies and a missing crmApiToken, on every endpoint that takes a body.
func TestBadRequests(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		crm := e.crmToken()
		big := `{"code":"` + strings.Repeat("x", 20<<10) + `"}`
		tests := []struct {
			name   string
			path   string
			query  url.Values
			body   string
			status int
			code   string
		}{
			{"crmApiToken malformed JSON", "/oauth2/crmApiToken", nil, `{"password":`, 400, "INVALID_REQUEST"},
			{"crmApiToken password not a string", "/oauth2/crmApiToken", nil, `{"password":123}`, 400, "INVALID_REQUEST"},
			{"crmApiToken empty body", "/oauth2/crmApiToken", nil, ``, 400, "INVALID_REQUEST"},
			{"crmApiToken array body", "/oauth2/crmApiToken", nil, `[]`, 400, "INVALID_REQUEST"},
			{"crmApiToken oversized", "/oauth2/crmApiToken", nil, big, 413, "PAYLOAD_TOO_LARGE"},
			{"authorize missing crmApiToken", "/oauth2/onetime/authorize", nil, `{"code":"x"}`, 400, "MISSING_REQUIRED_PARAMETER"},
			{"authorize malformed JSON", "/oauth2/onetime/authorize", auth(crm), `{code:1}`, 400, "INVALID_REQUEST"},
			{"authorize missing code", "/oauth2/onetime/authorize", auth(crm), `{"other":"x"}`, 400, "MISSING_REQUIRED_PARAMETER"},
			{"authorize code not a string", "/oauth2/onetime/authorize", auth(crm), `{"code":42}`, 400, "INVALID_REQUEST"},
			{"authorize trailing data", "/oauth2/onetime/authorize", auth(crm), `{"code":"a"} {}`, 400, "INVALID_REQUEST"},
			{"authorize oversized", "/oauth2/onetime/authorize", auth(crm), big, 413, "PAYLOAD_TOO_LARGE"},
			{"re-login accessToken not a string", "/oauth2/authorize", auth(crm), `{"accessToken":true}`, 400, "INVALID_REQUEST"},
			{"generate missing userId", "/oauth2/onetime/generate", auth(crm), `{}`, 400, "MISSING_REQUIRED_PARAMETER"},
			{"generate userId as string", "/oauth2/onetime/generate", auth(crm), `{"userId":"10345533"}`, 400, "INVALID_REQUEST"},
			{"generate userId fractional", "/oauth2/onetime/generate", auth(crm), `{"userId":1.5}`, 400, "INVALID_REQUEST"},
			{"generate userId null", "/oauth2/onetime/generate", auth(crm), `{"userId":null}`, 400, "MISSING_REQUIRED_PARAMETER"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e.post(tc.path, tc.query, tc.body).wantError(t, tc.status, tc.code)
			})
		}
		t.Run("not JSON content type", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth2/crmApiToken", strings.NewReader("password=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("status %d, content type %q; want 400 JSON", res.StatusCode, res.Header.Get("Content-Type"))
			}
		})
	})
}

func TestBasePathAllowlistAndRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		e := newEnv(t, db, ctraderapi.Options{BasePath: "/cid", PasswordBurst: 2, PasswordEvery: time.Hour})
		e.crmToken() // served under /cid/oauth2/...
		e.post("/oauth2/crmApiToken", nil, `{"password":"wrong password"}`).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		e.post("/oauth2/crmApiToken", nil, `{"password":"wrong password"}`).wantError(t, 429, "REQUEST_FREQUENCY_EXCEEDED")

		far := newEnv(t, db, ctraderapi.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		far.post("/oauth2/crmApiToken", nil, `{"password":"`+identitytest.CRMPassword+`"}`).wantError(t, 403, "CH_CLIENT_AUTH_FAILURE")
		near := newEnv(t, db, ctraderapi.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		near.crmToken()
	}, identity.Schema)
	if _, err := ctraderapi.New(nil, ctraderapi.Options{BasePath: "cid/"}); err == nil {
		t.Error("a base path without a leading slash was accepted")
	}
}
