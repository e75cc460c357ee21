package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/httpapi/adminapi"
)

// staffLogin signs a demo staff member in through the admin API: the
// password, then a code of the authenticator enrolled at this first login.
func staffLogin(t *testing.T, d *demoRun, email string) string {
	t.Helper()
	base := d.man.CashierURL + adminapi.Prefix
	var pending adminapi.PendingJSON
	resp, body := apiCall(t, http.MethodPost, base+"/login", "", "", map[string]string{"email": email, "password": demoStaffPassword(email)})
	if resp.StatusCode != 200 {
		t.Fatalf("login of %s = %d %s", email, resp.StatusCode, body)
	}
	decode(t, body, &pending)
	if pending.Enrolment == nil || pending.Enrolment.Secret == "" {
		t.Fatalf("the first login of %s enrols no authenticator: %s", email, body)
	}
	code, err := totp.GenerateCode(pending.Enrolment.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var session adminapi.SessionJSON
	resp, body = apiCall(t, http.MethodPost, base+"/login/totp", "", "", map[string]string{"pendingToken": pending.PendingToken, "code": code})
	if resp.StatusCode != 200 {
		t.Fatalf("TOTP step of %s = %d %s", email, resp.StatusCode, body)
	}
	decode(t, body, &session)
	return session.Token
}

// TestDemoBackOfficeEndToEnd: a trader's withdrawal above the automatic
// approval waits in the back office's queue; a viewer may not decide it, a
// finance member approves it through the admin API, it is paid, the trader
// is told by e-mail, the audit trail names the approver and verifies, and
// reconciliation finds the books and the platform in agreement.
func TestDemoBackOfficeEndToEnd(t *testing.T) {
	d := startDemo(t)
	alice := d.man.Users[0]
	acc := alice.Accounts[0]
	dbURL := "sqlite:" + filepath.Join(d.dir, "cashier.db")
	base := d.man.CashierURL + adminapi.Prefix

	appLogin(t, d, alice)
	handle := openCashier(t, d, alice, "withdraw", acc.Login)
	resp, body := send(t, client, http.MethodPost, d.man.CashierURL+"/inapp/withdraw/confirm", url.Values{
		"s": {handle}, "method": {"bank-transfer"}, "amount": {"600.00"}, "holderName": {"Alice Archer"},
		"iban": {"DE89 3704 0044 0532 0130 00"}, "id": {"req_e2e_backoffice_1"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/inapp/withdraw/status" {
		t.Fatalf("withdrawal confirm = %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}

	olga := staffLogin(t, d, "olga@demo.example")
	var task adminapi.TaskJSON
	eventually(t, "the withdrawal in the approvals queue", func() bool {
		var q adminapi.QueuesJSON
		resp, body := apiCall(t, http.MethodGet, base+"/queues", olga, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("queues = %d %s", resp.StatusCode, body)
		}
		decode(t, body, &q)
		for _, w := range q.Withdrawals {
			if w.Login == acc.Login {
				task = w
				return true
			}
		}
		return false
	})
	if task.Amount == nil || task.Amount.Currency != "USD" || task.Amount.Amount.String() != "600.00" || task.FourEyes {
		t.Errorf("queued withdrawal %+v, want 600.00 USD, one approver", task)
	}

	vic := staffLogin(t, d, "vic@demo.example")
	if resp, body := apiCall(t, http.MethodPost, base+"/withdrawals/"+task.ID+"/approve", vic, "", nil); resp.StatusCode != 403 {
		t.Errorf("a viewer approving = %d %s, want 403", resp.StatusCode, body)
	}
	resp, approved := apiCall(t, http.MethodPost, base+"/withdrawals/"+task.ID+"/approve", olga, "", nil)
	var dec adminapi.DecisionJSON
	decode(t, approved, &dec)
	if resp.StatusCode != 200 || dec.Status != "approved" {
		t.Fatalf("olga approving = %d %s, want approved", resp.StatusCode, approved)
	}
	eventually(t, "the payout", func() bool {
		out, _, _ := run(t, nil, "audit", "search", "--subject", task.ID, "--action", "withdrawal.status", "-database-url", dbURL)
		return strings.Contains(out, "completed")
	})
	if h := simHistory(t, d, acc.Login); len(h) != 1 || h[0].Type != "WITHDRAW" || h[0].Delta != -60000 {
		t.Errorf("simulator history = %+v, want one WITHDRAW of 600.00", h)
	}

	// The trader is told, in their language.
	eventually(t, "the approval e-mail", func() bool {
		_, list := get(t, d.man.MailboxURL, nil)
		return strings.Contains(list, "withdrawal of $600.00 has been approved") || strings.Contains(list, "withdrawal of 600.00 USD has been approved")
	})

	// The trail names the approver, and the chain is intact.
	out, _, err := run(t, nil, "audit", "search", "--subject", task.ID, "--action", "withdrawal.status", "-database-url", dbURL)
	if err != nil || !strings.Contains(out, "staff:stf_") || !strings.Contains(out, "approved") {
		t.Errorf("audit search = %q, %v; want the approval by a staff member", out, err)
	}
	if out, _, err := run(t, nil, "audit", "verify", "-database-url", dbURL); err != nil || !strings.Contains(out, "clean") {
		t.Errorf("audit verify = %q, %v", out, err)
	}
	out, _, err = run(t, map[string]string{"CASHIER_DATABASE_URL": dbURL, "CASHIER_CTRADER_URL": d.man.SimulatorURL,
		"CASHIER_CTRADER_MANAGER_LOGIN": itoa64(d.man.Manager.Login), "CASHIER_CTRADER_MANAGER_PASSWORD": d.man.Manager.Password,
		"CASHIER_SANDBOX": "true"}, "reconcile", "run")
	if err != nil || !strings.Contains(out, "clean") {
		t.Errorf("reconcile run = %q, %v; want clean", out, err)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	secretRE = regexp.MustCompile(`id="secret">([A-Z2-7]+)<`)
)

// TestDemoBackOfficeScreens signs an admin into the demo's back-office
// screens (password, then the authenticator enrolled at this first login)
// and opens every page over the real services, a transaction's timeline
// included: each answers 200 with the page, none an error.
func TestDemoBackOfficeScreens(t *testing.T) {
	d := startDemo(t)
	alice := d.man.Users[0]
	acc := alice.Accounts[0]
	appLogin(t, d, alice)
	handle := openCashier(t, d, alice, "withdraw", acc.Login)
	if resp, body := send(t, client, http.MethodPost, d.man.CashierURL+"/inapp/withdraw/confirm", url.Values{
		"s": {handle}, "method": {"bank-transfer"}, "amount": {"700.00"}, "holderName": {"Alice Archer"},
		"iban": {"DE89 3704 0044 0532 0130 00"}, "id": {"req_e2e_screens_1"}}); resp.StatusCode != 200 {
		t.Fatalf("withdrawal confirm = %d:\n%s", resp.StatusCode, body)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	staffClient := &http.Client{Jar: jar, Timeout: client.Timeout}
	bo := d.man.CashierURL + "/backoffice"
	_, page := send(t, staffClient, http.MethodGet, bo+"/login", nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the login page has no CSRF token:\n%s", page)
	}
	resp, page := send(t, staffClient, http.MethodPost, bo+"/login", url.Values{"csrf": {m[1]}, "email": {"admin@demo.example"},
		"password": {demoStaffPassword("admin@demo.example")}})
	secret, csrf := secretRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if resp.StatusCode != 200 || secret == nil || csrf == nil {
		t.Fatalf("after the password: %d at %s, want the enrolment page with the secret:\n%.1000s", resp.StatusCode, resp.Request.URL, page)
	}
	code, err := totp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if resp, page := send(t, staffClient, http.MethodPost, bo+"/login/totp", url.Values{"csrf": {csrf[1]}, "code": {code}}); resp.StatusCode != 200 ||
		resp.Request.URL.Path != "/backoffice/" {
		t.Fatalf("after the code: %d at %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}

	var id string
	eventually(t, "the withdrawal in the queue", func() bool {
		_, page := send(t, staffClient, http.MethodGet, bo+"/queues/withdrawals", nil)
		f := regexp.MustCompile(`/backoffice/transactions/(wd_[0-9a-f-]+)`).FindStringSubmatch(page)
		if f != nil {
			id = f[1]
		}
		return f != nil
	})
	for _, path := range []string{"/", "/queues/withdrawals", "/queues/pushes", "/queues/payments", "/queues/deposits", "/queues/flagged",
		"/users", "/transactions", "/transactions/" + id, "/transactions.csv", "/dashboard", "/rules", "/reconcile", "/audit", "/staff"} {
		resp, page := send(t, staffClient, http.MethodGet, bo+path, nil)
		if resp.StatusCode != 200 || strings.Contains(page, "Something went wrong") {
			t.Errorf("GET /backoffice%s = %d:\n%.600s", path, resp.StatusCode, page)
		}
		if path == "/transactions/"+id && (!strings.Contains(page, "awaiting_approval") || !strings.Contains(page, "700.00")) {
			t.Errorf("the timeline of %s lacks its status or amount:\n%.2000s", id, page)
		}
	}
	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}
