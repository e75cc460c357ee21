package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/testutil/pgtest"
)

// TestServeWiresEveryPart runs serve against the cTrader simulator with the
// sandbox on and a success URL: every surface answers, with the security
// headers the settings ask for, and every job kind runs.
func TestServeWiresEveryPart(t *testing.T) {
	for _, dbName := range []string{"sqlite", "postgres"} {
		t.Run(dbName, func(t *testing.T) {
			dbURL := sqliteURL(t)
			if dbName == "postgres" {
				dbURL = pgtest.URL(t)
			}
			serveEveryPart(t, dbURL)
		})
	}
}

func serveEveryPart(t *testing.T, dbURL string) {
	sim, err := ctradersim.Start(context.Background(), ctradersim.Config{Seed: ctradersim.DemoSeed()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	vars := map[string]string{
		"CASHIER_DATABASE_URL":             dbURL,
		"CASHIER_CTRADER_URL":              sim.URL(),
		"CASHIER_CTRADER_MANAGER_LOGIN":    "1001",
		"CASHIER_CTRADER_MANAGER_PASSWORD": "manager-password",
		"CASHIER_CTRADER_BROKER_CRM_NAME":  "demo_crm",
		"CASHIER_CTRADER_BROKER_NAME":      "demo_broker",
		"CASHIER_CTRADER_CRM_PASSWORDS":    "shared-with-spotware",
		"CASHIER_SUCCESS_URL":              sim.URL() + "/app/success",
		"CASHIER_FRAME_ANCESTORS":          "'self' https://app.ctrader.com",
		"CASHIER_SANDBOX":                  "true",
	}
	s := startServe(t, vars, "-addr", "127.0.0.1:0")
	base := "http://" + s.addr

	resp, body := get(t, base+"/auth/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Errorf("/auth/login = %d, want the login screen", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' https://app.ctrader.com") ||
		resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/auth/login headers = %v, want the configured frame-ancestors, nosniff and no-store", resp.Header)
	}
	if resp, _ := get(t, base+"/inapp/deposit?account=3000001", nil); resp.StatusCode != 400 {
		t.Errorf("/inapp/deposit without a token = %d, want 400", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/sandbox/control", nil); resp.StatusCode != 200 {
		t.Errorf("/sandbox/control = %d, want 200", resp.StatusCode)
	}
	var tok struct {
		CRMAPIToken string `json:"crmApiToken"`
	}
	if code := postJSON(t, base+"/oauth2/crmApiToken", map[string]string{"password": "shared-with-spotware"}, &tok); code != 200 || tok.CRMAPIToken == "" {
		t.Errorf("POST /oauth2/crmApiToken = %d, want 200 with a token", code)
	}
	if code := postJSON(t, base+"/api/validate-token", map[string]string{"token": strings.Repeat("A", 43)}, nil); code != 401 {
		t.Errorf("POST /api/validate-token with an unknown token = %d, want 401", code)
	}
	if code := postJSON(t, base+"/psp/sandbox/webhook", map[string]string{"id": "evt_forged"}, nil); code != 401 {
		t.Errorf("an unsigned webhook = %d, want 401", code)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve = %v", err)
	}
	log := s.stderr.String()
	started := logLines(log, "job workers started")
	if len(started) != 1 {
		t.Fatalf("log lacks the job workers:\n%s", log)
	}
	for _, kind := range []string{"platform.push", "payments.poll", "funding.payout", "funding.deposit_expiry", "notify.email", "notify.crm_webhook"} {
		if !strings.Contains(started[0], kind) {
			t.Errorf("job workers run %s, want %s among them", started[0], kind)
		}
	}
	var off []string
	for _, line := range logLines(log, "part off") {
		_, part, _ := strings.Cut(line, `"part":"`)
		part, _, _ = strings.Cut(part, `"`)
		off = append(off, part)
	}
	if diff := cmp.Diff([]string{"crm webhooks", "kyc api", "mail", "sms"}, off); diff != "" {
		t.Errorf("parts off (-want +got): want only those whose settings are not given (CRM webhook URL, KYC API key, SMTP host, SMS URL)\n%s", diff)
	}
}

// TestServeWithoutPlatform runs serve with the defaults: the parts that
// need settings are off, each with its reason in the log, and their routes
// are not there.
func TestServeWithoutPlatform(t *testing.T) {
	s := startServe(t, nil, "-addr", "127.0.0.1:0", "-database-url", sqliteURL(t))
	base := "http://" + s.addr
	for _, path := range []string{"/auth/login", "/inapp/deposit", "/sandbox/control"} {
		if resp, _ := get(t, base+path, nil); resp.StatusCode != 404 {
			t.Errorf("%s = %d, want 404 while its part is off", path, resp.StatusCode)
		}
	}
	if code := postJSON(t, base+"/oauth2/crmApiToken", map[string]string{"password": "anything-at-all"}, nil); code != 403 {
		t.Errorf("POST /oauth2/crmApiToken without configured passwords = %d, want 403", code)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	log := s.stderr.String()
	for _, part := range []string{"trading platform", "payments", "funding", "screens", "mail", "crmApiToken", "client api"} {
		found := false
		for _, l := range logLines(log, "part off") {
			found = found || strings.Contains(l, `"part":"`+part+`"`)
		}
		if !found {
			t.Errorf("log does not say why %s is off:\n%s", part, log)
		}
	}
}

func TestServeRefusesSettings(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "methods.json")
	if err := os.WriteFile(bad, []byte(`{"methods": [{"id": "card", "kind": "card", "provider": "sandbox", "colour": "red"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"cTrader without a manager", map[string]string{"CASHIER_CTRADER_URL": "http://127.0.0.1:1"},
			"CASHIER_CTRADER_URL needs CASHIER_CTRADER_MANAGER_LOGIN and CASHIER_CTRADER_MANAGER_PASSWORD"},
		{"a methods file that does not validate", map[string]string{"CASHIER_SANDBOX": "true", "CASHIER_PAYMENT_METHODS": bad},
			"settings: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, tc.env, "serve", "-addr", "127.0.0.1:0", "-database-url", sqliteURL(t))
			if err == nil || ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("serve = %v (exit %d), want exit 2 with %q", err, ExitCode(err), tc.wantErr)
			}
		})
	}
}
