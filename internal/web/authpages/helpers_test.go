package authpages_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/web"
	"github.com/opencashier/cashier/internal/web/authpages"
)

var ctx = context.Background()

// site is the broker's screens on a test server, with a fake cTrader and a
// success URL served by a second server that records what it receives.
type site struct {
	t       *testing.T
	url     string
	svc     *identity.Service
	clk     *clock.Fake
	ct      *identitytest.CTrader
	box     *mail.Mailbox
	success *httptest.Server
	hits    chan url.Values
	client  *http.Client
	style   string // the CSP hash source of the pages' inline CSS
}

func newSite(t *testing.T, db *sqlstore.DB, opt authpages.Options) *site {
	t.Helper()
	svc, clk, ct := identitytest.NewService(t, db, identity.Config{DefaultLanguage: "en"})
	s := &site{t: t, svc: svc, clk: clk, ct: ct, box: mail.NewMailbox(0, clk), hits: make(chan url.Values, 10)}
	s.success = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits <- r.URL.Query()
		io.WriteString(w, "success page")
	}))
	t.Cleanup(s.success.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "en"})
	s.style = r.StyleSource()
	opt.SuccessURL = s.success.URL + "/callback/success?app=1"
	opt.PublicURL = srv.URL
	opt.Mailer = s.box
	if opt.Clock == nil {
		opt.Clock = clk
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := authpages.New(svc, r, opt)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/auth/", pages)
	mux.Handle("/account/", pages)
	mux.Handle("GET /static/", r.StaticHandler())
	jar, _ := cookiejar.New(nil)
	s.client = &http.Client{Jar: jar}
	return s
}

// page is a fetched page.
type page struct {
	status int
	url    string
	body   string
}

func (s *site) get(path string) page {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil)
}

func (s *site) post(path string, form url.Values) page {
	s.t.Helper()
	return s.do(http.MethodPost, path, form)
}

func (s *site) do(method, path string, form url.Values) page {
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
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, url: res.Request.URL.String(), body: string(b)}
}

// successHit returns the query the success URL received, failing if none.
func (s *site) successHit() url.Values {
	s.t.Helper()
	select {
	case q := <-s.hits:
		return q
	default:
		s.t.Fatal("the success URL was not reached")
		return nil
	}
}

func (p page) must(t *testing.T, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; page:\n%s", p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Errorf("page lacks %q:\n%s", c, p.body)
		}
	}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page.
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

var linkRe = regexp.MustCompile(`https?://[^\s"<]+`)
