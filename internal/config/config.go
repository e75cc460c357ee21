// Package config holds the settings of the cashier binary. Every setting is
// one row of the Settings table: a flag name, a CASHIER_* environment
// variable, a default, a usage line, and a function that parses and
// validates the text into Config. A flag wins over the environment variable,
// which wins over the default.
//
// To add a setting, add a field to Config and a row to Settings; the flag,
// the environment variable, the help text of every command that uses it,
// and docs/configuration.md (checked by a test) follow from that row.
package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Config is the resolved, validated configuration.
type Config struct {
	// DatabaseURL is "sqlite:PATH" or a postgres:// URL.
	DatabaseURL string
	// Addr is the host:port the HTTP server listens on.
	Addr string
	// PublicURL is the external base URL (scheme, host, optional path,
	// without a trailing slash). Empty means "http://" + the address the
	// server actually listens on.
	PublicURL string
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// LogFormat is "json" or "text".
	LogFormat string
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight work before it is cut off.
	ShutdownTimeout time.Duration
	// JobWorkers is the number of background job workers serve runs.
	JobWorkers int
	// JobLease is how long a worker's claim holds a job before another
	// worker may take it over (after a crash, say).
	JobLease time.Duration
	// FrameAncestors are the CSP frame-ancestors sources of the HTML
	// screens: 'self', 'none' or origins such as https://app.ctrader.com.
	FrameAncestors []string
	// HSTS adds Strict-Transport-Security to the HTML screens.
	HSTS bool

	Identity   Identity
	Screens    Screens
	CTrader    CTrader
	Platform   Platform
	SMTP       SMTP
	SMS        SMS
	Payments   Payments
	Funding    Funding
	BackOffice BackOffice
}

// Identity holds the identity settings (docs/identity.md).
type Identity struct {
	Mode identity.Mode
	// CRMPasswords are the passwords cTrader may present to
	// /oauth2/crmApiToken; empty refuses every request.
	CRMPasswords []string
	CRMTokenTTL  time.Duration
	// BasePath prefixes the /oauth2/* endpoints, e.g. "/cid"; empty for
	// the root.
	BasePath string
	// AllowedNetworks, when not empty, are the only networks cTrader's
	// calls may come from.
	AllowedNetworks []netip.Prefix
	OTTokenTTL      time.Duration
	// AccessTokenTTL is negative for "never expires".
	AccessTokenTTL        time.Duration
	InAppTokenTTL         time.Duration
	CashierSessionTTL     time.Duration
	ResetTokenTTL         time.Duration
	LockoutThreshold      int
	LockoutPeriod         time.Duration
	DefaultLanguage       string
	HandoffKnownUsersOnly bool
}

// Screens holds the settings of the HTML screens (login, signup, reset,
// account creation, the in-app cashier).
type Screens struct {
	// SuccessURL is the success URL Spotware builds into the app; the
	// screens are off without it.
	SuccessURL string
	// CloseURL is where the X control goes; empty means SuccessURL.
	CloseURL            string
	BrandName           string
	LegalEntity         string
	AccountEnvironments []identity.Environment
	AccountCurrencies   []string
	DepositPath         string
	WithdrawPath        string
	// HelpURL is the cashier's help link; empty means the built-in page.
	HelpURL      string
	SupportEmail string
	// SessionKey seals the cashier screens' session handles (32 bytes);
	// nil means a random key per process.
	SessionKey []byte
	// DefaultCountry and DefaultKYCLevel describe every customer until the
	// back office keeps profiles.
	DefaultCountry  string
	DefaultKYCLevel int
}

// CTrader holds the cTrader WebServices connection and the broker's names
// at cTrader.
type CTrader struct {
	// URL is the WebServices base URL; empty means no trading platform.
	URL             string
	ManagerLogin    int64
	ManagerPassword string
	Timeout         time.Duration
	BrokerCrmName   string
	BrokerName      string
	// Groups maps "demo"/"live" to the trader group of new accounts.
	Groups      map[string]string
	DemoBalance string
}

// Platform chooses how balance changes reach the trading platform.
type Platform struct {
	// Connector is "ctrader" (changebalance) or "callback" (seed 000's
	// balance-update callback).
	Connector     string
	CallbackURL   string
	CallbackToken string
	// PushLookup lets in-doubt pushes be settled by looking the change up
	// on the platform; false leaves them to an operator.
	PushLookup bool
}

// SMTP configures outgoing mail; an empty Host means no mail server.
type SMTP struct {
	Host       string
	Port       int
	Username   string
	Password   string
	From       string
	RequireTLS bool
}

// SMS configures the HTTP provider that sends second-factor codes by SMS;
// an empty URL means no SMS provider (SMS codes cannot be sent).
type SMS struct {
	URL   string
	Token string
}

// Payments holds the payment-layer settings (docs/payments.md).
type Payments struct {
	// MethodsFile is the payment methods file; empty means the built-in
	// methods.
	MethodsFile string
	// RatesFile is a static exchange-rates file; empty means none.
	RatesFile string
	SpreadBps int64
	// Sandbox serves the built-in sandbox provider under /sandbox.
	Sandbox                bool
	SandboxAPIKey          string
	SandboxWebhookSecret   string
	SandboxControlPassword string
}

// Funding holds the deposit and withdrawal rules.
type Funding struct {
	AutoApprove        map[string]money.Amount
	AutoApproveMethods []string
	Require2FA         bool
	DepositExpiry      time.Duration
	// WizardRequire2FA makes the client API's withdrawal wizard (seed 002)
	// e-mail a code to users who enrolled no second factor.
	WizardRequire2FA bool
	// FourEyesAbove is, per currency, the amount above which a withdrawal
	// needs two approvers.
	FourEyesAbove map[string]money.Amount
}

// BackOffice holds the settings of the back office (docs/back-office.md):
// staff sessions, the broker's KYC API, CRM webhooks and reconciliation.
type BackOffice struct {
	// StaffSessionIdle and StaffSessionMax bound a staff session: it ends
	// after this long without a request, and this long after login.
	StaffSessionIdle time.Duration
	StaffSessionMax  time.Duration
	// KYCAPIKey is the bearer key of the broker's KYC system; empty turns
	// the KYC API off.
	KYCAPIKey string
	// CRMWebhookURL receives a signed webhook for every status change;
	// empty sends none. CRMWebhookSecret signs them.
	CRMWebhookURL    string
	CRMWebhookSecret string
	// ReconcileEvery is the interval of the scheduled reconciliation; zero
	// runs it only on demand.
	ReconcileEvery time.Duration
	// KYCWithdrawalLevel is the KYC level every withdrawal needs (0: none);
	// KYCVerifiedLevel is the level from which a user counts as verified;
	// KYCUnverifiedAllowance is, per currency, the lifetime deposit total
	// of a user below it (empty: no allowance rule).
	KYCWithdrawalLevel     int
	KYCVerifiedLevel       int
	KYCUnverifiedAllowance map[string]money.Amount
}

// Setting is one configuration entry.
type Setting struct {
	// Name is the flag name, e.g. "database-url".
	Name string
	// Env is the environment variable, e.g. "CASHIER_DATABASE_URL".
	Env string
	// Default is the value used when neither flag nor variable is set. It
	// must be valid (a test checks every row).
	Default string
	// Usage says what the setting means, in one sentence.
	Usage string
	// Set parses and validates value and stores it in c. Its error message
	// describes the problem without repeating the setting's name, which
	// the caller adds.
	Set func(c *Config, value string) error
	// Show renders a value for messages; nil shows it as is. Settings that
	// may carry secrets use it to hide them.
	Show func(value string) string
}

// Settings is the table of every setting, in the order help lists them.
var Settings = slices.Concat(generalSettings, screenSettings, identitySettings, ctraderSettings,
	platformSettings, smtpSettings, paymentSettings, fundingSettings, backOfficeSettings)

// generalSettings are the settings of the server itself.
var generalSettings = []Setting{
	{
		Name:    "database-url",
		Env:     "CASHIER_DATABASE_URL",
		Default: "sqlite:cashier.db",
		Usage:   "Database: sqlite:PATH (a file, created if missing) or a postgres:// URL.",
		Set: func(c *Config, v string) error {
			if _, _, err := sqlstore.ParseURL(v); err != nil {
				return fmt.Errorf("is not a database URL (%s)", errs.MessageOf(err))
			}
			c.DatabaseURL = v
			return nil
		},
		Show: RedactURL,
	},
	{
		Name:    "addr",
		Env:     "CASHIER_ADDR",
		Default: "127.0.0.1:8080",
		Usage:   "Address (host:port) the HTTP server listens on; port 0 picks a free port.",
		Set: func(c *Config, v string) error {
			host, port, err := net.SplitHostPort(v)
			if err != nil {
				return fmt.Errorf("is not host:port")
			}
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || (port != "0" && n == 0) {
				return fmt.Errorf("has no valid port (want 0-65535)")
			}
			if strings.ContainsAny(host, " /") {
				return fmt.Errorf("has an invalid host %q", host)
			}
			c.Addr = v
			return nil
		},
	},
	{
		Name:    "public-url",
		Env:     "CASHIER_PUBLIC_URL",
		Default: "",
		Usage:   "External base URL that browsers and the trading platform use to reach the cashier; empty means http:// plus the listen address.",
		Set: func(c *Config, v string) error {
			if v == "" {
				c.PublicURL = ""
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("is not an absolute http:// or https:// URL")
			}
			if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return fmt.Errorf("must not carry user info, a query or a fragment")
			}
			c.PublicURL = strings.TrimRight(v, "/")
			return nil
		},
	},
	{
		Name:    "log-level",
		Env:     "CASHIER_LOG_LEVEL",
		Default: "info",
		Usage:   "Lowest level logged: debug, info, warn or error.",
		Set: func(c *Config, v string) error {
			levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
			l, ok := levels[strings.ToLower(v)]
			if !ok {
				return fmt.Errorf("is not one of debug, info, warn, error")
			}
			c.LogLevel = l
			return nil
		},
	},
	{
		Name:    "log-format",
		Env:     "CASHIER_LOG_FORMAT",
		Default: "json",
		Usage:   "Log format on standard error: json (one object per line) or text.",
		Set: func(c *Config, v string) error {
			switch v = strings.ToLower(v); v {
			case "json", "text":
				c.LogFormat = v
				return nil
			}
			return fmt.Errorf("is not json or text")
		},
	},
	{
		Name:    "shutdown-timeout",
		Env:     "CASHIER_SHUTDOWN_TIMEOUT",
		Default: "15s",
		Usage:   "How long a graceful shutdown (SIGINT, SIGTERM) waits for in-flight requests and jobs before cutting them off.",
		Set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("is not a positive duration such as 15s or 1m")
			}
			c.ShutdownTimeout = d
			return nil
		},
	},
	{
		Name:    "job-workers",
		Env:     "CASHIER_JOB_WORKERS",
		Default: "4",
		Usage:   "Number of background job workers serve runs (0 runs none, for replicas that only answer requests).",
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1024 {
				return fmt.Errorf("is not a whole number from 0 to 1024")
			}
			c.JobWorkers = n
			return nil
		},
	},
	{
		Name:    "job-lease",
		Env:     "CASHIER_JOB_LEASE",
		Default: "1m",
		Usage:   "How long a worker's claim holds a job: a job whose worker died (a crash, a killed process) runs again once its lease ends. Running jobs renew it every third of it. From 1s to 1h.",
		Set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > time.Hour {
				return fmt.Errorf("is not a duration from 1s to 1h such as 30s or 1m")
			}
			c.JobLease = d
			return nil
		},
	},
}

// Select returns the rows of Settings with the given flag names, in table
// order. It panics on an unknown name, which is a programming error.
func Select(names ...string) []Setting {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Setting
	for _, s := range Settings {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for n := range want {
		panic("config.Select: unknown setting " + n)
	}
	return out
}

// Defaults returns the configuration with every setting at its default.
func Defaults() Config {
	var c Config
	for _, s := range Settings {
		if err := s.Set(&c, s.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s is invalid: %v", s.Env, err))
		}
	}
	return c
}

// RedactURL shows a URL with its password replaced by "xxxxx"; text that is
// not a URL is shown as is.
func RedactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}

// Flags binds a set of settings to a flag.FlagSet and the environment.
type Flags struct {
	settings []Setting
	getenv   func(string) string
	values   map[string]*flagValue
}

// flagValue records a flag's text and whether it was given.
type flagValue struct {
	text string
	set  bool
}

func (v *flagValue) String() string { return v.text }

func (v *flagValue) Set(s string) error {
	v.text, v.set = s, true
	return nil
}

// Bind registers a string flag for each setting on fs and returns the
// binding. getenv reads the environment (os.Getenv in production).
func Bind(fs *flag.FlagSet, getenv func(string) string, settings []Setting) *Flags {
	f := &Flags{settings: settings, getenv: getenv, values: map[string]*flagValue{}}
	for _, s := range settings {
		v := &flagValue{text: s.Default}
		f.values[s.Name] = v
		fs.Var(v, s.Name, s.Usage)
	}
	return f
}

// Config resolves every bound setting (flag, else environment variable,
// else default) on top of Defaults, after fs.Parse. It returns an
// errs.Invalid error naming the environment variable and flag of the first
// setting that does not validate, e.g.
// `CASHIER_ADDR (-addr): "abc" is not host:port`.
func (f *Flags) Config() (Config, error) {
	c := Defaults()
	for _, s := range f.settings {
		value := s.Default
		if v := f.values[s.Name]; v.set {
			value = v.text
		} else if env := f.getenv(s.Env); env != "" {
			value = env
		}
		if err := s.Set(&c, value); err != nil {
			show := value
			if s.Show != nil {
				show = s.Show(value)
			}
			return Config{}, errs.Ef(errs.Invalid, "config", "%s (-%s): %q %v", s.Env, s.Name, show, err)
		}
	}
	return c, nil
}

// Usage writes the help for the bound settings: for each, its flag,
// environment variable, default and meaning.
func (f *Flags) Usage(w io.Writer) {
	WriteUsage(w, f.settings)
}

// WriteUsage writes the help for settings, as Flags.Usage does.
func WriteUsage(w io.Writer, settings []Setting) {
	fmt.Fprintln(w, "Settings (a flag wins over its environment variable, which wins over the default):")
	for _, s := range settings {
		def := fmt.Sprintf("%q", s.Default)
		if s.Default == "" {
			def = "empty"
		}
		fmt.Fprintf(w, "\n  -%s, %s (default %s)\n", s.Name, s.Env, def)
		fmt.Fprintf(w, "      %s\n", s.Usage)
	}
}

// Load parses args as flags for every setting, reading the environment
// through getenv. It returns the configuration and the arguments left after
// the flags. Errors are errs.Invalid: a malformed flag, or a setting that
// does not validate (see Flags.Config).
func Load(args []string, getenv func(string) string) (Config, []string, error) {
	fs := flag.NewFlagSet("cashier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Bind(fs, getenv, Settings)
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, errs.Ef(errs.Invalid, "config", "%v", err)
	}
	c, err := f.Config()
	if err != nil {
		return Config{}, nil, err
	}
	return c, fs.Args(), nil
}
