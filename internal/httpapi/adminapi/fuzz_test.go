package adminapi_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/httpapi/adminapi"
	bt "github.com/opencashier/cashier/internal/web/backoffice/backofficetest"
)

// fuzzCalls are the admin API's calls; %s is the fuzzed id.
var fuzzCalls = []struct{ method, path string }{
	{"POST", "/login"}, {"POST", "/login/totp"}, {"POST", "/logout"}, {"GET", "/me"}, {"GET", "/queues"},
	{"POST", "/withdrawals/%s/approve"}, {"POST", "/withdrawals/%s/reject"}, {"POST", "/deposits/%s/release"},
	{"POST", "/deposits/%s/reject"}, {"POST", "/pushes/%s/resolve"}, {"POST", "/payments/%s/resolve"},
	{"GET", "/transactions"}, {"GET", "/transactions/%s"}, {"GET", "/dashboard"}, {"GET", "/users/%s/kyc"},
	{"PUT", "/users/%s/kyc"}, {"GET", "/reconcile/cases"}, {"POST", "/reconcile/cases/%s/resolve"}, {"GET", "/audit"},
	{"POST", "/audit/verify"},
}

// FuzzCalls sends every call of the admin API, as an admin or with a
// fuzzed token, with a fuzzed id, query and JSON body: no answer is a 5xx
// or a panic, every refusal is problem+json, and nothing is decided without
// a genuine session.
func FuzzCalls(f *testing.F) {
	fx := bt.NewFixture()
	h, err := adminapi.New(fx.Deps(), adminapi.Options{Clock: fx.Clock, Logger: slog.New(slog.DiscardHandler), LoginBurst: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	admin := fx.Staff.SessionFor(bt.AdminID).Token
	f.Add(uint8(5), "wd_small", `{}`, "", true)
	f.Add(uint8(6), "wd_small", `{"reason":"no"}`, "", true)
	f.Add(uint8(15), "usr_alice", `{"level":2,"country":"DE","reference":"case-1"}`, "", true)
	f.Add(uint8(15), "usr_alice", `{"level":2.5,"country":"D","reference":1}`, "", true)
	f.Add(uint8(11), "", "", "kind=deposit&min=1e3&currency=usd&cursor=%%%", true)
	f.Add(uint8(0), "", `{"email":"finance@broker.test","password":"`+bt.Password+`"}`, "", false)
	f.Add(uint8(1), "", `{"pendingToken":"x","code":"123456"}`, "", false)
	f.Add(uint8(18), "", "", "action=withdrawal.&before=-1&limit=99999", true)
	f.Fuzz(func(t *testing.T, which uint8, id, body, query string, genuine bool) {
		call := fuzzCalls[int(which)%len(fuzzCalls)]
		path := adminapi.Prefix + strings.Replace(call.path, "%s", url.PathEscape(id), 1)
		if q, err := url.ParseQuery(query); err == nil {
			path += "?" + q.Encode()
		}
		req := httptest.NewRequest(call.method, "http://127.0.0.1"+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		token := admin
		if !genuine {
			token = id + "tok"
		}
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q answered %d: %s", call.method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s answered %d as %q, want problem+json", call.method, path, w.Code, w.Header().Get("Content-Type"))
		}
		if !genuine && call.path != "/login" && call.path != "/login/totp" && w.Code < 300 {
			t.Fatalf("%s %s with a fuzzed token answered %d", call.method, path, w.Code)
		}
		if w.Code == http.StatusOK && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s answered 200 as %q", call.method, path, w.Header().Get("Content-Type"))
		}
	})
}
