package ctradersim_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

// fakeBroker implements the broker's /oauth2 endpoints the way OpenCashier
// will (spec §4): crmApiToken for a shared password, OT exchange, re-login
// with the accessToken, and in-app OT generation that checks inappToken.
type fakeBroker struct {
	srv *httptest.Server

	mu          sync.Mutex
	password    string
	crmTokens   map[string]bool
	issued      int
	relogins    int
	loginCodes  map[string]int64  // OT code of a finished login → userId
	accessToken map[string]int64  // accessToken → userId
	inapp       map[int64]string  // userId → the inappToken last issued
	calls       []string          // "path userId/code inappToken"
	generated   map[string]string // OT token → "userId"

	// screens, when set, serves the broker's HTML screens (/auth/login,
	// /inapp/...) instead of refusing them.
	screens http.Handler
}

func newFakeBroker(t *testing.T) *fakeBroker {
	b := &fakeBroker{password: "shared", crmTokens: map[string]bool{}, loginCodes: map[string]int64{},
		accessToken: map[string]int64{}, inapp: map[int64]string{}, generated: map[string]string{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *fakeBroker) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":"fake broker refused","code":%q}`, http.StatusText(status), code)
}

func (b *fakeBroker) serve(w http.ResponseWriter, r *http.Request) {
	if b.screens != nil && !strings.HasPrefix(r.URL.Path, "/oauth2/") {
		b.screens.ServeHTTP(w, r)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var in struct {
		Password    string `json:"password"`
		Code        string `json:"code"`
		AccessToken string `json:"accessToken"`
		UserID      int64  `json:"userId"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	q := r.URL.Query()
	call := []string{r.URL.Path}
	for _, part := range []string{in.Code, in.AccessToken, fmt.Sprint(in.UserID), q.Get("inappToken")} {
		if part != "" && part != "0" {
			call = append(call, part)
		}
	}
	b.calls = append(b.calls, strings.Join(call, " "))
	if r.URL.Path == "/oauth2/crmApiToken" {
		if in.Password != b.password {
			b.fail(w, 403, "CH_CLIENT_AUTH_FAILURE")
			return
		}
		b.issued++
		tok := fmt.Sprintf("crm-%d", b.issued)
		b.crmTokens[tok] = true
		fmt.Fprintf(w, `{"crmApiToken":%q}`, tok)
		return
	}
	if !b.crmTokens[q.Get("crmApiToken")] {
		b.fail(w, 403, "CH_CLIENT_AUTH_FAILURE")
		return
	}
	switch r.URL.Path {
	case "/oauth2/onetime/authorize":
		uid, ok := b.loginCodes[in.Code]
		if !ok {
			b.fail(w, 404, "")
			return
		}
		delete(b.loginCodes, in.Code)
		acc, inapp := fmt.Sprintf("acc-%d", uid), fmt.Sprintf("in-%d-1", uid)
		b.accessToken[acc], b.inapp[uid] = uid, inapp
		fmt.Fprintf(w, `{"userId":%d,"accessToken":%q,"inappToken":%q}`, uid, acc, inapp)
	case "/oauth2/authorize":
		uid, ok := b.accessToken[in.AccessToken]
		if !ok {
			b.fail(w, 404, "")
			return
		}
		b.relogins++
		inapp := fmt.Sprintf("in-%d-relogin-%d", uid, b.relogins)
		b.inapp[uid] = inapp
		fmt.Fprintf(w, `{"userId":"%d","inappToken":%q}`, uid, inapp) // userId as a string, as the old docs type it
	case "/oauth2/onetime/generate":
		if want := b.inapp[in.UserID]; want == "" || q.Get("inappToken") != want {
			b.fail(w, 400, "INVALID_INAPP_TOKEN")
			return
		}
		tok := fmt.Sprintf("ot-%d", len(b.generated)+1)
		b.generated[tok] = fmt.Sprint(in.UserID)
		fmt.Fprintf(w, `{"token":%q}`, tok)
	default:
		http.NotFound(w, r)
	}
}

// expectLogin makes code the OT token of a finished login of userID.
func (b *fakeBroker) expectLogin(code string, userID int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loginCodes[code] = userID
}

func (b *fakeBroker) revokeCRMTokens() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.crmTokens)
}

func (b *fakeBroker) revokeAccessTokens() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.accessToken)
}

func (b *fakeBroker) takeCalls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

var iframeSrc = regexp.MustCompile(`<iframe src="([^"]+)"`)

// frameURL extracts the URL the app opened in its frame.
func frameURL(t *testing.T, page string) *url.URL {
	t.Helper()
	m := iframeSrc.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no frame in the page:\n%s", page)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func form(kv ...string) (string, map[string]string) {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestFakeAppSSO(t *testing.T) {
	b := newFakeBroker(t)
	s := startSim(t, func(c *ctradersim.Config) {
		c.App = ctradersim.AppConfig{BrokerURL: b.srv.URL, CRMPassword: "shared"}
	})
	html := map[string]string{"Accept": "text/html"}

	status, page := s.call(t, "GET", "/app/", "", html)
	if status != 200 || !strings.Contains(page, "alice@example.com") || !strings.Contains(page, s.srv.URL()+"/app/success") {
		t.Fatalf("user list: %d\n%s", status, page)
	}

	// Log in: the frame opens the broker's login screen with the chosen parameters.
	status, page = s.call(t, "GET", "/app/login?lang=de&theme=dark&source=iOS&firstLogin=true", "", html)
	login := frameURL(t, page)
	if status != 200 || login.Host != strings.TrimPrefix(b.srv.URL, "http://") || login.Path != "/auth/login" ||
		login.RawQuery != "firstLogin=true&lang=de&source=iOS&theme=dark" {
		t.Fatalf("login frame %d %s", status, login)
	}
	// The broker redirects the frame to the success URL with the OT token.
	b.expectLogin("ot-login-1", 10000001)
	status, page = s.call(t, "GET", "/app/success?token=ot-login-1", "", html)
	if status != 200 || !strings.Contains(page, `window.top.location.replace("/app/10000001")`) {
		t.Fatalf("success page after login: %d\n%s", status, page)
	}
	if diff := cmp.Diff([]string{"/oauth2/crmApiToken", "/oauth2/onetime/authorize ot-login-1"}, b.takeCalls()); diff != "" {
		t.Errorf("broker calls for the login (-want +got):\n%s", diff)
	}
	st := s.srv.Sim().AppState()
	if len(st.Sessions) != 1 || st.Sessions[0].UserID != 10000001 || st.Sessions[0].AccessToken != "acc-10000001" || st.Sessions[0].InappToken != "in-10000001-1" {
		t.Fatalf("app sessions after login: %+v", st.Sessions)
	}

	status, page = s.call(t, "GET", "/app/10000001", "", html)
	if status != 200 || !strings.Contains(page, `data-balance="3000001">100.00<`) || !strings.Contains(page, "Restart app") {
		t.Fatalf("account page: %d\n%s", status, page)
	}

	// Deposit: an OT token from /oauth2/onetime/generate with the inappToken, then the cashier in the frame.
	body, hdr := form("op", "deposit:3000001", "lang", "fr", "theme", "dark", "source", "Android")
	status, page = s.call(t, "POST", "/app/10000001/open", body, hdr)
	cashier := frameURL(t, page)
	if status != 200 || cashier.Path != "/inapp/deposit" || cashier.RawQuery != "account=3000001&lang=fr&source=Android&theme=dark&token=ot-1" {
		t.Fatalf("cashier frame %d %s", status, cashier)
	}
	if diff := cmp.Diff([]string{"/oauth2/onetime/generate 10000001 in-10000001-1"}, b.takeCalls()); diff != "" {
		t.Errorf("broker calls for the deposit (-want +got):\n%s", diff)
	}

	// A crmApiToken the broker no longer accepts is obtained again once.
	b.revokeCRMTokens()
	body, hdr = form("op", "withdraw:3000001")
	status, page = s.call(t, "POST", "/app/10000001/open", body, hdr)
	if u := frameURL(t, page); status != 200 || u.Path != "/inapp/withdraw" || u.Query().Get("token") != "ot-2" || u.Query().Get("lang") != "fr" {
		t.Fatalf("withdraw after the crmApiToken was revoked: %d %s", status, u)
	}
	if diff := cmp.Diff([]string{"/oauth2/onetime/generate 10000001 in-10000001-1", "/oauth2/crmApiToken", "/oauth2/onetime/generate 10000001 in-10000001-1"}, b.takeCalls()); diff != "" {
		t.Errorf("broker calls (-want +got):\n%s", diff)
	}
	if n := s.srv.Sim().AppState().CrmAPITokenFetches; n != 2 {
		t.Errorf("crmApiToken fetched %d times, want 2", n)
	}

	// The cashier redirects to the success URL: the app returns to the account page.
	status, page = s.call(t, "GET", "/app/success?status=ok", "", map[string]string{"Accept": "text/html", "Cookie": "ctsim_next=/app/10000001"})
	if status != 200 || !strings.Contains(page, `window.top.location.replace("/app/10000001")`) {
		t.Errorf("success page after the cashier: %d\n%s", status, page)
	}

	// Restart: automatic re-login with the stored accessToken.
	req, _ := http.NewRequest("POST", s.srv.URL()+"/app/10000001/restart", nil)
	res, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || res.Header.Get("Location") != "/app/10000001" {
		t.Fatalf("restart: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	calls := b.takeCalls()
	if len(calls) != 1 || calls[0] != "/oauth2/authorize acc-10000001" {
		t.Errorf("broker calls for the restart: %q", calls)
	}
	ss := s.srv.Sim().AppState().Sessions[0]
	if ss.Relogins != 1 || ss.InappToken == "in-10000001-1" {
		t.Errorf("session after restart: %+v; want one re-login and the new inappToken", ss)
	}
	body, hdr = form("op", "deposit:3000001")
	if status, _ := s.call(t, "POST", "/app/10000001/open", body, hdr); status != 200 {
		t.Errorf("deposit with the inappToken from the re-login: %d", status)
	}
	if calls := b.takeCalls(); len(calls) != 1 || !strings.HasSuffix(calls[0], ss.InappToken) {
		t.Errorf("generate after restart sent %q, want inappToken %s", calls, ss.InappToken)
	}

	// A revoked accessToken ends the session.
	b.revokeAccessTokens()
	if status, page := s.call(t, "POST", "/app/10000001/restart", "", html); status != 502 || !strings.Contains(page, "Automatic re-login failed") {
		t.Errorf("restart with a revoked accessToken: %d", status)
	}
	if n := len(s.srv.Sim().AppState().Sessions); n != 0 {
		t.Errorf("%d sessions after the accessToken was refused, want 0", n)
	}
	body, hdr = form("op", "deposit:3000001")
	if status, page := s.call(t, "POST", "/app/10000001/open", body, hdr); status != 502 || !strings.Contains(page, "log in first") {
		t.Errorf("deposit without a session: %d", status)
	}

	// An OT token the broker does not know fails the login.
	if status, page := s.call(t, "GET", "/app/success?token=forged", "", html); status != 502 || !strings.Contains(page, "Login failed") {
		t.Errorf("login with an unknown OT token: %d", status)
	}
	// A cross-site form post is refused.
	body, hdr = form("op", "deposit:3000001")
	hdr["Sec-Fetch-Site"] = "cross-site"
	if status, _ := s.call(t, "POST", "/app/10000001/open", body, hdr); status != 403 {
		t.Errorf("cross-site POST: %d, want 403", status)
	}
	// Only the user's own accounts can be opened.
	body, hdr = form("op", "deposit:3000002")
	if status, _ := s.call(t, "POST", "/app/10000001/open", body, hdr); status != 400 {
		t.Errorf("deposit to another user's account: %d, want 400", status)
	}
}

func TestFakeAppHandoff(t *testing.T) {
	b := newFakeBroker(t)
	s := startSim(t, func(c *ctradersim.Config) {
		c.App = ctradersim.AppConfig{BrokerURL: b.srv.URL + "/crm", Handoff: true}
	})
	body, hdr := form("op", "withdraw:3000001", "lang", "en", "theme", "light", "source", "Web")
	status, page := s.call(t, "POST", "/app/10000001/open", body, hdr)
	cashier := frameURL(t, page)
	if status != 200 || cashier.Path != "/crm/inapp/withdraw" || cashier.Query().Get("account") != "3000001" {
		t.Fatalf("handoff cashier frame %d %s", status, cashier)
	}
	if calls := b.takeCalls(); len(calls) != 0 {
		t.Errorf("the app called the broker in handoff mode: %q", calls)
	}
	// The broker redeems the token from the URL once.
	redeem := `{"token":"` + cashier.Query().Get("token") + `"}`
	status, out := s.call(t, "POST", "/cid/ctid2/inAppToken/redeem?token={tok}", redeem, nil)
	if status != 200 || !strings.Contains(out, `"userId":10000001`) || !strings.Contains(out, `"tradingLogin":3000001`) {
		t.Errorf("redeem: %d %s", status, out)
	}
	if status, out := s.call(t, "POST", "/ctid2/inAppToken/redeem?token={tok}", redeem, nil); status != 404 || errorCode(out) != "TOKEN_NOT_FOUND" {
		t.Errorf("second redeem: %d %s", status, out)
	}
	if status, _ := s.call(t, "GET", "/app/login", "", map[string]string{"Accept": "text/html"}); status != 400 {
		t.Errorf("broker login in handoff mode: %d, want 400", status)
	}
}

func TestFakeAppSuccessURLs(t *testing.T) {
	for _, tt := range []struct {
		successURL string
		path       string // served as the success page
		warn       bool   // the app says it cannot see the frame arrive
	}{
		{"", "/app/success", false},
		{"http://sim.test:8081/callback/success", "/callback/success", false},
		{"https://crm.example.com/callback/success", "/callback/success", true},
		{"http://sim.test:8081/app/login", "/app/success", false}, // a route of the app is not taken over
		{"http://sim.test:8081/v2/{x}", "/app/success", false},
	} {
		t.Run(tt.successURL, func(t *testing.T) {
			s := startSim(t, func(c *ctradersim.Config) {
				c.App = ctradersim.AppConfig{BrokerURL: "http://127.0.0.1:1", SuccessURL: tt.successURL}
			})
			get := func(path string) (int, string) {
				req, _ := http.NewRequest("GET", s.srv.URL()+path, nil)
				req.Host = "sim.test:8081" // as a browser that reached the simulator under that name
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if status, page := get(tt.path); status != 200 || !strings.Contains(page, "Success URL reached") {
				t.Errorf("GET %s: %d", tt.path, status)
			}
			_, index := get("/app/")
			if got := strings.Contains(index, "not on this simulator's origin"); got != tt.warn {
				t.Errorf("warning shown %v, want %v", got, tt.warn)
			}
		})
	}
}
