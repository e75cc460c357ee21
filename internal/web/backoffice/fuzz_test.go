package backoffice_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fuzzMarker ends every fuzzed value: it must never reach a page or a
// header as it is.
const fuzzMarker = `<x-fuzz a="'">`

// fuzzActions are the back office's forms; %s is the fuzzed id.
var fuzzActions = []string{"/queues/withdrawals/%s/approve", "/queues/withdrawals/%s/reject", "/queues/deposits/%s/release",
	"/queues/deposits/%s/reject", "/queues/flagged/%s/clear", "/queues/pushes/%s/resolve", "/queues/payments/%s/resolve",
	"/users/%s/kyc", "/rules/%s", "/limits", "/reconcile/run", "/reconcile/cases/%s/resolve", "/audit/verify", "/staff",
	"/staff/%s/role", "/staff/%s/disable", "/staff/%s/enable", "/staff/%s/reset-totp", "/login", "/login/totp"}

// fuzzPages are the back office's pages; %s is the fuzzed id.
var fuzzPages = []string{"/", "/queues/withdrawals", "/queues/pushes", "/queues/pushes/%s", "/queues/payments", "/queues/payments/%s",
	"/queues/deposits", "/queues/flagged", "/users", "/users/%s", "/transactions", "/transactions.csv", "/transactions/%s",
	"/dashboard", "/rules", "/reconcile", "/audit", "/staff", "/login", "/login/totp", "/%s"}

// FuzzScreens requests every page and form of the back office, signed in
// as an admin with the session's genuine CSRF token (or a fuzzed one),
// with a fuzzed id in the path and a fuzzed value in every query and form
// field: no answer is a 5xx, no fuzzed value reaches a page or a header
// unescaped, and no redirect leaves the back office.
func FuzzScreens(f *testing.F) {
	s := newSite(f)
	sess := s.staff.SessionFor(adminID)
	f.Add(uint8(0), "wd_small", "approve", true)
	f.Add(uint8(3), "dep_pushed:credit", "yes", true)
	f.Add(uint8(7), "usr_alice", "2", true)
	f.Add(uint8(8), "velocity", "1h", true)
	f.Add(uint8(9), "", "10000.00 USD", true)
	f.Add(uint8(13), "stf_viewer", "support", false)
	f.Add(uint8(10), "../../x", "2026-13-45", true)
	f.Add(uint8(12), "rcc_1", "1e3", true)
	f.Fuzz(func(t *testing.T, which uint8, id, value string, genuine bool) {
		mark := func(v string) string { return v + fuzzMarker }
		q := url.Values{}
		for _, k := range []string{"q", "user", "login", "kind", "status", "method", "from", "to", "currency", "min", "max", "cursor",
			"actor", "action", "subject", "text", "before", "m", "done", "id", "reason", "note", "applied", "to", "level", "country",
			"count", "window", "amounts", "direction", "per_day", "per_month", "count_day", "count_month", "email", "name", "role",
			"password", "enabled", "code"} {
			q.Set(k, mark(value))
		}
		q.Set("next", value)
		csrf := mark(value)
		if genuine {
			csrf = sess.CSRF
		}
		esc := url.PathEscape(mark(id))
		var req *http.Request
		if which%2 == 0 {
			path := "/backoffice" + strings.Replace(fuzzPages[int(which/2)%len(fuzzPages)], "%s", esc, 1)
			req = httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path+"?"+q.Encode(), nil)
		} else {
			q.Set("csrf", csrf)
			path := "/backoffice" + strings.Replace(fuzzActions[int(which/2)%len(fuzzActions)], "%s", esc, 1)
			req = httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+path, strings.NewReader(q.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.AddCookie(&http.Cookie{Name: "bo_session", Value: sess.Token})
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s answered %d:\n%s", req.Method, req.URL, w.Code, excerpt(w.Body.String()))
		}
		if strings.Contains(w.Body.String(), fuzzMarker) {
			t.Fatalf("%s %s shows a value unescaped:\n%s", req.Method, req.URL, excerpt(w.Body.String()))
		}
		for k, vs := range w.Header() {
			for _, v := range vs {
				if strings.Contains(v, fuzzMarker) {
					t.Fatalf("%s %s: header %s carries a value unescaped: %q", req.Method, req.URL, k, v)
				}
			}
		}
		if loc := w.Header().Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, "/backoffice/") || strings.HasPrefix(loc, "//") {
				t.Fatalf("%s %s redirects off the back office, to %q", req.Method, req.URL, loc)
			}
		}
	})
}
