package backoffice

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/web"
)

//go:embed parts/parts.html
var partsFS embed.FS

// parts are the pieces every signed-in page shares: the navigation with
// the member and the sign-out button, and the tabs of the work queues.
var parts = template.Must(template.ParseFS(partsFS, "parts/parts.html"))

// lang is the language of the back office: its texts are English.
const lang = "en"

// navItem is one entry of the navigation.
type navItem struct {
	ID     string
	Label  string
	URL    string
	Active bool
}

// chrome is what every signed-in page gets: the navigation, the member
// and the session's CSRF token for its forms.
type chrome struct {
	Prefix  string
	CSRF    string
	Who     string
	Role    string
	Nav     []navItem
	Tabs    []navItem // the queues' tabs, on queue pages
	Section string
}

// NavHTML is the navigation bar.
func (c chrome) NavHTML() template.HTML { return c.part("nav") }

// TabsHTML is the queues' tabs.
func (c chrome) TabsHTML() template.HTML { return c.part("tabs") }

// CSRFField is the hidden field with the session's CSRF token.
func (c chrome) CSRFField() template.HTML { return c.part("csrf") }

func (c chrome) part(name string) template.HTML {
	var b bytes.Buffer
	if err := parts.ExecuteTemplate(&b, name, c); err != nil {
		return ""
	}
	return template.HTML(b.String()) // #nosec G203 -- produced by html/template
}

// section is an entry of the navigation and what it needs.
type section struct {
	id, label, path string
	perm            Permission
	available       func(Deps) bool
}

var sections = []section{
	{"queues", "Work queues", "/queues/withdrawals", PermView, func(d Deps) bool { return d.Funding != nil }},
	{"users", "Users", "/users", PermUsersView, func(d Deps) bool { return d.Users != nil }},
	{"transactions", "Transactions", "/transactions", PermView, func(d Deps) bool { return d.Reports != nil }},
	{"dashboard", "Dashboard", "/dashboard", PermView, func(d Deps) bool { return d.Reports != nil }},
	{"rules", "Rules & limits", "/rules", PermView, func(d Deps) bool { return d.Compliance != nil }},
	{"reconcile", "Reconciliation", "/reconcile", PermView, func(d Deps) bool { return d.Reconcile != nil }},
	{"audit", "Audit trail", "/audit", PermAuditView, func(d Deps) bool { return d.Audit != nil }},
	{"staff", "Staff", "/staff", PermStaffManage, func(Deps) bool { return true }},
}

var queueTabs = []section{
	{"withdrawals", "Withdrawals", "/queues/withdrawals", PermView, func(d Deps) bool { return d.Funding != nil }},
	{"pushes", "Pushes in doubt", "/queues/pushes", PermView, func(d Deps) bool { return d.Pushes != nil }},
	{"payments", "Payment reviews", "/queues/payments", PermView, func(d Deps) bool { return d.Payments != nil }},
	{"deposits", "Held deposits", "/queues/deposits", PermView, func(d Deps) bool { return d.Funding != nil }},
	{"flagged", "Flagged", "/queues/flagged", PermView, func(d Deps) bool { return d.Funding != nil }},
}

// chrome builds the shared page data; section is the navigation entry to
// mark, tab the queue tab ("" on other pages).
func (s *server) chrome(c *call, section, tab string) chrome {
	ch := chrome{Prefix: s.opt.Prefix, CSRF: c.sess.CSRF, Who: c.sess.Member.Email, Role: c.sess.Member.Role, Section: section}
	if n := c.sess.Member.Name; n != "" {
		ch.Who = n + " · " + c.sess.Member.Email
	}
	for _, sec := range sections {
		if sec.available(s.d) && c.can(sec.perm) {
			ch.Nav = append(ch.Nav, navItem{ID: sec.id, Label: sec.label, URL: s.opt.Prefix + sec.path, Active: sec.id == section})
		}
	}
	if tab != "" {
		for _, t := range queueTabs {
			if t.available(s.d) {
				ch.Tabs = append(ch.Tabs, navItem{ID: t.id, Label: t.label, URL: s.opt.Prefix + t.path, Active: t.id == tab})
			}
		}
	}
	return ch
}

// render shows a page in the shared layout; errText and notice are shown
// above the content.
func (s *server) render(w http.ResponseWriter, status int, page, errText, notice string, data any) {
	s.r.Render(w, status, page, web.Page{Lang: lang, Error: errText, Notice: notice, Data: data})
}

// problemData is the error page.
type problemData struct {
	chrome
	Title    string
	Text     string
	LoginURL string
}

// problem shows an error page; c is nil before sign-in.
func (s *server) problem(w http.ResponseWriter, c *call, status int, title, text string) {
	d := problemData{Title: title, Text: text}
	if c != nil {
		d.chrome = s.chrome(c, "", "")
	} else {
		d.LoginURL = s.opt.Prefix + "/login"
	}
	s.render(w, status, "bo_problem", "", "", d)
}

// forbidden answers 403 with what the role lacks.
func (s *server) forbidden(w http.ResponseWriter, c *call, p Permission) {
	s.problem(w, c, http.StatusForbidden, "Not allowed",
		"Your role ("+c.sess.Member.Role+") does not allow you to "+p.describe()+". Ask an administrator if you need to.")
}

// failed shows an error of a service: a page with its message for the
// errors a person can act on, a generic page (and a log line) otherwise.
func (s *server) failed(w http.ResponseWriter, r *http.Request, c *call, what string, err error) {
	status := httpx.StatusOf(err)
	switch {
	case status == http.StatusNotFound:
		s.problem(w, c, status, "Not found", errs.MessageOf(err))
	case status == http.StatusForbidden:
		s.problem(w, c, status, "Not allowed", errs.MessageOf(err))
	case status >= 500:
		s.log.ErrorContext(r.Context(), "backoffice: "+what, "err", err)
		s.problem(w, c, status, "Something went wrong", "The "+what+" failed. Please try again; if it keeps failing, tell the engineers (the error is in the server log).")
	default:
		s.problem(w, c, status, "That did not work", errs.MessageOf(err))
	}
}

// userError is the message of a failed action for the page it came from,
// and its status; unexpected errors are logged and shown generically.
func (s *server) userError(r *http.Request, what string, err error) (int, string) {
	status := httpx.StatusOf(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "backoffice: "+what, "err", err)
		return status, "The " + what + " failed. Please try again; if it keeps failing, tell the engineers (the error is in the server log)."
	}
	msg := errs.MessageOf(err)
	if msg == "" {
		msg = "The " + what + " was refused."
	}
	return status, msg
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.problem(w, nil, http.StatusNotFound, "Not found", "There is no page at this address.")
}

// describe says in a few words what a permission allows.
func (p Permission) describe() string {
	switch p {
	case PermView:
		return "see the work queues, transactions and dashboard"
	case PermExport:
		return "download CSV exports"
	case PermUsersView:
		return "look up users"
	case PermWithdrawalsDecide:
		return "approve or reject withdrawals"
	case PermPushesResolve:
		return "resolve balance pushes in doubt"
	case PermPaymentsReview:
		return "decide payments flagged for review or clear flags"
	case PermHoldsDecide:
		return "release or reject held deposits"
	case PermKYCSet:
		return "set a user's KYC status"
	case PermRulesEdit:
		return "edit limits and fraud rules"
	case PermReconcile:
		return "run reconciliation or resolve its cases"
	case PermAuditView:
		return "search or verify the audit trail"
	case PermStaffManage:
		return "manage staff members"
	}
	return "do this (" + string(p) + ")"
}

// --- formatting ---

// amount formats money for people.
func amount(a money.Amount) string {
	if a.Currency().Code == "" {
		return ""
	}
	return a.Display(lang)
}

// when formats an instant in UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// whenSec formats an instant in UTC, to the second.
func whenSec(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// age says how long ago t was, e.g. "3 d 4 h", "2 h 5 min", "40 s".
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d >= 24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + " d " + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + " h"
	case d >= time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + " min"
	case d >= time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/time.Second)) + " s"
}

// words turns a machine name ("payment_review") into words.
func words(s string) string { return strings.ReplaceAll(s, "_", " ") }

// localPath reports whether next is a path inside the back office that a
// redirect may go to.
func (s *server) localPath(next string) bool {
	if !strings.HasPrefix(next, s.opt.Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return false
	}
	u, err := url.Parse(next)
	return err == nil && u.Host == "" && u.Scheme == "" && !strings.Contains(u.Path, "//") && !strings.Contains(u.Path, "/../")
}

// redirect answers a form with 303 See Other.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// done sends the browser back to a page with a notice code (PRG): the
// page shows the notice's fixed text for the code, never text from the
// address.
func (s *server) done(w http.ResponseWriter, r *http.Request, path, code, id string) {
	q := url.Values{"done": {code}}
	if id != "" {
		q.Set("id", id)
	}
	redirect(w, r, s.opt.Prefix+path+"?"+q.Encode())
}

// notices are the fixed texts of done's codes; %s is the id.
var notices = map[string]string{
	"approved":         "Withdrawal %s approved; the payout is on its way.",
	"first_approval":   "First approval of withdrawal %s recorded. It needs a second approver: another person must approve it too.",
	"rejected":         "Withdrawal %s rejected; the money goes back to the trading account.",
	"released":         "Deposit %s released; it is credited to the trading account.",
	"deposit_rejected": "Deposit %s rejected.",
	"cleared":          "The flag of %s is cleared.",
	"push_applied":     "Push %s confirmed as applied.",
	"push_not_applied": "Push %s confirmed as not applied.",
	"payment_resolved": "Payment %s resolved.",
	"kyc_set":          "KYC status of %s saved.",
	"rule_saved":       "Rule %s saved.",
	"limit_saved":      "Limit %s saved.",
	"case_resolved":    "Case %s resolved.",
	"run_done":         "Reconciliation run %s finished.",
	"staff_added":      "Staff member %s added. They sign in with the password you gave them and enrol an authenticator at their first login.",
	"role_changed":     "Role of %s changed.",
	"staff_disabled":   "Staff member %s disabled; their sessions are closed.",
	"staff_enabled":    "Staff member %s may sign in again (a lockout is lifted too).",
	"totp_reset":       "Authenticator of %s reset; they enrol a new one at their next login.",
}

// notice is the text for the done code of the request, if any.
func notice(r *http.Request) string {
	q := r.URL.Query()
	text, ok := notices[q.Get("done")]
	if !ok {
		return ""
	}
	id := q.Get("id")
	if len(id) > 80 {
		id = id[:80]
	}
	return strings.Replace(text, "%s", id, 1)
}

// pathEscape escapes an id for a path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
