package cashierpages_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

var (
	ctx = context.Background()
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

// The trading accounts of the unit tests: Alice has a USD and a EUR
// account, Bob one USD account.
const (
	aliceUSD = int64(8673590)
	aliceEUR = int64(8673591)
	bobUSD   = int64(8673592)
)

// site is the screens on a test server with real identity (SQLite, fake
// clock) and fake funding; success is the app's success URL.
type site struct {
	t       *testing.T
	url     string
	svc     *identity.Service
	clk     *clock.Fake
	fund    *fakeFunding
	alice   identity.User
	bob     identity.User
	success string
	client  *http.Client
	reads   reads
}

// reads counts what the screens read to resolve sessions and profiles.
type reads struct {
	sessions, profiles atomic.Int64
}

// countingIdentity is the real identity service, counting session reads.
type countingIdentity struct {
	*identity.Service
	reads *reads
}

func (c *countingIdentity) Session(ctx context.Context, token string) (identity.CashierSession, error) {
	c.reads.sessions.Add(1)
	return c.Service.Session(ctx, token)
}

// countingProfiles gives everyone the same profile, counting reads.
type countingProfiles struct {
	profile cashierpages.Profile
	reads   *reads
}

func (c countingProfiles) Profile(context.Context, string) (cashierpages.Profile, error) {
	c.reads.profiles.Add(1)
	return c.profile, nil
}

func newSite(t *testing.T, mod ...func(*cashierpages.Options)) *site {
	t.Helper()
	db := dbtest.Open(t, sqlstore.SQLite, identity.Schema)
	svc, clk, _ := identitytest.NewService(t, db, identity.Config{DefaultLanguage: "en"})
	mux := http.NewServeMux()
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(mux))
	t.Cleanup(srv.Close)
	s := &site{t: t, url: srv.URL, svc: svc, clk: clk, fund: newFakeFunding(srv.URL + "/hosted"), success: "https://app.example/callback/success",
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var err error
	for _, u := range []struct {
		email  string
		logins []int64
		cur    []string
		into   *identity.User
	}{
		{"alice@example.com", []int64{aliceUSD, aliceEUR}, []string{"USD", "EUR"}, &s.alice},
		{"bob@example.com", []int64{bobUSD}, []string{"USD"}, &s.bob},
	} {
		if *u.into, err = svc.CreateUser(ctx, identity.NewUser{Email: u.email, Password: "long enough", Language: "en"}); err != nil {
			t.Fatal(err)
		}
		for i, login := range u.logins {
			if _, err := svc.LinkAccount(ctx, identity.NewAccount{UserID: u.into.ID, Login: login, Environment: identity.Demo, Currency: u.cur[i]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.fund.addAccount(s.alice.ID, aliceUSD, money.New(100000, usd), money.New(25000, usd))
	s.fund.addAccount(s.alice.ID, aliceEUR, money.New(50000, eur), money.New(50000, eur))
	s.fund.addAccount(s.bob.ID, bobUSD, money.New(1000, usd), money.New(1000, usd))
	opt := cashierpages.Options{PublicURL: srv.URL, SuccessURL: s.success, FrameAncestors: []string{"https://app.ctrader.com"},
		SupportEmail: "support@broker.example", DefaultCountry: "DE", DefaultKYCLevel: 2, Clock: clk, Logger: slog.New(slog.DiscardHandler),
		Key: []byte("0123456789abcdef0123456789abcdef"), FormBurst: 1000}
	for _, m := range mod {
		m(&opt)
	}
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	ids := &countingIdentity{Service: svc, reads: &s.reads}
	profiles := countingProfiles{profile: cashierpages.Profile{Country: opt.DefaultCountry, KYCLevel: opt.DefaultKYCLevel}, reads: &s.reads}
	h, err := cashierpages.New(cashierpages.Deps{Identity: ids, Funding: s.fund, Renderer: r, Methods: payments.DefaultCatalog(), Profiles: profiles}, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/inapp/", h)
	mux.Handle("GET /static/", r.StaticHandler())
	return s
}

// token issues an in-app one-time token for a user and account.
func (s *site) token(u identity.User, login int64) string {
	s.t.Helper()
	tok, _, err := s.svc.IssueInAppToken(ctx, u.ID, login)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// page is a fetched response.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (s *site) get(path string) page {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil, nil)
}

func (s *site) post(path string, form url.Values) page {
	s.t.Helper()
	return s.do(http.MethodPost, path, form, nil)
}

func (s *site) do(method, path string, form url.Values, hdr http.Header) page {
	s.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = s.url + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(b)}
}

// follow fetches a page and follows its redirects on our server; it stops
// at a redirect elsewhere and returns it.
func (s *site) follow(p page) page {
	s.t.Helper()
	for range 10 {
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			return p
		}
		loc := p.location()
		if strings.HasPrefix(loc, "http") && !strings.HasPrefix(loc, s.url) {
			return p
		}
		p = s.get(loc)
	}
	s.t.Fatal("too many redirects")
	return p
}

// open opens the deposit or withdrawal screen with a fresh token as the app
// does, and returns the first page after the redirect.
func (s *site) open(screen string, u identity.User, login int64, extra string) page {
	s.t.Helper()
	first := s.get("/inapp/" + screen + "?token=" + url.QueryEscape(s.token(u, login)) + "&account=" + strconv.FormatInt(login, 10) + extra)
	if first.status != http.StatusOK && first.status != http.StatusSeeOther {
		s.t.Fatalf("opening %s answered %d:\n%s", screen, first.status, first.body)
	}
	return s.follow(first)
}

func (p page) must(t *testing.T, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; page:\n%s", p.status, status, p.body)
	}
	text := html.UnescapeString(p.body)
	for _, c := range contains {
		if !strings.Contains(p.body, c) && !strings.Contains(text, c) {
			t.Errorf("page lacks %q:\n%s", c, p.body)
		}
	}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden fields of the page's forms (the last value of
// a name wins).
func (p page) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(p.body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// form merges the page's hidden fields with the given fields.
func (p page) form(kv ...string) url.Values {
	v := p.hidden()
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// link returns the href of the link whose id is given.
func (p page) link(t *testing.T, id string) string {
	t.Helper()
	re := regexp.MustCompile(`href="([^"]+)"[^>]*id="` + regexp.QuoteMeta(id) + `"|id="` + regexp.QuoteMeta(id) + `"[^>]*href="([^"]+)"`)
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no link #%s in:\n%s", id, p.body)
	}
	return html.UnescapeString(m[1] + m[2])
}
