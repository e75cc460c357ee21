package config_test

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opencashier/cashier/internal/config"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	got := config.Defaults()
	want := config.Config{
		DatabaseURL:     "sqlite:cashier.db",
		Addr:            "127.0.0.1:8080",
		PublicURL:       "",
		LogLevel:        slog.LevelInfo,
		LogFormat:       "json",
		ShutdownTimeout: 15 * time.Second,
		JobWorkers:      4,
		JobLease:        time.Minute,
		FrameAncestors:  []string{"'self'"},
		Identity: config.Identity{
			Mode:              identity.ModeSSO,
			CRMTokenTTL:       168 * time.Hour,
			OTTokenTTL:        time.Minute,
			AccessTokenTTL:    2160 * time.Hour,
			InAppTokenTTL:     720 * time.Hour,
			CashierSessionTTL: 30 * time.Minute,
			ResetTokenTTL:     30 * time.Minute,
			LockoutThreshold:  5,
			LockoutPeriod:     15 * time.Minute,
			DefaultLanguage:   "en",
		},
		Screens: config.Screens{
			BrandName:           "OpenCashier",
			AccountEnvironments: []identity.Environment{identity.Demo, identity.Live},
			AccountCurrencies:   []string{"USD", "EUR"},
			DepositPath:         "/inapp/deposit",
			WithdrawPath:        "/inapp/withdraw",
		},
		CTrader:  config.CTrader{Timeout: 10 * time.Second, Groups: map[string]string{"demo": "default", "live": "default"}},
		Platform: config.Platform{Connector: "ctrader"},
		SMTP:     config.SMTP{Port: 587, RequireTLS: true},
		Funding:  config.Funding{DepositExpiry: 2 * time.Hour, WizardRequire2FA: true},
		BackOffice: config.BackOffice{StaffSessionIdle: 30 * time.Minute, StaffSessionMax: 12 * time.Hour, ReconcileEvery: time.Hour,
			KYCWithdrawalLevel: 1, KYCVerifiedLevel: 1},
	}
	// The defaults of identity's settings are identity's own defaults.
	id := identity.DefaultConfig()
	if got.Identity.CRMTokenTTL != id.CRMTokenTTL || got.Identity.OTTokenTTL != id.OTTokenTTL ||
		got.Identity.AccessTokenTTL != id.AccessTokenTTL || got.Identity.InAppTokenTTL != id.InAppTokenTTL ||
		got.Identity.CashierSessionTTL != id.CashierSessionTTL || got.Identity.ResetTokenTTL != id.ResetTokenTTL ||
		got.Identity.LockoutThreshold != id.LockoutThreshold || got.Identity.LockoutPeriod != id.LockoutPeriod {
		t.Errorf("identity defaults differ from identity.DefaultConfig(): %+v vs %+v", got.Identity, id)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Defaults() (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     func(c *config.Config)
		wantRest []string
	}{
		{
			name: "nothing set gives defaults",
			want: func(c *config.Config) {},
		},
		{
			name: "environment sets values",
			env: map[string]string{
				"CASHIER_DATABASE_URL":     "postgres://cashier:secret@db:5432/cashier?sslmode=disable",
				"CASHIER_ADDR":             ":9000",
				"CASHIER_PUBLIC_URL":       "https://pay.example.com/",
				"CASHIER_LOG_LEVEL":        "DEBUG",
				"CASHIER_LOG_FORMAT":       "text",
				"CASHIER_SHUTDOWN_TIMEOUT": "1m30s",
				"CASHIER_JOB_WORKERS":      "0",
			},
			want: func(c *config.Config) {
				c.DatabaseURL = "postgres://cashier:secret@db:5432/cashier?sslmode=disable"
				c.Addr = ":9000"
				c.PublicURL = "https://pay.example.com"
				c.LogLevel = slog.LevelDebug
				c.LogFormat = "text"
				c.ShutdownTimeout = 90 * time.Second
				c.JobWorkers = 0
			},
		},
		{
			name: "flag wins over environment",
			args: []string{"-addr", "127.0.0.1:0", "-log-level=warn"},
			env:  map[string]string{"CASHIER_ADDR": "abc", "CASHIER_LOG_LEVEL": "loud"},
			want: func(c *config.Config) {
				c.Addr = "127.0.0.1:0"
				c.LogLevel = slog.LevelWarn
			},
		},
		{
			name: "empty variable counts as unset",
			env:  map[string]string{"CASHIER_ADDR": ""},
			want: func(c *config.Config) {},
		},
		{
			name:     "arguments after flags are returned",
			args:     []string{"-job-workers", "8", "up", "extra"},
			want:     func(c *config.Config) { c.JobWorkers = 8 },
			wantRest: []string{"up", "extra"},
		},
		{
			name: "identity, platform, payments and funding settings",
			env: map[string]string{
				"CASHIER_IDENTITY_MODE":            "handoff",
				"CASHIER_CTRADER_CRM_PASSWORDS":    "first-secret, second-secret",
				"CASHIER_CTRADER_ALLOWED_NETWORKS": "203.0.113.7/24,2001:db8::/32",
				"CASHIER_ACCESS_TOKEN_TTL":         "never",
				"CASHIER_CTRADER_URL":              "https://demo.ctrader.example:5011/",
				"CASHIER_CTRADER_MANAGER_LOGIN":    "1001",
				"CASHIER_CTRADER_MANAGER_PASSWORD": "pw",
				"CASHIER_CTRADER_GROUPS":           "demo=demo_usd",
				"CASHIER_FRAME_ANCESTORS":          "'self' https://app.ctrader.com",
				"CASHIER_PUSH_LOOKUP":              "AUTO",
				"CASHIER_WITHDRAWAL_AUTO_APPROVE":  "USD:1000.00,JPY:150000",
				"CASHIER_SESSION_KEY":              "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
				"CASHIER_ACCOUNT_CURRENCIES":       "usd, jpy",
				"CASHIER_DEFAULT_COUNTRY":          "gb",
			},
			want: func(c *config.Config) {
				c.Identity.Mode = identity.ModeHandoff
				c.Identity.CRMPasswords = []string{"first-secret", "second-secret"}
				c.Identity.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
				c.Identity.AccessTokenTTL = -1
				c.CTrader.URL = "https://demo.ctrader.example:5011"
				c.CTrader.ManagerLogin = 1001
				c.CTrader.ManagerPassword = "pw"
				c.CTrader.Groups = map[string]string{"demo": "demo_usd"}
				c.FrameAncestors = []string{"'self'", "https://app.ctrader.com"}
				c.Platform.PushLookup = true
				usd, jpy := money.MustCurrency("USD"), money.MustCurrency("JPY")
				c.Funding.AutoApprove = map[string]money.Amount{"USD": money.New(100000, usd), "JPY": money.New(150000, jpy)}
				c.Screens.SessionKey = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}
				c.Screens.AccountCurrencies = []string{"USD", "JPY"}
				c.Screens.DefaultCountry = "GB"
			},
		},
		{
			name: "SMS provider and the wizard's second factor",
			env: map[string]string{
				"CASHIER_SMS_URL":    "https://sms.example/v1/send",
				"CASHIER_SMS_TOKEN":  "sms-secret",
				"CASHIER_WIZARD_2FA": "false",
			},
			want: func(c *config.Config) {
				c.SMS.URL = "https://sms.example/v1/send"
				c.SMS.Token = "sms-secret"
				c.Funding.WizardRequire2FA = false
			},
		},
		{
			name: "IPv6 address and path in public URL",
			args: []string{"-addr", "[::1]:8443", "-public-url", "https://example.com/cashier"},
			want: func(c *config.Config) {
				c.Addr = "[::1]:8443"
				c.PublicURL = "https://example.com/cashier"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rest, err := config.Load(tc.args, env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := config.Defaults()
			tc.want(&want)
			if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, money.Amount{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRest, rest, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole message after "config: "
	}{
		{"address without port", nil, map[string]string{"CASHIER_ADDR": "abc"},
			`CASHIER_ADDR (-addr): "abc" is not host:port`},
		{"address with bad port", []string{"-addr", "localhost:http"}, nil,
			`CASHIER_ADDR (-addr): "localhost:http" has no valid port (want 0-65535)`},
		{"address with port out of range", []string{"-addr", ":70000"}, nil,
			`CASHIER_ADDR (-addr): ":70000" has no valid port (want 0-65535)`},
		{"mysql database", nil, map[string]string{"CASHIER_DATABASE_URL": "mysql://x"},
			`CASHIER_DATABASE_URL (-database-url): "mysql://x" is not a database URL (database URL must start with sqlite: or postgres://)`},
		{"sqlite without path", []string{"-database-url", "sqlite:"}, nil,
			`CASHIER_DATABASE_URL (-database-url): "sqlite:" is not a database URL (sqlite URL has no file path (want sqlite:PATH))`},
		{"database password is not echoed", nil, map[string]string{"CASHIER_DATABASE_URL": "mysql://root:hunter2@db/x"},
			`CASHIER_DATABASE_URL (-database-url): "mysql://root:xxxxx@db/x" is not a database URL (database URL must start with sqlite: or postgres://)`},
		{"log level", nil, map[string]string{"CASHIER_LOG_LEVEL": "loud"},
			`CASHIER_LOG_LEVEL (-log-level): "loud" is not one of debug, info, warn, error`},
		{"log format", []string{"-log-format", "xml"}, nil,
			`CASHIER_LOG_FORMAT (-log-format): "xml" is not json or text`},
		{"shutdown timeout without unit", nil, map[string]string{"CASHIER_SHUTDOWN_TIMEOUT": "30"},
			`CASHIER_SHUTDOWN_TIMEOUT (-shutdown-timeout): "30" is not a positive duration such as 15s or 1m`},
		{"negative shutdown timeout", []string{"-shutdown-timeout=-1s"}, nil,
			`CASHIER_SHUTDOWN_TIMEOUT (-shutdown-timeout): "-1s" is not a positive duration such as 15s or 1m`},
		{"public URL without scheme", nil, map[string]string{"CASHIER_PUBLIC_URL": "pay.example.com"},
			`CASHIER_PUBLIC_URL (-public-url): "pay.example.com" is not an absolute http:// or https:// URL`},
		{"public URL with query", []string{"-public-url", "https://pay.example.com/?a=b"}, nil,
			`CASHIER_PUBLIC_URL (-public-url): "https://pay.example.com/?a=b" must not carry user info, a query or a fragment`},
		{"job workers not a number", nil, map[string]string{"CASHIER_JOB_WORKERS": "many"},
			`CASHIER_JOB_WORKERS (-job-workers): "many" is not a whole number from 0 to 1024`},
		{"negative job workers", []string{"-job-workers", "-1"}, nil,
			`CASHIER_JOB_WORKERS (-job-workers): "-1" is not a whole number from 0 to 1024`},
		{"job lease too short", []string{"-job-lease", "500ms"}, nil,
			`CASHIER_JOB_LEASE (-job-lease): "500ms" is not a duration from 1s to 1h such as 30s or 1m`},
		{"job lease not a duration", nil, map[string]string{"CASHIER_JOB_LEASE": "forever"},
			`CASHIER_JOB_LEASE (-job-lease): "forever" is not a duration from 1s to 1h such as 30s or 1m`},
		{"unknown flag", []string{"-port", "80"}, nil,
			`flag provided but not defined: -port`},
		{"identity mode", nil, map[string]string{"CASHIER_IDENTITY_MODE": "oauth"},
			`CASHIER_IDENTITY_MODE (-identity-mode): "oauth" is not sso or handoff`},
		{"short crm password is not echoed", nil, map[string]string{"CASHIER_CTRADER_CRM_PASSWORDS": "long-enough,short"},
			`CASHIER_CTRADER_CRM_PASSWORDS (-ctrader-crm-passwords): "xxxxx" holds password #2, which is shorter than 8 characters`},
		{"crm token lifetime below the spec's", []string{"-ctrader-crm-token-ttl", "24h"}, nil,
			`CASHIER_CTRADER_CRM_TOKEN_TTL (-ctrader-crm-token-ttl): "24h" is shorter than 168h0m0s`},
		{"one-time token lifetime too long", nil, map[string]string{"CASHIER_OT_TOKEN_TTL": "1h"},
			`CASHIER_OT_TOKEN_TTL (-ot-token-ttl): "1h" is longer than 10m0s`},
		{"network", nil, map[string]string{"CASHIER_CTRADER_ALLOWED_NETWORKS": "10.0.0.0/8,ctrader"},
			`CASHIER_CTRADER_ALLOWED_NETWORKS (-ctrader-allowed-networks): "10.0.0.0/8,ctrader" holds "ctrader", which is not a network such as 203.0.113.0/24`},
		{"frame ancestor with a path", nil, map[string]string{"CASHIER_FRAME_ANCESTORS": "https://app.ctrader.com/x"},
			`CASHIER_FRAME_ANCESTORS (-frame-ancestors): "https://app.ctrader.com/x" holds "https://app.ctrader.com/x", which is not 'self', 'none' or an origin such as https://app.ctrader.com`},
		{"none with others", nil, map[string]string{"CASHIER_FRAME_ANCESTORS": "'none' 'self'"},
			`CASHIER_FRAME_ANCESTORS (-frame-ancestors): "'none' 'self'" combines 'none' with other sources`},
		{"push lookup", nil, map[string]string{"CASHIER_PUSH_LOOKUP": "maybe"},
			`CASHIER_PUSH_LOOKUP (-push-lookup): "maybe" is not auto or off`},
		{"connector", nil, map[string]string{"CASHIER_PLATFORM_CONNECTOR": "mt5"},
			`CASHIER_PLATFORM_CONNECTOR (-platform-connector): "mt5" is not ctrader or callback`},
		{"session key is not echoed", nil, map[string]string{"CASHIER_SESSION_KEY": "abcd"},
			`CASHIER_SESSION_KEY (-session-key): "xxxxx" is not 32 bytes written as 64 hex digits or base64`},
		{"auto-approval in an unknown currency", nil, map[string]string{"CASHIER_WITHDRAWAL_AUTO_APPROVE": "XYZ:10"},
			`CASHIER_WITHDRAWAL_AUTO_APPROVE (-withdrawal-auto-approve): "XYZ:10" is not a list of CODE:AMOUNT (`},
		{"account currency", nil, map[string]string{"CASHIER_ACCOUNT_CURRENCIES": "USD,DOLLARS"},
			`CASHIER_ACCOUNT_CURRENCIES (-account-currencies): "USD,DOLLARS" holds "DOLLARS", which is not a known currency`},
		{"ctrader groups", nil, map[string]string{"CASHIER_CTRADER_GROUPS": "paper=x"},
			`CASHIER_CTRADER_GROUPS (-ctrader-groups): "paper=x" holds "paper=x", which is not demo=GROUP or live=GROUP`},
		{"spread", nil, map[string]string{"CASHIER_FX_SPREAD_BPS": "10000"},
			`CASHIER_FX_SPREAD_BPS (-fx-spread-bps): "10000" is not a whole number from 0 to 9999`},
		{"SMS URL", nil, map[string]string{"CASHIER_SMS_URL": "sms.example/send"},
			`CASHIER_SMS_URL (-sms-url): "sms.example/send" is not an absolute http:// or https:// URL`},
		{"wizard 2FA switch", []string{"-wizard-2fa=sometimes"}, nil,
			`CASHIER_WIZARD_2FA (-wizard-2fa): "sometimes" is not true or false`},
		{"sandbox switch", []string{"-sandbox=maybe"}, nil,
			`CASHIER_SANDBOX (-sandbox): "maybe" is not true or false`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := config.Load(tc.args, env(tc.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("code = %s, want %s", errs.CodeOf(err), errs.Invalid)
			}
			if msg := err.Error(); msg != "config: "+tc.want && !(strings.HasSuffix(tc.want, "(") && strings.HasPrefix(msg, "config: "+tc.want)) {
				t.Errorf("message = %q\nwant      %q", msg, "config: "+tc.want)
			}
		})
	}
}

// TestSettingsTable checks every row: a valid default, a CASHIER_ variable
// matching the flag name, and a usage sentence.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range config.Settings {
		t.Run(s.Name, func(t *testing.T) {
			if seen[s.Name] {
				t.Errorf("setting %s appears twice", s.Name)
			}
			seen[s.Name] = true
			wantEnv := "CASHIER_" + strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
			if s.Env != wantEnv {
				t.Errorf("Env = %s, want %s", s.Env, wantEnv)
			}
			var c config.Config
			if err := s.Set(&c, s.Default); err != nil {
				t.Errorf("default %q does not validate: %v", s.Default, err)
			}
			if !strings.HasSuffix(s.Usage, ".") || len(s.Usage) < 10 {
				t.Errorf("usage %q is not a sentence", s.Usage)
			}
		})
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f := config.Bind(fs, env(nil), config.Settings)
	var b bytes.Buffer
	f.Usage(&b)
	out := b.String()
	for _, s := range config.Settings {
		line := "-" + s.Name + ", " + s.Env + " (default "
		if !strings.Contains(out, line) {
			t.Errorf("usage lacks %q:\n%s", line, out)
		}
		if !strings.Contains(out, s.Usage) {
			t.Errorf("usage lacks the meaning of %s", s.Name)
		}
	}
	if !strings.Contains(out, `-addr, CASHIER_ADDR (default "127.0.0.1:8080")`) {
		t.Errorf("usage does not show the default address:\n%s", out)
	}
}

func TestSelect(t *testing.T) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := config.Bind(fs, env(map[string]string{"CASHIER_ADDR": "abc"}), config.Select("database-url", "log-level"))
	if err := fs.Parse([]string{"-addr", "x"}); err == nil {
		t.Error("a command without the addr setting accepted -addr")
	}
	// CASHIER_ADDR is not one of this command's settings, so its bad value
	// does not stop the command, and Addr keeps its default.
	c, err := f.Config()
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if c.Addr != "127.0.0.1:8080" {
		t.Errorf("Addr = %q, want the default", c.Addr)
	}
}

// TestDocumentation keeps docs/configuration.md in step with the table.
func TestDocumentation(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings {
		if !bytes.Contains(doc, []byte("`"+s.Env+"`")) || !bytes.Contains(doc, []byte("`-"+s.Name+"`")) {
			t.Errorf("docs/configuration.md does not document %s / -%s", s.Env, s.Name)
		}
		if s.Default != "" && !bytes.Contains(doc, []byte("`"+s.Default+"`")) {
			t.Errorf("docs/configuration.md does not show the default of %s (%s)", s.Env, s.Default)
		}
	}
}

// TestCheck checks the rules between settings.
func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // "" for no error
	}{
		{"defaults", nil, ""},
		{"cTrader URL without manager", map[string]string{"CASHIER_CTRADER_URL": "https://ct.example"},
			"config: CASHIER_CTRADER_URL needs CASHIER_CTRADER_MANAGER_LOGIN and CASHIER_CTRADER_MANAGER_PASSWORD"},
		{"cTrader URL with manager", map[string]string{"CASHIER_CTRADER_URL": "https://ct.example",
			"CASHIER_CTRADER_MANAGER_LOGIN": "1001", "CASHIER_CTRADER_MANAGER_PASSWORD": "x"}, ""},
		{"callback without URL", map[string]string{"CASHIER_PLATFORM_CONNECTOR": "callback"},
			"config: CASHIER_PLATFORM_CONNECTOR=callback needs CASHIER_CALLBACK_URL and CASHIER_CALLBACK_TOKEN"},
		{"callback without cTrader", map[string]string{"CASHIER_PLATFORM_CONNECTOR": "callback",
			"CASHIER_CALLBACK_URL": "https://p.example/cb", "CASHIER_CALLBACK_TOKEN": "t"},
			"config: CASHIER_PLATFORM_CONNECTOR=callback needs CASHIER_CTRADER_URL to read trading accounts"},
		{"SMTP without sender", map[string]string{"CASHIER_SMTP_HOST": "mail.example"},
			"config: CASHIER_SMTP_HOST needs CASHIER_SMTP_FROM"},
		{"CRM webhook without secret", map[string]string{"CASHIER_CRM_WEBHOOK_URL": "https://crm.example/hooks"},
			"config: CASHIER_CRM_WEBHOOK_URL needs CASHIER_CRM_WEBHOOK_SECRET"},
		{"CRM webhook with secret", map[string]string{"CASHIER_CRM_WEBHOOK_URL": "https://crm.example/hooks",
			"CASHIER_CRM_WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef"}, ""},
		{"handoff without cTrader", map[string]string{"CASHIER_IDENTITY_MODE": "handoff"},
			"config: CASHIER_IDENTITY_MODE=handoff needs CASHIER_CTRADER_URL, CASHIER_CTRADER_BROKER_CRM_NAME and CASHIER_CTRADER_BROKER_NAME to redeem cTrader's tokens"},
		{"handoff with cTrader", map[string]string{"CASHIER_IDENTITY_MODE": "handoff", "CASHIER_CTRADER_URL": "https://ct.example",
			"CASHIER_CTRADER_MANAGER_LOGIN": "1001", "CASHIER_CTRADER_MANAGER_PASSWORD": "x",
			"CASHIER_CTRADER_BROKER_CRM_NAME": "crm", "CASHIER_CTRADER_BROKER_NAME": "broker"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := config.Load(nil, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want || errs.CodeOf(err) != errs.Invalid):
				t.Errorf("Check() = %v, want %q (EINVALID)", err, tc.want)
			}
		})
	}
}
