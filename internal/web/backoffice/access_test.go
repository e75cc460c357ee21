package backoffice_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	bo "github.com/opencashier/cashier/internal/web/backoffice"
)

// route is one page or action of the back office with the permission it
// needs, the answer when allowed, and (for actions) what the service must
// have been asked, "%s" standing for the member's actor.
type route struct {
	method string
	path   string
	form   url.Values
	perm   bo.Permission
	ok     int
	action string
}

var routes = []route{
	{method: "GET", path: "/backoffice/", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/withdrawals", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/pushes", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/pushes/dep_pushed:credit", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/payments", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/payments/pay_review", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/deposits", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/queues/flagged", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/users", perm: bo.PermUsersView, ok: 200},
	{method: "GET", path: "/backoffice/users/usr_alice", perm: bo.PermUsersView, ok: 200},
	{method: "GET", path: "/backoffice/transactions?kind=deposit", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/transactions/wd_done", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/transactions.csv?kind=deposit", perm: bo.PermExport, ok: 200},
	{method: "GET", path: "/backoffice/dashboard", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/rules", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/reconcile", perm: bo.PermView, ok: 200},
	{method: "GET", path: "/backoffice/audit", perm: bo.PermAuditView, ok: 200},
	{method: "GET", path: "/backoffice/staff", perm: bo.PermStaffManage, ok: 200},

	{method: "POST", path: "/backoffice/queues/withdrawals/wd_small/approve", perm: bo.PermWithdrawalsDecide, ok: 303, action: "approve wd_small by %s"},
	{method: "POST", path: "/backoffice/queues/withdrawals/wd_rej/reject", form: url.Values{"reason": {"IBAN holder differs"}}, perm: bo.PermWithdrawalsDecide, ok: 303,
		action: "reject wd_rej by %s: IBAN holder differs"},
	{method: "POST", path: "/backoffice/queues/deposits/dep_held/release", form: url.Values{"note": {"card verified by phone"}}, perm: bo.PermHoldsDecide, ok: 303,
		action: "release dep_held by %s: card verified by phone"},
	{method: "POST", path: "/backoffice/queues/deposits/dep_held2/reject", form: url.Values{"reason": {"stolen card"}}, perm: bo.PermHoldsDecide, ok: 303,
		action: "reject-deposit dep_held2 by %s: stolen card"},
	{method: "POST", path: "/backoffice/queues/flagged/dep_refused/clear", form: url.Values{"note": {"credited by hand"}}, perm: bo.PermPaymentsReview, ok: 303,
		action: "clear dep_refused by %s: credited by hand"},
	{method: "POST", path: "/backoffice/queues/pushes/dep_pushed:credit/resolve", form: url.Values{"applied": {"yes"}, "note": {"seen in balance history"}},
		perm: bo.PermPushesResolve, ok: 303, action: "resolve-push dep_pushed:credit applied=true by %s: seen in balance history"},
	{method: "POST", path: "/backoffice/queues/payments/pay_review/resolve", form: url.Values{"to": {"succeeded"}, "note": {"customer paid less; accepted"}},
		perm: bo.PermPaymentsReview, ok: 303, action: "resolve-payment pay_review succeeded by %s: customer paid less; accepted"},
	{method: "POST", path: "/backoffice/users/usr_bob/kyc", form: url.Values{"level": {"2"}, "country": {"gb"}, "reason": {"passport checked"}},
		perm: bo.PermKYCSet, ok: 303, action: "kyc usr_bob level 2 GB by %s: passport checked"},
	{method: "POST", path: "/backoffice/rules/velocity", form: url.Values{"enabled": {"on"}, "count": {"7"}, "window": {"2h"}, "amounts": {"20000.00 USD"}},
		perm: bo.PermRulesEdit, ok: 303, action: "rule velocity enabled=true count=7 window=2h0m0s by %s"},
	{method: "POST", path: "/backoffice/limits", form: url.Values{"direction": {"deposit"}, "method": {"*"}, "currency": {"USD"}, "level": {"0"}, "per_day": {"500.00"}, "per_month": {"2000.00"}},
		perm: bo.PermRulesEdit, ok: 303, action: "limit deposit/*/USD/0 day 500.00 month 2000.00 by %s"},
	{method: "POST", path: "/backoffice/reconcile/run", perm: bo.PermReconcile, ok: 303, action: "reconcile by %s"},
	{method: "POST", path: "/backoffice/reconcile/cases/rcc_1/resolve", form: url.Values{"note": {"manual credit found"}}, perm: bo.PermReconcile, ok: 303,
		action: "resolve-case rcc_1 by %s: manual credit found"},
	{method: "POST", path: "/backoffice/audit/verify", perm: bo.PermAuditView, ok: 200, action: "verify"},
	{method: "POST", path: "/backoffice/staff", form: url.Values{"email": {"new@broker.test"}, "name": {"New Person"}, "role": {"support"}, "password": {"a long initial password"}},
		perm: bo.PermStaffManage, ok: 303, action: "add new@broker.test support by %s"},
	{method: "POST", path: "/backoffice/staff/" + viewerID + "/role", form: url.Values{"role": {"support"}}, perm: bo.PermStaffManage, ok: 303,
		action: "role " + viewerID + " by %s"},
	{method: "POST", path: "/backoffice/staff/" + supportID + "/disable", perm: bo.PermStaffManage, ok: 303, action: "disable " + supportID + " by %s"},
	{method: "POST", path: "/backoffice/staff/" + supportID + "/enable", perm: bo.PermStaffManage, ok: 303, action: "enable " + supportID + " by %s"},
	{method: "POST", path: "/backoffice/staff/" + complianceID + "/reset-totp", perm: bo.PermStaffManage, ok: 303, action: "reset-totp " + complianceID + " by %s"},
}

// Every role opens exactly the pages and takes exactly the actions its
// permissions allow; the rest answer 403 with a page that names what is
// missing, and the service is not called.
func TestEachRoleMayDoWhatItsPermissionsAllow(t *testing.T) {
	for _, role := range bo.Roles {
		t.Run(role, func(t *testing.T) {
			s := newSite(t)
			c := s.as(roleIDs[role])
			actor := "staff:" + roleIDs[role]
			for _, r := range routes {
				allowed := slices.Contains(roleMatrix[role], r.perm)
				var p page
				if r.method == "GET" {
					p = c.get(r.path)
				} else {
					form := url.Values{}
					for k, v := range r.form {
						form[k] = v
					}
					p = c.post(r.path, form)
				}
				want := http.StatusForbidden
				if allowed {
					want = r.ok
				}
				if p.status != want {
					t.Errorf("%s %s %s: status %d, want %d\n%s", role, r.method, r.path, p.status, want, excerpt(p.body))
					continue
				}
				if r.action != "" {
					entry := strings.Replace(r.action, "%s", actor, 1)
					if got := s.acts.Has(entry); got != allowed {
						t.Errorf("%s %s %s: service asked %q = %v, want %v (log %q)", role, r.method, r.path, entry, got, allowed, s.acts.All())
					}
				}
				if !allowed && !strings.Contains(p.body, "Your role ("+role+") does not allow you to") {
					t.Errorf("%s %s %s: the 403 page does not say what the role lacks:\n%s", role, r.method, r.path, excerpt(p.body))
				}
			}
		})
	}
}

// The navigation shows only the sections the role may open.
func TestNavigationShowsOnlyWhatTheRoleMayOpen(t *testing.T) {
	s := newSite(t)
	sections := map[string]bo.Permission{"queues": bo.PermView, "users": bo.PermUsersView, "transactions": bo.PermView, "dashboard": bo.PermView,
		"rules": bo.PermView, "reconcile": bo.PermView, "audit": bo.PermAuditView, "staff": bo.PermStaffManage}
	for _, role := range bo.Roles {
		p := s.as(roleIDs[role]).get("/backoffice/")
		if p.status != http.StatusOK {
			t.Fatalf("%s: home %d", role, p.status)
		}
		for sec, perm := range sections {
			shown := strings.Contains(p.body, `id="nav-`+sec+`"`)
			if want := slices.Contains(roleMatrix[role], perm); shown != want {
				t.Errorf("%s: navigation shows %s = %v, want %v", role, sec, shown, want)
			}
		}
	}
	// Buttons follow the same rule: a viewer sees the queue without them.
	p := s.as(viewerID).get("/backoffice/queues/withdrawals")
	if strings.Contains(p.body, `id="approve-wd_small"`) || !strings.Contains(p.body, `id="row-wd_small"`) {
		t.Errorf("a viewer's queue: want the row without the approve button:\n%s", excerpt(p.body))
	}
	if p := s.as(financeID).get("/backoffice/queues/withdrawals"); !strings.Contains(p.body, `id="approve-wd_small"`) {
		t.Errorf("finance sees no approve button:\n%s", excerpt(p.body))
	}
}

// excerpt is the main part of a page, for failure messages.
func excerpt(body string) string {
	if i := strings.Index(body, "<main>"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 3000 {
		body = body[:3000] + "…"
	}
	return body
}
