package cashierpages

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencashier/cashier/internal/web"
)

//go:embed parts/parts.html
var partsFS embed.FS

// parts are the pieces every cashier page shares: the progress indicator
// at the top, the help link, self-refresh and script at the bottom. (The
// style is inline in the layout's head, see New.)
var parts = template.Must(template.ParseFS(partsFS, "parts/parts.html"))

// common is what every cashier page gets.
type common struct {
	S       string // the sealed session handle, for forms ("" on ticket pages)
	Prefix  string // where the steps live, for form actions
	Flow    string // "deposit" or "withdraw"
	Steps   []step
	HelpURL string
	JS      string
	// Refresh, when set, makes the page reload itself after that many
	// seconds without JavaScript (a <meta> in <noscript>).
	Refresh string
	// RedirectURL and RedirectAfter send the page to another URL by itself
	// (the success URL after a completed operation).
	RedirectURL   string
	RedirectAfter string
	// Canonical is the token-less URL of a first screen shown in answer to
	// the token URL: the script puts it in the address bar, and without
	// JavaScript the page goes there.
	Canonical string
	// Translated labels of the shared parts.
	ProgressLabel string
	HelpLabel     string
	BusyLabel     string
}

// Head is the top of a page's content: the progress indicator.
func (c common) Head() template.HTML { return c.part("head") }

// Foot is the bottom of a page's content: the help link, the refresh or
// redirect for browsers without JavaScript, and the script.
func (c common) Foot() template.HTML { return c.part("foot") }

func (c common) part(name string) template.HTML {
	var b bytes.Buffer
	if err := parts.ExecuteTemplate(&b, name, c); err != nil {
		return ""
	}
	return template.HTML(b.String()) // #nosec: produced by html/template
}

// labels translates the shared parts' labels.
func (c *common) labels(lang string) {
	tr := web.T(lang)
	c.ProgressLabel, c.HelpLabel, c.BusyLabel = tr.Get("cashier.progress"), tr.Get("cashier.help"), tr.Get("cashier.busy")
}

// step is one entry of the progress indicator.
type step struct {
	N     int
	Label string
	State string // "done", "current" or "todo"
}

var (
	depositSteps  = []string{"cashier.step.method", "cashier.step.amount", "cashier.step.confirm", "cashier.step.pay", "cashier.step.done"}
	withdrawSteps = []string{"cashier.step.method", "cashier.step.details", "cashier.step.confirm", "cashier.step.status"}
)

// common fills the shared page data; raw is the session handle ("" on
// ticket pages) and current the 1-based step, 0 for none.
func (s *screens) common(r *http.Request, p prefs, raw string, op operation, current int) common {
	c := common{Prefix: s.opt.Prefix, Flow: string(op), JS: s.assets.url("cashier.js"), S: raw,
		HelpURL: s.helpLink(r, p)}
	lang := s.r.Lang(p.Lang)
	c.labels(lang)
	if u, ok := r.Context().Value(canonicalKey{}).(string); ok {
		c.Canonical = u
	}
	labels := depositSteps
	if op == opWithdraw {
		labels = withdrawSteps
	}
	if current > 0 {
		tr := web.T(lang)
		for i, l := range labels {
			st := step{N: i + 1, Label: tr.Get(l), State: "todo"}
			switch {
			case i+1 < current:
				st.State = "done"
			case i+1 == current:
				st.State = "current"
			}
			c.Steps = append(c.Steps, st)
		}
	}
	return c
}

// helpLink is the help link of a page: the configured URL, or the built-in
// page with the way back to this one.
func (s *screens) helpLink(r *http.Request, p prefs) string {
	if s.opt.HelpURL != s.opt.Prefix+"/help" {
		return s.opt.HelpURL
	}
	q := url.Values{}
	if p.Lang != "" {
		q.Set("lang", p.Lang)
	}
	if p.Theme != "" {
		q.Set("theme", p.Theme)
	}
	if r != nil && r.Method == http.MethodGet {
		q.Set("back", r.URL.RequestURI())
	}
	return s.opt.HelpURL + "?" + q.Encode()
}

// render shows a page; errID and notice, if set, are message ids.
func (s *screens) render(w http.ResponseWriter, status int, page string, p prefs, errID, backURL string, data any) {
	s.renderPage(w, status, page, p, errID, "", backURL, data)
}

func (s *screens) renderPage(w http.ResponseWriter, status int, page string, p prefs, errText, notice, backURL string, data any) {
	pg := web.Page{Lang: s.r.Lang(p.Lang), Theme: p.Theme, CloseURL: s.opt.CloseURL, BackURL: backURL, Data: data}
	tr := web.T(pg.Lang)
	if errText != "" {
		if strings.HasPrefix(errText, "cashier.") || strings.HasPrefix(errText, "common.") {
			errText = tr.Get(errText)
		}
		pg.Error = errText
	}
	if notice != "" {
		pg.Notice = tr.Get(notice)
	}
	s.r.Render(w, status, page, pg)
}

// problemData is the error page.
type problemData struct {
	common
	Title   string
	Text    string
	Support string
}

// problem shows an error page with a status and a message id; retryURL,
// if set, offers a way back.
func (s *screens) problem(w http.ResponseWriter, r *http.Request, p prefs, status int, msgID, retryURL string) {
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	d := problemData{common: common{HelpURL: s.helpLink(r, p)},
		Title: tr.Get("cashier.error.title"), Text: tr.Get(msgID), Support: s.opt.SupportEmail}
	d.labels(lang)
	if status < 500 && status != http.StatusTooManyRequests {
		d.Title = tr.Get("cashier.error.title_client")
	}
	s.r.Render(w, status, "cashier_problem", web.Page{Lang: lang, Theme: p.Theme, CloseURL: s.opt.CloseURL, BackURL: retryURL, Data: d})
}

// internal logs an unexpected error and shows a generic page.
func (s *screens) internal(w http.ResponseWriter, r *http.Request, p prefs, what string, err error) {
	s.log.ErrorContext(r.Context(), "cashier: "+what, "err", err)
	s.problem(w, r, p, http.StatusInternalServerError, "common.error.generic", "")
}

// --- help ---

type helpData struct {
	common
	Support string
	Back    string
}

func (s *screens) help(w http.ResponseWriter, r *http.Request) {
	ps := prefsOf(r)
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.Contains(back, "\\") {
		back = ""
	}
	d := helpData{Support: s.opt.SupportEmail, Back: back}
	d.labels(s.r.Lang(ps.Lang))
	s.render(w, http.StatusOK, "cashier_help", ps, "", back, d)
}
