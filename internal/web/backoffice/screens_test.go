package backoffice_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// Above the four-eyes amount the first approval is recorded and the page
// says who gave it; the same person approving again gets funding's error
// on the page and nothing changes; another person's approval completes
// it.
func TestFourEyesApproval(t *testing.T) {
	s := newSite(t)
	first, second := s.as(financeID), s.as(finance2ID)

	p := first.post("/backoffice/queues/withdrawals/wd_big/approve", nil)
	if p.status != http.StatusSeeOther {
		t.Fatalf("first approval: %d\n%s", p.status, excerpt(p.body))
	}
	q := first.get(p.location())
	if !strings.Contains(q.body, "First approval of withdrawal wd_big recorded. It needs a second approver") {
		t.Errorf("no notice of the first approval:\n%s", excerpt(q.body))
	}
	if !strings.Contains(q.body, "First approval by Finance Person (finance@broker.test) (you), needs a second approver.") {
		t.Errorf("the row does not show the first approver:\n%s", excerpt(q.body))
	}

	again := first.post("/backoffice/queues/withdrawals/wd_big/approve", nil)
	if again.status != http.StatusForbidden || !strings.Contains(again.body, "you gave the first approval; the second approver must be another person") {
		t.Errorf("the same person again: %d\n%s", again.status, excerpt(again.body))
	}
	if !strings.Contains(again.body, `id="row-wd_big"`) {
		t.Error("the error page does not show the queue with the withdrawal")
	}

	q2 := second.get("/backoffice/queues/withdrawals")
	if !strings.Contains(q2.body, "First approval by Finance Person (finance@broker.test), needs a second approver.") || strings.Contains(q2.body, "(you)") {
		t.Errorf("the second approver's view:\n%s", excerpt(q2.body))
	}
	p = second.post("/backoffice/queues/withdrawals/wd_big/approve", nil)
	if p.status != http.StatusSeeOther {
		t.Fatalf("second approval: %d\n%s", p.status, excerpt(p.body))
	}
	done := second.get(p.location())
	if strings.Contains(done.body, `id="row-wd_big"`) || !strings.Contains(done.body, "Withdrawal wd_big approved") {
		t.Errorf("after the second approval:\n%s", excerpt(done.body))
	}
	want := []string{"first-approve wd_big by staff:" + financeID, "approve wd_big by staff:" + finance2ID}
	if diff := cmp.Diff(want, s.acts.All()); diff != "" {
		t.Errorf("funding was asked (-want +got):\n%s", diff)
	}
}

// Hostile text from traders and staff (an e-mail address, a rejection
// reason, a KYC reference, a search term, a note) is shown escaped
// everywhere it appears.
func TestHostileTextIsEscaped(t *testing.T) {
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	s := newSite(t)
	s.users.Add(identity.User{ID: "usr_evil", Email: evil + "@x.test", Status: identity.StatusActive})
	s.fund.AddTask(bo.Task{Kind: bo.TaskApproval, ID: "wd_evil", UserID: "usr_evil", Login: 1, MethodID: evil,
		Destination: evil, Amount: money.New(100, usd), HoldRule: evil, HoldNote: evil})
	s.comp.SetProfile(bo.KYCProfile{UserID: "usr_evil", Level: 1, Country: "DE", Reference: evil, UpdatedBy: evil, Stored: true, Source: "staff"})
	s.rep.AddRow(bo.TxRow{ID: "wd_evil", Kind: "withdrawal", UserID: "usr_evil", Email: evil, MethodID: evil, State: "requested", Amount: money.New(100, usd)})
	s.audit.AddEntry(bo.AuditEntry{Seq: 9, Actor: evil, Action: "x.y", Subject: evil, Detail: map[string]string{"reason": evil}})
	c := s.as(adminID)
	pages := map[string]page{
		"queue":        c.get("/backoffice/queues/withdrawals"),
		"reject":       c.post("/backoffice/queues/withdrawals/wd_nope/reject", url.Values{"reason": {evil}}),
		"user":         c.get("/backoffice/users/usr_evil"),
		"user search":  c.get("/backoffice/users?q=" + url.QueryEscape(evil)),
		"transactions": c.get("/backoffice/transactions?q=" + url.QueryEscape(evil+"@x")),
		"detail":       c.get("/backoffice/transactions/wd_evil"),
		"audit":        c.get("/backoffice/audit"),
		"kyc error":    c.post("/backoffice/users/usr_evil/kyc", url.Values{"level": {"1"}, "country": {"XYZ"}, "reason": {evil}}),
		"push note":    c.post("/backoffice/queues/pushes/dep_pushed:credit/resolve", url.Values{"note": {evil}}),
		"staff error":  c.post("/backoffice/staff", url.Values{"email": {evil}, "name": {evil}, "role": {"viewer"}, "password": {"short"}}),
	}
	for name, p := range pages {
		for _, raw := range []string{"<script>alert(1)", "<img src=x", `onerror=alert(2)>"`} {
			if strings.Contains(p.body, raw) {
				t.Errorf("%s: %q appears unescaped (status %d)", name, raw, p.status)
			}
		}
		if !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the text is not shown at all (status %d)\n%s", name, p.status, excerpt(p.body))
		}
	}
}

// A rejection without a reason is refused on the page; funding is not
// called.
func TestRejectNeedsAReason(t *testing.T) {
	s := newSite(t)
	c := s.as(financeID)
	p := c.post("/backoffice/queues/withdrawals/wd_rej/reject", url.Values{"reason": {"   "}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "give a reason") {
		t.Errorf("%d\n%s", p.status, excerpt(p.body))
	}
	if len(s.acts.All()) != 0 {
		t.Errorf("funding was called: %q", s.acts.All())
	}
}

// The push page shows the evidence and the platform's answers, and the
// decision goes to the push service with the note.
func TestPushInDoubtShowsEvidence(t *testing.T) {
	s := newSite(t)
	c := s.as(financeID)
	list := c.get("/backoffice/queues/pushes")
	if !strings.Contains(list.body, `href="/backoffice/queues/pushes/dep_pushed:credit"`) {
		t.Fatalf("the queue does not link the push:\n%s", excerpt(list.body))
	}
	p := c.get("/backoffice/queues/pushes/dep_pushed:credit")
	for _, want := range []string{"timeout after 5s; the platform offers no look-up", "context deadline exceeded after 5s", "in doubt", `id="confirm-applied"`, `id="confirm-not-applied"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the push page lacks %q", want)
		}
	}
	bad := c.post("/backoffice/queues/pushes/dep_pushed:credit/resolve", url.Values{"applied": {"no"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Write what you checked") {
		t.Errorf("without a note: %d", bad.status)
	}
	ok := c.post("/backoffice/queues/pushes/dep_pushed:credit/resolve", url.Values{"applied": {"no"}, "note": {"not in the balance history"}})
	if ok.status != http.StatusSeeOther || !s.acts.Has("resolve-push dep_pushed:credit applied=false by staff:"+financeID+": not in the balance history") {
		t.Errorf("resolve: %d, log %q", ok.status, s.acts.All())
	}
	again := c.post("/backoffice/queues/pushes/dep_pushed:credit/resolve", url.Values{"applied": {"yes"}, "note": {"twice"}})
	if again.status != http.StatusConflict || !strings.Contains(again.body, "is not in doubt") {
		t.Errorf("a second decision: %d\n%s", again.status, excerpt(again.body))
	}
}

// The payment review page shows what we asked, what the provider reported
// and its event body.
func TestPaymentReviewShowsBothAmounts(t *testing.T) {
	s := newSite(t)
	p := s.as(financeID).get("/backoffice/queues/payments/pay_review")
	for _, want := range []string{`id="asked">€50.00`, `id="received">€45.00`, "amount mismatch", "&#34;amount&#34;: &#34;45.00&#34;", `id="accept"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the payment page lacks %q\n%s", want, excerpt(p.body))
		}
	}
	// A viewer sees it without the decision.
	if v := s.as(viewerID).get("/backoffice/queues/payments/pay_review"); strings.Contains(v.body, `id="accept"`) || !strings.Contains(v.body, "Your role cannot decide payments") {
		t.Errorf("viewer:\n%s", excerpt(v.body))
	}
}

// Held deposits show the rule and its explanation.
func TestHeldDepositsShowTheRule(t *testing.T) {
	s := newSite(t)
	p := s.as(complianceID).get("/backoffice/queues/deposits")
	for _, want := range []string{"card country", "The card was issued in BR; the user&#39;s country is GB.", `id="release-dep_held"`, `id="reject-dep_held"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("held deposits lack %q\n%s", want, excerpt(p.body))
		}
	}
}

var rowIDRe = regexp.MustCompile(`<a href="/backoffice/transactions/([a-z_0-9]+)">`)

// The search passes every filter to reports, pages with its cursor, opens
// a transaction id directly, and refuses bad input with a message.
func TestTransactionSearch(t *testing.T) {
	s := newSite(t)
	c := s.as(viewerID)
	p := c.get("/backoffice/transactions?kind=deposit&status=completed&login=8673590&method=card&from=2026-05-01&to=2026-05-03&currency=usd&min=10.00&max=500")
	if p.status != http.StatusOK {
		t.Fatalf("%d\n%s", p.status, excerpt(p.body))
	}
	got := s.rep.LastSearch()
	if got.Kind != "deposit" || !cmp.Equal(got.Status, []string{"completed"}) || got.Login != 8673590 || got.MethodID != "card" ||
		got.From.Format("2006-01-02") != "2026-05-01" || got.To.Format("2006-01-02") != "2026-05-04" ||
		got.MinAmount != money.New(1000, usd) || got.MaxAmount != money.New(50000, usd) || got.Currency != "USD" || got.Limit != 2 {
		t.Errorf("reports got %+v", got)
	}

	first := c.get("/backoffice/transactions")
	if ids := rowIDRe.FindAllStringSubmatch(first.body, -1); len(ids) != 2 {
		t.Fatalf("first page rows %v", ids)
	}
	next := regexp.MustCompile(`href="([^"]+)" id="next"`).FindStringSubmatch(first.body)
	if next == nil {
		t.Fatalf("no next page link:\n%s", excerpt(first.body))
	}
	second := c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	ids := rowIDRe.FindAllStringSubmatch(second.body, -1)
	if len(ids) != 1 || ids[0][1] != "dep_2" || !strings.Contains(second.body, `id="first"`) {
		t.Errorf("second page: %v\n%s", ids, excerpt(second.body))
	}

	if p := c.get("/backoffice/transactions?q=wd_done"); p.status != http.StatusSeeOther || p.location() != "/backoffice/transactions/wd_done" {
		t.Errorf("a transaction id: %d to %q", p.status, p.location())
	}
	for q, says := range map[string]string{
		"min=10":                        "choose the currency of the amount range",
		"from=05/01/2026":               "YYYY-MM-DD",
		"login=abc":                     "login number",
		"status=teleported":             "unknown status",
		"currency=USD&min=1e3":          "plain decimal",
		"from=2026-05-03&to=2026-05-01": "must not be after",
	} {
		p := c.get("/backoffice/transactions?" + q)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, says) {
			t.Errorf("%s: %d, want 400 saying %q", q, p.status, says)
		}
	}
}

// The export streams every match as CSV for those with PermExport.
func TestCSVExport(t *testing.T) {
	s := newSite(t)
	p := s.as(financeID).get("/backoffice/transactions.csv?q=alice%40example.com")
	if p.status != http.StatusOK || p.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(p.header.Get("Content-Disposition"), `attachment; filename="transactions-`) {
		t.Fatalf("%d %q %q", p.status, p.header.Get("Content-Type"), p.header.Get("Content-Disposition"))
	}
	want := "id,kind,user,amount,currency\nwd_done,withdrawal,alice@example.com,200.00,USD\ndep_1,deposit,alice@example.com,100.00,USD\n"
	if p.body != want {
		t.Errorf("CSV:\n%s\nwant\n%s", p.body, want)
	}
	if v := s.as(viewerID).get("/backoffice/transactions?kind=deposit"); strings.Contains(v.body, `id="csv"`) {
		t.Error("a viewer is offered the export")
	}
}

// The detail page shows the whole timeline with the approver's name.
func TestTransactionTimeline(t *testing.T) {
	s := newSite(t)
	p := s.as(viewerID).get("/backoffice/transactions/wd_done")
	for _, want := range []string{"cashier screen opened", "awaiting_approval → approved", "by Finance Person (finance@broker.test)", "balanceHistoryId 77", "Paid out", "$199.00"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the timeline lacks %q\n%s", want, excerpt(p.body))
		}
	}
	if p := s.as(viewerID).get("/backoffice/transactions/wd_nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown id: %d", p.status)
	}
}

// A KYC change goes to compliance with the member as actor, and shows on
// the user's page.
func TestKYCChange(t *testing.T) {
	s := newSite(t)
	c := s.as(complianceID)
	u := c.get("/backoffice/users?q=ALICE@example.com")
	if u.status != http.StatusSeeOther || u.location() != "/backoffice/users/usr_alice" {
		t.Fatalf("search by e-mail: %d to %q", u.status, u.location())
	}
	if nf := c.get("/backoffice/users?q=nobody@example.com"); nf.status != http.StatusNotFound || !strings.Contains(nf.body, "No user matches") {
		t.Errorf("unknown user: %d", nf.status)
	}
	p := c.post("/backoffice/users/usr_alice/kyc", url.Values{"level": {"2"}, "country": {"at"}, "reason": {"proof of address, case 42"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("%d\n%s", p.status, excerpt(p.body))
	}
	page := c.get(p.location())
	for _, want := range []string{`id="kyc-level">2`, `id="kyc-country">AT`, "proof of address, case 42", "level 1 → 2, DE → AT", "KYC status of usr_alice saved."} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the user page lacks %q\n%s", want, excerpt(page.body))
		}
	}
	bad := c.post("/backoffice/users/usr_alice/kyc", url.Values{"level": {"2"}, "country": {"AT"}, "reason": {""}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Give a reason") {
		t.Errorf("without a reason: %d", bad.status)
	}
	if v := s.as(supportID).get("/backoffice/users/usr_alice"); strings.Contains(v.body, `id="kyc-form"`) {
		t.Error("support is offered the KYC form")
	}
}

// Rules are explained; a bad parameter is refused with a message.
func TestRulesAndLimits(t *testing.T) {
	s := newSite(t)
	c := s.as(complianceID)
	p := c.get("/backoffice/rules")
	for _, want := range []string{"more than 5 of that kind within 1 hour", "First withdrawal to a new destination", `value="10000.00 USD"`, "every method together", "$1,000.00", "3 a day"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the rules page lacks %q", want)
		}
	}
	for form, says := range map[string]url.Values{
		"write the window as a duration": {"count": {"5"}, "window": {"soon"}, "amounts": {"1.00 USD"}},
		"is not a currency code":         {"count": {"5"}, "window": {"1h"}, "amounts": {"1.00 XXQ"}},
		"the count must be a whole":      {"count": {"-1"}, "window": {"1h"}, "amounts": {"1.00 USD"}},
	} {
		if p := c.post("/backoffice/rules/velocity", says); p.status != http.StatusBadRequest || !strings.Contains(p.body, form) {
			t.Errorf("%v: %d, want 400 saying %q", says, p.status, form)
		}
	}
	if v := s.as(viewerID).get("/backoffice/rules"); strings.Contains(v.body, `id="save-velocity"`) || !strings.Contains(v.body, "more than 5 of that kind") {
		t.Error("a viewer sees the rule without the form? want explanation only")
	}
}

// The audit page verifies the chain and says where it is broken.
func TestAuditVerify(t *testing.T) {
	s := newSite(t)
	c := s.as(adminID)
	ok := c.post("/backoffice/audit/verify", nil)
	if ok.status != http.StatusOK || !strings.Contains(ok.body, "The chain is intact: 3 records checked") {
		t.Errorf("intact: %d\n%s", ok.status, excerpt(ok.body))
	}
	s.audit.SetCheck(bo.AuditCheck{Checked: 3, Problems: []bo.AuditProblem{{Seq: 2, Kind: "edited", Detail: "the stored hash does not match the content"}}})
	bad := c.post("/backoffice/audit/verify", nil)
	if bad.status != http.StatusConflict || !strings.Contains(bad.body, "record 2: edited: the stored hash does not match the content") {
		t.Errorf("broken: %d\n%s", bad.status, excerpt(bad.body))
	}
	search := c.get("/backoffice/audit?action=withdrawal.&actor=staff:" + financeID)
	q := s.audit.LastQuery()
	if q.Action != "withdrawal." || q.Actor != "staff:"+financeID || !strings.Contains(search.body, "withdrawal.approved") || strings.Contains(search.body, "ledger.transfer") {
		t.Errorf("search %+v\n%s", q, excerpt(search.body))
	}
}

// Staff cannot change their own role or disable themselves.
func TestStaffGuardsThemselves(t *testing.T) {
	s := newSite(t)
	c := s.as(adminID)
	if p := c.post("/backoffice/staff/"+adminID+"/disable", nil); p.status != http.StatusConflict || !strings.Contains(p.body, "cannot disable yourself") {
		t.Errorf("disable self: %d", p.status)
	}
	if p := c.post("/backoffice/staff/"+adminID+"/role", url.Values{"role": {"viewer"}}); p.status != http.StatusConflict {
		t.Errorf("own role: %d", p.status)
	}
	if p := c.post("/backoffice/staff", url.Values{"email": {"finance@broker.test"}, "name": {"X"}, "role": {"viewer"}, "password": {"long enough password"}}); p.status != http.StatusConflict ||
		!strings.Contains(p.body, "finance@broker.test is already a member") {
		t.Errorf("duplicate: %d", p.status)
	}
	if len(s.acts.All()) != 0 {
		t.Errorf("staff was changed: %q", s.acts.All())
	}
}

func TestDashboardShowsTheCharts(t *testing.T) {
	s := newSite(t)
	p := s.as(viewerID).get("/backoffice/dashboard?from=2026-04-01&to=2026-04-30")
	for _, id := range []string{"per_day", "approval_times", "decline_reasons", "funnel"} {
		if !strings.Contains(p.body, `id="chart-`+id+`"`) {
			t.Errorf("no chart %s", id)
		}
	}
	if !strings.Contains(p.body, "<svg") || !strings.Contains(p.body, `id="fig-deposits_count"`) {
		t.Errorf("no inline SVG or figures\n%s", excerpt(p.body))
	}
	if p := s.as(viewerID).get("/backoffice/dashboard?from=2026-04-30&to=2026-04-01"); p.status != http.StatusBadRequest {
		t.Errorf("reversed period: %d", p.status)
	}
}
