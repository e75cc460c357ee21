package adminapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/httpapi/adminapi"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
	bt "github.com/opencashier/cashier/internal/web/backoffice/backofficetest"
)

// api is the admin API over the back office's fixture, on a test server
// whose every exchange is checked against openapi.yaml.
type api struct {
	t   *testing.T
	url string
	f   *bt.Fixture
}

func newAPI(t *testing.T) *api {
	t.Helper()
	f := bt.NewFixture()
	h, err := adminapi.New(f.Deps(), adminapi.Options{Clock: f.Clock, Logger: slog.New(slog.DiscardHandler), LoginBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(h))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, f: f}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, into any) {
	t.Helper()
	if err := json.Unmarshal(a.body, into); err != nil {
		t.Fatalf("%v in %s", err, a.body)
	}
}

// problem is the answer's problem+json detail.
func (a answer) problem(t *testing.T) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want problem+json: %s", ct, a.body)
	}
	var p struct{ Detail string }
	a.json(t, &p)
	return p.Detail
}

// call sends a request with the bearer token (if any) and a JSON body (if
// any).
func (a *api) call(method, path, token, body string) answer {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// as returns a session token of the member, opened in the fake.
func (a *api) as(memberID string) string { return a.f.Staff.SessionFor(memberID).Token }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Password, then TOTP, gives a bearer session; /me shows the role's
// permissions; logout ends it.
func TestLoginThenBearerSession(t *testing.T) {
	a := newAPI(t)
	p := a.call("POST", "/api/admin/v1/login", "", mustJSON(map[string]string{"email": "finance@broker.test", "password": bt.Password}))
	if p.status != http.StatusOK {
		t.Fatalf("login: %d %s", p.status, p.body)
	}
	var pending adminapi.PendingJSON
	p.json(t, &pending)
	if pending.PendingToken == "" || pending.Enrolment != nil {
		t.Fatalf("pending %+v: want a token and no enrolment for an enrolled member", pending)
	}
	code, err := totp.GenerateCode(a.f.Staff.SecretOf(bt.FinanceID), a.f.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if bad := a.call("POST", "/api/admin/v1/login/totp", "", mustJSON(map[string]string{"pendingToken": pending.PendingToken, "code": "abcdef"})); bad.status != http.StatusUnauthorized {
		t.Errorf("wrong code: %d", bad.status)
	}
	s := a.call("POST", "/api/admin/v1/login/totp", "", mustJSON(map[string]string{"pendingToken": pending.PendingToken, "code": code}))
	var sess adminapi.SessionJSON
	s.json(t, &sess)
	if s.status != http.StatusOK || sess.Token == "" || sess.Member.Role != "finance" {
		t.Fatalf("totp: %d %s", s.status, s.body)
	}
	me := a.call("GET", "/api/admin/v1/me", sess.Token, "")
	var m adminapi.MeJSON
	me.json(t, &m)
	want := []string{"view", "export", "users.view", "withdrawals.decide", "pushes.resolve", "payments.review", "reconcile"}
	if diff := cmp.Diff(want, m.Permissions); diff != "" {
		t.Errorf("finance's permissions (-want +got):\n%s", diff)
	}
	if out := a.call("POST", "/api/admin/v1/logout", sess.Token, ""); out.status != http.StatusNoContent {
		t.Errorf("logout: %d", out.status)
	}
	after := a.call("GET", "/api/admin/v1/me", sess.Token, "")
	if after.status != http.StatusUnauthorized || !strings.HasPrefix(after.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("after logout: %d %q", after.status, after.header.Get("WWW-Authenticate"))
	}
}

// The first login returns the secret to enrol; its code opens a session.
func TestFirstLoginEnrols(t *testing.T) {
	a := newAPI(t)
	var pending adminapi.PendingJSON
	a.call("POST", "/api/admin/v1/login", "", mustJSON(map[string]string{"email": bt.NewcomerEmail, "password": bt.Password})).json(t, &pending)
	if pending.Enrolment == nil || pending.Enrolment.Secret == "" || !strings.HasPrefix(pending.Enrolment.OTPAuthURI, "otpauth://totp/") {
		t.Fatalf("no enrolment: %+v", pending)
	}
	code, err := totp.GenerateCode(pending.Enrolment.Secret, a.f.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s := a.call("POST", "/api/admin/v1/login/totp", "", mustJSON(map[string]string{"pendingToken": pending.PendingToken, "code": code})); s.status != http.StatusOK {
		t.Fatalf("totp: %d %s", s.status, s.body)
	}
	if !a.f.Staff.Member(bt.NewcomerID).TOTPEnrolled {
		t.Error("not enrolled")
	}
}

func TestAuthenticationFailures(t *testing.T) {
	a := newAPI(t)
	token := a.as(bt.FinanceID)
	for name, tc := range map[string]struct {
		header, detail string
	}{
		"no header":     {"", "Authorization: Bearer"},
		"basic scheme":  {"Basic Zm9vOmJhcg==", "Authorization: Bearer"},
		"unknown token": {"Bearer nope", "not valid"},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.url+"/api/admin/v1/queues", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			req.AddCookie(&http.Cookie{Name: "bo_session", Value: token}) // the screens' cookie is never read
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ans := answer{status: resp.StatusCode, header: resp.Header, body: b}
			if ans.status != http.StatusUnauthorized || !strings.Contains(ans.problem(t), tc.detail) {
				t.Errorf("%d %s", ans.status, b)
			}
		})
	}
	if ok := a.call("GET", "/api/admin/v1/queues", token, ""); ok.status != http.StatusOK {
		t.Fatalf("a good token: %d", ok.status)
	}
	a.f.Clock.Advance(31 * time.Minute)
	if exp := a.call("GET", "/api/admin/v1/queues", token, ""); exp.status != http.StatusUnauthorized || !strings.Contains(exp.problem(t), "expired") {
		t.Errorf("an expired session: %d %s", exp.status, exp.body)
	}
	if wrong := a.call("POST", "/api/admin/v1/login", "", mustJSON(map[string]string{"email": "finance@broker.test", "password": "nope"})); wrong.status != http.StatusUnauthorized ||
		wrong.problem(t) != "wrong e-mail address or password" {
		t.Errorf("wrong password: %d %s", wrong.status, wrong.body)
	}
}

// endpoint is one call of the API with the permission it needs.
type endpoint struct {
	method, path, body string
	perm               bo.Permission
	action             string // what the service must have been asked ("%s": the actor)
}

var endpoints = []endpoint{
	{method: "GET", path: "/api/admin/v1/queues", perm: bo.PermView},
	{method: "GET", path: "/api/admin/v1/transactions?kind=deposit", perm: bo.PermView},
	{method: "GET", path: "/api/admin/v1/transactions/wd_done", perm: bo.PermView},
	{method: "GET", path: "/api/admin/v1/dashboard", perm: bo.PermView},
	{method: "GET", path: "/api/admin/v1/reconcile/cases", perm: bo.PermView},
	{method: "GET", path: "/api/admin/v1/users/usr_alice/kyc", perm: bo.PermUsersView},
	{method: "GET", path: "/api/admin/v1/audit", perm: bo.PermAuditView},
	{method: "POST", path: "/api/admin/v1/audit/verify", perm: bo.PermAuditView, action: "verify"},
	{method: "POST", path: "/api/admin/v1/withdrawals/wd_small/approve", perm: bo.PermWithdrawalsDecide, action: "approve wd_small by %s"},
	{method: "POST", path: "/api/admin/v1/withdrawals/wd_rej/reject", body: `{"reason":"holder differs"}`, perm: bo.PermWithdrawalsDecide,
		action: "reject wd_rej by %s: holder differs"},
	{method: "POST", path: "/api/admin/v1/deposits/dep_held/release", body: `{"note":"card checked"}`, perm: bo.PermHoldsDecide, action: "release dep_held by %s: card checked"},
	{method: "POST", path: "/api/admin/v1/deposits/dep_held2/reject", body: `{"reason":"stolen card"}`, perm: bo.PermHoldsDecide, action: "reject-deposit dep_held2 by %s: stolen card"},
	{method: "POST", path: "/api/admin/v1/pushes/dep_pushed:credit/resolve", body: `{"applied":true,"note":"in the history"}`, perm: bo.PermPushesResolve,
		action: "resolve-push dep_pushed:credit applied=true by %s: in the history"},
	{method: "POST", path: "/api/admin/v1/payments/pay_review/resolve", body: `{"status":"declined","note":"underpaid"}`, perm: bo.PermPaymentsReview,
		action: "resolve-payment pay_review declined by %s: underpaid"},
	{method: "PUT", path: "/api/admin/v1/users/usr_bob/kyc", body: `{"level":2,"country":"gb","reference":"case 7"}`, perm: bo.PermKYCSet,
		action: "kyc usr_bob level 2 GB by %s: case 7"},
	{method: "POST", path: "/api/admin/v1/reconcile/cases/rcc_1/resolve", body: `{"note":"manual credit"}`, perm: bo.PermReconcile,
		action: "resolve-case rcc_1 by %s: manual credit"},
}

// Each role calls exactly what its permissions allow; the rest is 403 with
// the missing permission named, and the service is not asked.
func TestEachRoleMayCallWhatItsPermissionsAllow(t *testing.T) {
	for _, role := range bo.Roles {
		t.Run(role, func(t *testing.T) {
			a := newAPI(t)
			token := a.as(bt.RoleIDs[role])
			for _, e := range endpoints {
				allowed := slices.Contains(bt.RoleMatrix[role], e.perm)
				ans := a.call(e.method, e.path, token, e.body)
				switch {
				case allowed && ans.status != http.StatusOK:
					t.Errorf("%s %s %s: %d %s", role, e.method, e.path, ans.status, ans.body)
				case !allowed && ans.status != http.StatusForbidden:
					t.Errorf("%s %s %s: %d, want 403", role, e.method, e.path, ans.status)
				case !allowed && !strings.Contains(ans.problem(t), string(e.perm)):
					t.Errorf("%s %s %s: the 403 does not name %s: %s", role, e.method, e.path, e.perm, ans.body)
				}
				if e.action != "" {
					entry := strings.Replace(e.action, "%s", "staff:"+bt.RoleIDs[role], 1)
					if got := a.f.Acts.Has(entry); got != allowed {
						t.Errorf("%s %s %s: service asked %q = %v, want %v", role, e.method, e.path, entry, got, allowed)
					}
				}
			}
		})
	}
}

// Four-eyes over the API: the first approval is recorded, the same person
// again is refused with funding's message, another person completes it.
func TestFourEyes(t *testing.T) {
	a := newAPI(t)
	first, second := a.as(bt.FinanceID), a.as(bt.Finance2ID)
	var d adminapi.DecisionJSON
	a.call("POST", "/api/admin/v1/withdrawals/wd_big/approve", first, "").json(t, &d)
	if !d.NeedsSecondApproval || d.FirstApprovedBy != "staff:"+bt.FinanceID {
		t.Fatalf("first approval: %+v", d)
	}
	var q adminapi.QueuesJSON
	a.call("GET", "/api/admin/v1/queues", second, "").json(t, &q)
	i := slices.IndexFunc(q.Withdrawals, func(t adminapi.TaskJSON) bool { return t.ID == "wd_big" })
	if i < 0 || !q.Withdrawals[i].FourEyes || q.Withdrawals[i].FirstApprovedBy != "staff:"+bt.FinanceID {
		t.Errorf("the queue: %+v", q.Withdrawals)
	}
	again := a.call("POST", "/api/admin/v1/withdrawals/wd_big/approve", first, "")
	if again.status != http.StatusForbidden || !strings.Contains(again.problem(t), "the second approver must be another person") {
		t.Errorf("the same person again: %d %s", again.status, again.body)
	}
	a.call("POST", "/api/admin/v1/withdrawals/wd_big/approve", second, "").json(t, &d)
	if d.Status != "approved" || d.NeedsSecondApproval {
		t.Errorf("second approval: %+v", d)
	}
}

// Amounts are exact JSON numbers with their currency; the queues are
// sorted into their kinds; bad input is a 400 problem.
func TestShapesAndRefusals(t *testing.T) {
	a := newAPI(t)
	token := a.as(bt.AdminID)
	q := a.call("GET", "/api/admin/v1/queues", token, "")
	if !strings.Contains(string(q.body), `"amount":{"amount":25000.00,"currency":"USD"}`) {
		t.Errorf("amounts are not exact numbers: %s", q.body)
	}
	var queues adminapi.QueuesJSON
	q.json(t, &queues)
	counts := []int{len(queues.Withdrawals), len(queues.PushesInDoubt), len(queues.PaymentReviews), len(queues.HeldDeposits), len(queues.Flagged)}
	if diff := cmp.Diff([]int{3, 1, 1, 2, 1}, counts); diff != "" {
		t.Errorf("queue sizes (-want +got):\n%s", diff)
	}

	var page adminapi.TxPageJSON
	a.call("GET", "/api/admin/v1/transactions?q=alice@example.com&limit=1", token, "").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "wd_done" || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}
	var next adminapi.TxPageJSON
	a.call("GET", "/api/admin/v1/transactions?q=alice@example.com&limit=1&cursor="+page.Next, token, "").json(t, &next)
	if len(next.Items) != 1 || next.Items[0].ID != "dep_1" {
		t.Errorf("second page %+v", next)
	}
	var detail adminapi.TxDetailJSON
	a.call("GET", "/api/admin/v1/transactions/wd_done", token, "").json(t, &detail)
	if len(detail.Timeline) != 4 || detail.Timeline[2].Actor != "staff:"+bt.FinanceID || detail.Transaction.Credit.Amount != "199.00" {
		t.Errorf("detail %+v", detail)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		detail             string
	}{
		{"POST", "/api/admin/v1/withdrawals/wd_rej/reject", `{"reason":"  "}`, 400, `"reason" is required`},
		{"POST", "/api/admin/v1/withdrawals/wd_rej/reject", `{"why":"x"}`, 400, `unknown field "why"`},
		{"POST", "/api/admin/v1/withdrawals/wd_rej/reject", `{"reason":`, 400, "malformed JSON"},
		{"POST", "/api/admin/v1/withdrawals/wd_nope/approve", "", 404, "not waiting"},
		{"GET", "/api/admin/v1/transactions?min=10", "", 400, "currency of the amount range"},
		{"GET", "/api/admin/v1/transactions?limit=0", "", 400, "limit"},
		{"GET", "/api/admin/v1/transactions/wd_nope", "", 404, "no deposit or withdrawal"},
		{"PUT", "/api/admin/v1/users/usr_alice/kyc", `{"level":2,"country":"DE"}`, 400, "reference"},
		{"PUT", "/api/admin/v1/users/usr_nobody/kyc", `{"level":2,"country":"DE","reference":"x"}`, 404, "not found"},
		{"POST", "/api/admin/v1/pushes/dep_pushed:credit/resolve", `{"note":"x"}`, 400, "applied"},
		{"POST", "/api/admin/v1/reconcile/cases/rcc_nope/resolve", `{"note":"x"}`, 404, "no such case"},
		{"GET", "/api/admin/v1/dashboard?from=2026-05-04&to=2026-05-01", "", 400, "from must not be after to"},
		{"GET", "/api/admin/v1/reconcile/cases?status=maybe", "", 400, "open or resolved"},
	} {
		ans := a.call(tc.method, tc.path, token, tc.body)
		if ans.status != tc.status || !strings.Contains(ans.problem(t), tc.detail) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tc.method, tc.path, tc.body, ans.status, ans.body, tc.status, tc.detail)
		}
	}
}

func TestKYCDashboardCasesAudit(t *testing.T) {
	a := newAPI(t)
	token := a.as(bt.AdminID)
	var k adminapi.KYCJSON
	a.call("PUT", "/api/admin/v1/users/usr_alice/kyc", token, `{"level":3,"country":"at","reference":"video call"}`).json(t, &k)
	if k.Level != 3 || k.Country != "AT" || k.Source != "staff" || k.UpdatedBy != "staff:"+bt.AdminID || !k.Stored {
		t.Errorf("after PUT: %+v", k)
	}
	var db adminapi.DashboardJSON
	a.call("GET", "/api/admin/v1/dashboard?from=2026-04-01&to=2026-04-30", token, "").json(t, &db)
	if db.From != "2026-04-01T00:00:00Z" || db.To != "2026-05-01T00:00:00Z" || len(db.Charts) != 4 || len(db.Figures) != 4 || db.Charts[0].Series[0].Points[0].Value != "9100.00" {
		t.Errorf("dashboard %+v", db)
	}
	var cases struct{ Cases []adminapi.CaseJSON }
	a.call("GET", "/api/admin/v1/reconcile/cases", token, "").json(t, &cases)
	if len(cases.Cases) != 1 || string(cases.Cases[0].Evidence) != `{"ledger":"1097.20","platform":"1000.00"}` {
		t.Errorf("cases %+v", cases)
	}
	var c adminapi.CaseJSON
	a.call("POST", "/api/admin/v1/reconcile/cases/rcc_1/resolve", token, `{"note":"found the manual credit"}`).json(t, &c)
	if c.Status != "resolved" || c.ResolvedBy != "staff:"+bt.AdminID {
		t.Errorf("resolved %+v", c)
	}
	if again := a.call("POST", "/api/admin/v1/reconcile/cases/rcc_1/resolve", token, `{"note":"x"}`); again.status != http.StatusConflict {
		t.Errorf("resolve twice: %d", again.status)
	}
	var au adminapi.AuditPageJSON
	a.call("GET", "/api/admin/v1/audit?action=withdrawal.&limit=1", token, "").json(t, &au)
	if len(au.Entries) != 1 || au.Entries[0].Seq != 3 || au.NextBefore != 3 {
		t.Errorf("audit %+v", au)
	}
	var v adminapi.VerifyJSON
	a.call("POST", "/api/admin/v1/audit/verify", token, "").json(t, &v)
	if !v.OK || v.Checked != 3 || len(v.Problems) != 0 {
		t.Errorf("verify %+v", v)
	}
	a.f.Audit.SetCheck(bo.AuditCheck{Checked: 3, Problems: []bo.AuditProblem{{Seq: 2, Kind: "edited", Detail: "hash mismatch"}}})
	a.call("POST", "/api/admin/v1/audit/verify", token, "").json(t, &v)
	if v.OK || len(v.Problems) != 1 || v.Problems[0].Kind != "edited" {
		t.Errorf("verify broken %+v", v)
	}
}
