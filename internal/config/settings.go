package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
)

// screenSettings configure the HTML screens.
var screenSettings = []Setting{
	{
		Name:    "frame-ancestors",
		Env:     "CASHIER_FRAME_ANCESTORS",
		Default: "'self'",
		Usage:   "Who may frame the screens (CSP frame-ancestors): 'self', 'none' or origins such as https://app.ctrader.com, separated by spaces or commas.",
		Set: func(c *Config, v string) error {
			sources := list(strings.ReplaceAll(v, " ", ","))
			if len(sources) == 0 {
				return fmt.Errorf("is empty (use 'none' to forbid framing)")
			}
			for _, s := range sources {
				if err := checkFrameSource(s); err != nil {
					return err
				}
			}
			if len(sources) > 1 && slices.Contains(sources, "'none'") {
				return fmt.Errorf("combines 'none' with other sources")
			}
			c.FrameAncestors = sources
			return nil
		},
	},
	{
		Name:    "hsts",
		Env:     "CASHIER_HSTS",
		Default: "false",
		Usage:   "Send Strict-Transport-Security on the screens (turn on when the public URL is https).",
		Set:     boolSetting(func(c *Config) *bool { return &c.HSTS }),
	},
	{
		Name:    "success-url",
		Env:     "CASHIER_SUCCESS_URL",
		Default: "",
		Usage:   "The success URL Spotware builds into the app; login, signup and the cashier end there. The screens are off while it is empty.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.Screens.SuccessURL = v
			return nil
		},
	},
	{
		Name:    "close-url",
		Env:     "CASHIER_CLOSE_URL",
		Default: "",
		Usage:   "Where the X control of the screens goes; empty means the success URL.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.Screens.CloseURL = v
			return nil
		},
	},
	{
		Name:    "brand-name",
		Env:     "CASHIER_BRAND_NAME",
		Default: "OpenCashier",
		Usage:   "The broker's name in the screens' header and in e-mails.",
		Set: func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" || len(v) > 100 {
				return fmt.Errorf("must be 1 to 100 characters")
			}
			c.Screens.BrandName = v
			return nil
		},
	},
	{
		Name:    "legal-entity",
		Env:     "CASHIER_LEGAL_ENTITY",
		Default: "",
		Usage:   "The broker's legal entity, shown in the screens' footer.",
		Set: func(c *Config, v string) error {
			if len(v) > 200 {
				return fmt.Errorf("is longer than 200 characters")
			}
			c.Screens.LegalEntity = v
			return nil
		},
	},
	{
		Name:    "account-environments",
		Env:     "CASHIER_ACCOUNT_ENVIRONMENTS",
		Default: "demo,live",
		Usage:   "Environments offered when a trader opens a trading account: demo, live or both, comma-separated.",
		Set: func(c *Config, v string) error {
			var envs []identity.Environment
			for _, e := range list(v) {
				if e != string(identity.Demo) && e != string(identity.Live) {
					return fmt.Errorf("names %q, which is neither demo nor live", e)
				}
				envs = append(envs, identity.Environment(e))
			}
			if len(envs) == 0 {
				return fmt.Errorf("names no environment")
			}
			c.Screens.AccountEnvironments = envs
			return nil
		},
	},
	{
		Name:    "account-currencies",
		Env:     "CASHIER_ACCOUNT_CURRENCIES",
		Default: "USD,EUR",
		Usage:   "Deposit currencies offered when a trader opens a trading account, comma-separated ISO 4217 codes.",
		Set: func(c *Config, v string) error {
			codes, err := currencies(v)
			if err != nil {
				return err
			}
			if len(codes) == 0 {
				return fmt.Errorf("names no currency")
			}
			c.Screens.AccountCurrencies = codes
			return nil
		},
	},
	{
		Name:    "inapp-deposit-path",
		Env:     "CASHIER_INAPP_DEPOSIT_PATH",
		Default: "/inapp/deposit",
		Usage:   "Path of the deposit screen cTrader opens.",
		Set:     pathSetting(func(c *Config) *string { return &c.Screens.DepositPath }),
	},
	{
		Name:    "inapp-withdraw-path",
		Env:     "CASHIER_INAPP_WITHDRAW_PATH",
		Default: "/inapp/withdraw",
		Usage:   "Path of the withdrawal screen cTrader opens.",
		Set:     pathSetting(func(c *Config) *string { return &c.Screens.WithdrawPath }),
	},
	{
		Name:    "help-url",
		Env:     "CASHIER_HELP_URL",
		Default: "",
		Usage:   "The help link on every cashier screen; empty means the built-in help page.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.Screens.HelpURL = v
			return nil
		},
	},
	{
		Name:    "support-email",
		Env:     "CASHIER_SUPPORT_EMAIL",
		Default: "",
		Usage:   "Support address shown on the cashier's help and error pages.",
		Set: func(c *Config, v string) error {
			if v != "" && identity.CheckEmail(v) != nil {
				return fmt.Errorf("is not an e-mail address")
			}
			c.Screens.SupportEmail = v
			return nil
		},
	},
	{
		Name:    "session-key",
		Env:     "CASHIER_SESSION_KEY",
		Default: "",
		Usage:   "Key that seals the cashier screens' session handles: 32 bytes as 64 hex digits or base64, the same on every replica. Empty means a random key per process (handles then do not survive a restart).",
		Set: func(c *Config, v string) error {
			if v == "" {
				c.Screens.SessionKey = nil
				return nil
			}
			key, err := hex.DecodeString(v)
			if err != nil {
				if key, err = base64.StdEncoding.DecodeString(v); err != nil {
					key, err = base64.RawURLEncoding.DecodeString(v)
				}
			}
			if err != nil || len(key) != 32 {
				return fmt.Errorf("is not 32 bytes written as 64 hex digits or base64")
			}
			c.Screens.SessionKey = key
			return nil
		},
		Show: secret,
	},
	{
		Name:    "default-country",
		Env:     "CASHIER_DEFAULT_COUNTRY",
		Default: "",
		Usage:   "Country (ISO 3166-1 alpha-2) the payment rules assume for every customer until the back office keeps profiles; empty means unknown.",
		Set: func(c *Config, v string) error {
			v = strings.ToUpper(v)
			if v != "" && !countryCode.MatchString(v) {
				return fmt.Errorf("is not a two-letter country code")
			}
			c.Screens.DefaultCountry = v
			return nil
		},
	},
	{
		Name:    "default-kyc-level",
		Env:     "CASHIER_DEFAULT_KYC_LEVEL",
		Default: "0",
		Usage:   "Verified KYC level the payment rules assume for every customer until the back office keeps profiles (0 to 9).",
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 9 {
				return fmt.Errorf("is not a whole number from 0 to 9")
			}
			c.Screens.DefaultKYCLevel = n
			return nil
		},
	},
}

// identitySettings configure identity and the cTrader-facing endpoints.
var identitySettings = []Setting{
	{
		Name:    "identity-mode",
		Env:     "CASHIER_IDENTITY_MODE",
		Default: "sso",
		Usage:   "Who owns identity: sso (the broker; cTrader calls our /oauth2 endpoints) or handoff (cTrader; we redeem its one-time tokens).",
		Set: func(c *Config, v string) error {
			switch m := identity.Mode(strings.ToLower(v)); m {
			case identity.ModeSSO, identity.ModeHandoff:
				c.Identity.Mode = m
				return nil
			}
			return fmt.Errorf("is not sso or handoff")
		},
	},
	{
		Name:    "ctrader-crm-passwords",
		Env:     "CASHIER_CTRADER_CRM_PASSWORDS",
		Default: "",
		Usage:   "Comma-separated passwords cTrader may present to /oauth2/crmApiToken, each at least 8 characters; several at once for rotation. Empty refuses every request.",
		Set: func(c *Config, v string) error {
			pws := list(v)
			for i, p := range pws {
				if len(p) < identity.MinPasswordLen {
					return fmt.Errorf("holds password #%d, which is shorter than 8 characters", i+1)
				}
			}
			c.Identity.CRMPasswords = pws
			return nil
		},
		Show: secret,
	},
	{
		Name:    "ctrader-crm-token-ttl",
		Env:     "CASHIER_CTRADER_CRM_TOKEN_TTL",
		Default: "168h",
		Usage:   "Lifetime of a crmApiToken, at least 168h (the spec's seven days).",
		Set:     durationSetting(identity.MinCRMTokenTTL, 0, func(c *Config) *time.Duration { return &c.Identity.CRMTokenTTL }),
	},
	{
		Name:    "ctrader-base-path",
		Env:     "CASHIER_CTRADER_BASE_PATH",
		Default: "",
		Usage:   "Path prefix of the cTrader-facing /oauth2/* endpoints, e.g. /cid; empty puts them at the root.",
		Set: func(c *Config, v string) error {
			if v != "" && (!strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "?#{} ")) {
				return fmt.Errorf("is not a path such as /cid (leading slash, no trailing slash)")
			}
			c.Identity.BasePath = v
			return nil
		},
	},
	{
		Name:    "ctrader-allowed-networks",
		Env:     "CASHIER_CTRADER_ALLOWED_NETWORKS",
		Default: "",
		Usage:   "Comma-separated networks (CIDR) cTrader's calls to /oauth2/* may come from; empty allows any.",
		Set: func(c *Config, v string) error {
			var nets []netip.Prefix
			for _, s := range list(v) {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("holds %q, which is not a network such as 203.0.113.0/24", s)
				}
				nets = append(nets, p.Masked())
			}
			c.Identity.AllowedNetworks = nets
			return nil
		},
	},
	{
		Name:    "ot-token-ttl",
		Env:     "CASHIER_OT_TOKEN_TTL",
		Default: "1m",
		Usage:   "Lifetime of one-time tokens (login and in-app), at most 10m; the spec says 1m.",
		Set:     durationSetting(time.Second, 10*time.Minute, func(c *Config) *time.Duration { return &c.Identity.OTTokenTTL }),
	},
	{
		Name:    "access-token-ttl",
		Env:     "CASHIER_ACCESS_TOKEN_TTL",
		Default: "2160h",
		Usage:   "Lifetime of an accessToken (\"keep me logged in\"), or never.",
		Set: func(c *Config, v string) error {
			if strings.EqualFold(v, "never") {
				c.Identity.AccessTokenTTL = -1
				return nil
			}
			return durationSetting(time.Minute, 0, func(c *Config) *time.Duration { return &c.Identity.AccessTokenTTL })(c, v)
		},
	},
	{
		Name:    "inapp-token-ttl",
		Env:     "CASHIER_INAPP_TOKEN_TTL",
		Default: "720h",
		Usage:   "Lifetime of an inappToken.",
		Set:     durationSetting(time.Minute, 0, func(c *Config) *time.Duration { return &c.Identity.InAppTokenTTL }),
	},
	{
		Name:    "cashier-session-ttl",
		Env:     "CASHIER_CASHIER_SESSION_TTL",
		Default: "30m",
		Usage:   "Lifetime of the server-side session that replaces a one-time token once a cashier screen has opened.",
		Set:     durationSetting(time.Minute, 24*time.Hour, func(c *Config) *time.Duration { return &c.Identity.CashierSessionTTL }),
	},
	{
		Name:    "reset-token-ttl",
		Env:     "CASHIER_RESET_TOKEN_TTL",
		Default: "30m",
		Usage:   "Lifetime of a password-reset link.",
		Set:     durationSetting(time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.Identity.ResetTokenTTL }),
	},
	{
		Name:    "login-lockout-threshold",
		Env:     "CASHIER_LOGIN_LOCKOUT_THRESHOLD",
		Default: "5",
		Usage:   "Failed logins in a row that lock a user out (1 to 100).",
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return fmt.Errorf("is not a whole number from 1 to 100")
			}
			c.Identity.LockoutThreshold = n
			return nil
		},
	},
	{
		Name:    "login-lockout-period",
		Env:     "CASHIER_LOGIN_LOCKOUT_PERIOD",
		Default: "15m",
		Usage:   "How long a lockout lasts.",
		Set:     durationSetting(time.Second, 0, func(c *Config) *time.Duration { return &c.Identity.LockoutPeriod }),
	},
	{
		Name:    "default-language",
		Env:     "CASHIER_DEFAULT_LANGUAGE",
		Default: "en",
		Usage:   "The broker's default language (ISO 639-1) for screens and users without one.",
		Set: func(c *Config, v string) error {
			v = strings.ToLower(v)
			if !languageCode.MatchString(v) {
				return fmt.Errorf("is not a two-letter language code")
			}
			c.Identity.DefaultLanguage = v
			return nil
		},
	},
	{
		Name:    "handoff-known-users-only",
		Env:     "CASHIER_HANDOFF_KNOWN_USERS_ONLY",
		Default: "false",
		Usage:   "In handoff mode, refuse cTID users not yet known instead of creating them.",
		Set:     boolSetting(func(c *Config) *bool { return &c.Identity.HandoffKnownUsersOnly }),
	},
}

// ctraderSettings configure the cTrader WebServices connection.
var ctraderSettings = []Setting{
	{
		Name:    "ctrader-url",
		Env:     "CASHIER_CTRADER_URL",
		Default: "",
		Usage:   "Base URL of cTrader's WebServices as Spotware issues it (https://HOST:PORT). Empty means no trading platform: no balance pushes, deposits or withdrawals.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.CTrader.URL = strings.TrimRight(v, "/")
			return nil
		},
	},
	{
		Name:    "ctrader-manager-login",
		Env:     "CASHIER_CTRADER_MANAGER_LOGIN",
		Default: "0",
		Usage:   "The WebServices manager login (required with a cTrader URL).",
		Set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("is not a manager login (a whole number)")
			}
			c.CTrader.ManagerLogin = n
			return nil
		},
	},
	{
		Name:    "ctrader-manager-password",
		Env:     "CASHIER_CTRADER_MANAGER_PASSWORD",
		Default: "",
		Usage:   "The WebServices manager password (required with a cTrader URL); prefer the environment variable to the flag.",
		Set: func(c *Config, v string) error {
			c.CTrader.ManagerPassword = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "ctrader-timeout",
		Env:     "CASHIER_CTRADER_TIMEOUT",
		Default: "10s",
		Usage:   "How long one call to cTrader may take; a balance push that gets no answer within it is in doubt.",
		Set:     durationSetting(100*time.Millisecond, 5*time.Minute, func(c *Config) *time.Duration { return &c.CTrader.Timeout }),
	},
	{
		Name:    "ctrader-broker-crm-name",
		Env:     "CASHIER_CTRADER_BROKER_CRM_NAME",
		Default: "",
		Usage:   "The brokerCrmName of cTID calls, as Spotware issued it (case-sensitive); needed to create cTIDs at signup.",
		Set: func(c *Config, v string) error {
			c.CTrader.BrokerCrmName = v
			return nil
		},
	},
	{
		Name:    "ctrader-broker-name",
		Env:     "CASHIER_CTRADER_BROKER_NAME",
		Default: "",
		Usage:   "The brokerName of trader creation and linking; needed to open trading accounts.",
		Set: func(c *Config, v string) error {
			c.CTrader.BrokerName = v
			return nil
		},
	},
	{
		Name:    "ctrader-groups",
		Env:     "CASHIER_CTRADER_GROUPS",
		Default: "demo=default,live=default",
		Usage:   "Trader group of new accounts per environment, as demo=GROUP,live=GROUP; an environment left out cannot open accounts.",
		Set: func(c *Config, v string) error {
			groups := map[string]string{}
			for _, kv := range list(v) {
				env, group, ok := strings.Cut(kv, "=")
				env, group = strings.TrimSpace(env), strings.TrimSpace(group)
				if !ok || group == "" || (env != "demo" && env != "live") {
					return fmt.Errorf("holds %q, which is not demo=GROUP or live=GROUP", kv)
				}
				if _, dup := groups[env]; dup {
					return fmt.Errorf("names %s twice", env)
				}
				groups[env] = group
			}
			c.CTrader.Groups = groups
			return nil
		},
	},
	{
		Name:    "ctrader-demo-balance",
		Env:     "CASHIER_CTRADER_DEMO_BALANCE",
		Default: "",
		Usage:   "Starting balance of new demo accounts in their currency, e.g. 10000; empty for none.",
		Set: func(c *Config, v string) error {
			if v != "" && !plainDecimal.MatchString(v) {
				return fmt.Errorf("is not a plain decimal amount such as 10000")
			}
			c.CTrader.DemoBalance = v
			return nil
		},
	},
}

// platformSettings choose how balance changes reach the platform.
var platformSettings = []Setting{
	{
		Name:    "platform-connector",
		Env:     "CASHIER_PLATFORM_CONNECTOR",
		Default: "ctrader",
		Usage:   "How balance changes reach the platform: ctrader (WebServices changebalance) or callback (seed 000's balance-update callback; accounts are still read through WebServices).",
		Set: func(c *Config, v string) error {
			switch v = strings.ToLower(v); v {
			case "ctrader", "callback":
				c.Platform.Connector = v
				return nil
			}
			return fmt.Errorf("is not ctrader or callback")
		},
	},
	{
		Name:    "callback-url",
		Env:     "CASHIER_CALLBACK_URL",
		Default: "",
		Usage:   "The platform's balance-update callback URL (with platform-connector callback).",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.Platform.CallbackURL = v
			return nil
		},
	},
	{
		Name:    "callback-token",
		Env:     "CASHIER_CALLBACK_TOKEN",
		Default: "",
		Usage:   "Bearer token sent with the balance-update callback (with platform-connector callback).",
		Set: func(c *Config, v string) error {
			c.Platform.CallbackToken = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "push-lookup",
		Env:     "CASHIER_PUSH_LOOKUP",
		Default: "off",
		Usage:   "How an in-doubt balance push is settled: auto (look the change up on the platform, which only the simulator offers) or off (an operator decides with cashier push resolve).",
		Set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "auto":
				c.Platform.PushLookup = true
				return nil
			case "off":
				c.Platform.PushLookup = false
				return nil
			}
			return fmt.Errorf("is not auto or off")
		},
	},
}

// smtpSettings configure outgoing mail.
var smtpSettings = []Setting{
	{
		Name:    "smtp-host",
		Env:     "CASHIER_SMTP_HOST",
		Default: "",
		Usage:   "SMTP server for password-reset mail and withdrawal codes; empty means no mail server (such mail fails and is logged).",
		Set: func(c *Config, v string) error {
			if strings.ContainsAny(v, " /:") {
				return fmt.Errorf("is not a host name")
			}
			c.SMTP.Host = v
			return nil
		},
	},
	{
		Name:    "smtp-port",
		Env:     "CASHIER_SMTP_PORT",
		Default: "587",
		Usage:   "SMTP port.",
		Set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("is not a port from 1 to 65535")
			}
			c.SMTP.Port = n
			return nil
		},
	},
	{
		Name:    "smtp-username",
		Env:     "CASHIER_SMTP_USERNAME",
		Default: "",
		Usage:   "SMTP user name for PLAIN authentication; empty sends without authentication.",
		Set: func(c *Config, v string) error {
			c.SMTP.Username = v
			return nil
		},
	},
	{
		Name:    "smtp-password",
		Env:     "CASHIER_SMTP_PASSWORD",
		Default: "",
		Usage:   "SMTP password.",
		Set: func(c *Config, v string) error {
			c.SMTP.Password = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "smtp-from",
		Env:     "CASHIER_SMTP_FROM",
		Default: "",
		Usage:   "Sender of the mail, e.g. Broker <no-reply@broker.example> (required with an SMTP host).",
		Set: func(c *Config, v string) error {
			c.SMTP.From = v
			return nil
		},
	},
	{
		Name:    "smtp-require-tls",
		Env:     "CASHIER_SMTP_REQUIRE_TLS",
		Default: "true",
		Usage:   "Refuse to send mail when the server does not offer STARTTLS.",
		Set:     boolSetting(func(c *Config) *bool { return &c.SMTP.RequireTLS }),
	},
	{
		Name:    "sms-url",
		Env:     "CASHIER_SMS_URL",
		Default: "",
		Usage:   "HTTP endpoint of the SMS provider for second-factor codes (POST {\"to\",\"text\"}); empty means no SMS provider.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.SMS.URL = v
			return nil
		},
	},
	{
		Name:    "sms-token",
		Env:     "CASHIER_SMS_TOKEN",
		Default: "",
		Usage:   "Bearer token sent to the SMS provider.",
		Set: func(c *Config, v string) error {
			c.SMS.Token = v
			return nil
		},
		Show: secret,
	},
}

// paymentSettings configure the payment layer.
var paymentSettings = []Setting{
	{
		Name:    "payment-methods",
		Env:     "CASHIER_PAYMENT_METHODS",
		Default: "",
		Usage:   "JSON file of the payment methods (docs/payments.md); empty means the built-in methods.",
		Set: func(c *Config, v string) error {
			c.Payments.MethodsFile = v
			return nil
		},
	},
	{
		Name:    "fx-rates",
		Env:     "CASHIER_FX_RATES",
		Default: "",
		Usage:   "JSON file of exchange rates; rates set with cashier fx win over it. Empty means only the rates set with cashier fx.",
		Set: func(c *Config, v string) error {
			c.Payments.RatesFile = v
			return nil
		},
	},
	{
		Name:    "fx-spread-bps",
		Env:     "CASHIER_FX_SPREAD_BPS",
		Default: "0",
		Usage:   "FX spread in basis points (0 to 9999) taken from the rate of every conversion.",
		Set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > 9999 {
				return fmt.Errorf("is not a whole number from 0 to 9999")
			}
			c.Payments.SpreadBps = n
			return nil
		},
	},
	{
		Name:    "sandbox",
		Env:     "CASHIER_SANDBOX",
		Default: "false",
		Usage:   "Serve the built-in sandbox payment provider under /sandbox. It moves no money and anyone who reaches it can pay: never turn it on with real trading accounts.",
		Set:     boolSetting(func(c *Config) *bool { return &c.Payments.Sandbox }),
	},
	{
		Name:    "sandbox-api-key",
		Env:     "CASHIER_SANDBOX_API_KEY",
		Default: "",
		Usage:   "API key between the cashier and its sandbox; empty means a random key per process (set it when several replicas serve one database).",
		Set: func(c *Config, v string) error {
			c.Payments.SandboxAPIKey = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "sandbox-webhook-secret",
		Env:     "CASHIER_SANDBOX_WEBHOOK_SECRET",
		Default: "",
		Usage:   "Secret that signs the sandbox's webhooks; empty means a random secret per process (set it when several replicas serve one database).",
		Set: func(c *Config, v string) error {
			c.Payments.SandboxWebhookSecret = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "sandbox-control-password",
		Env:     "CASHIER_SANDBOX_CONTROL_PASSWORD",
		Default: "",
		Usage:   "Password of the sandbox's control page (HTTP Basic, user sandbox); empty leaves the page open.",
		Set: func(c *Config, v string) error {
			c.Payments.SandboxControlPassword = v
			return nil
		},
		Show: secret,
	},
}

// fundingSettings configure deposits and withdrawals.
var fundingSettings = []Setting{
	{
		Name:    "withdrawal-auto-approve",
		Env:     "CASHIER_WITHDRAWAL_AUTO_APPROVE",
		Default: "",
		Usage:   "Largest withdrawal approved without an operator, per currency, as USD:1000.00,EUR:900; a currency left out always waits for an operator.",
		Set: func(c *Config, v string) error {
			limits, err := funding.ParseAutoApproveLimits(v)
			if err != nil {
				return fmt.Errorf("is not a list of CODE:AMOUNT (%s)", errs.MessageOf(err))
			}
			c.Funding.AutoApprove = limits
			return nil
		},
	},
	{
		Name:    "withdrawal-auto-approve-methods",
		Env:     "CASHIER_WITHDRAWAL_AUTO_APPROVE_METHODS",
		Default: "",
		Usage:   "Comma-separated payment method ids whose withdrawals may be approved automatically; empty means every method.",
		Set: func(c *Config, v string) error {
			c.Funding.AutoApproveMethods = list(v)
			return nil
		},
	},
	{
		Name:    "withdrawal-2fa",
		Env:     "CASHIER_WITHDRAWAL_2FA",
		Default: "false",
		Usage:   "Ask for a code sent by e-mail before a withdrawal leaves the trading account.",
		Set:     boolSetting(func(c *Config) *bool { return &c.Funding.Require2FA }),
	},
	{
		Name:    "wizard-2fa",
		Env:     "CASHIER_WIZARD_2FA",
		Default: "true",
		Usage:   "Make the client API's withdrawal wizard e-mail a code to users who enrolled no second factor (users who enrolled one always confirm with it).",
		Set:     boolSetting(func(c *Config) *bool { return &c.Funding.WizardRequire2FA }),
	},
	{
		Name:    "deposit-expiry",
		Env:     "CASHIER_DEPOSIT_EXPIRY",
		Default: "2h",
		Usage:   "How long a deposit waits for its payment before it expires (money that arrives later is still credited).",
		Set:     durationSetting(time.Minute, 30*24*time.Hour, func(c *Config) *time.Duration { return &c.Funding.DepositExpiry }),
	},
	{
		Name:    "withdrawal-four-eyes",
		Env:     "CASHIER_WITHDRAWAL_FOUR_EYES",
		Default: "",
		Usage:   "Per currency, the amount above which a withdrawal needs two approvers (the second another person), as USD:10000.00,EUR:9000; a currency left out needs one.",
		Set: func(c *Config, v string) error {
			limits, err := funding.ParseAutoApproveLimits(v)
			if err != nil {
				return fmt.Errorf("is not a list of CODE:AMOUNT (%s)", errs.MessageOf(err))
			}
			c.Funding.FourEyesAbove = limits
			return nil
		},
	},
}

// backOfficeSettings configure the back office: staff sessions, the
// broker's KYC API, CRM webhooks and reconciliation.
var backOfficeSettings = []Setting{
	{
		Name:    "staff-session-idle",
		Env:     "CASHIER_STAFF_SESSION_IDLE",
		Default: "30m",
		Usage:   "A back-office session ends after this long without a request.",
		Set:     durationSetting(time.Minute, 24*time.Hour, func(c *Config) *time.Duration { return &c.BackOffice.StaffSessionIdle }),
	},
	{
		Name:    "staff-session-max",
		Env:     "CASHIER_STAFF_SESSION_MAX",
		Default: "12h",
		Usage:   "A back-office session ends this long after its login, however active.",
		Set:     durationSetting(5*time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.BackOffice.StaffSessionMax }),
	},
	{
		Name:    "kyc-api-key",
		Env:     "CASHIER_KYC_API_KEY",
		Default: "",
		Usage:   "Bearer key of the broker's KYC system for PUT /api/kyc/v1/users/{id} (at least 32 characters); empty turns the KYC API off.",
		Set: func(c *Config, v string) error {
			if v != "" && len(v) < 32 {
				return fmt.Errorf("is shorter than 32 characters")
			}
			c.BackOffice.KYCAPIKey = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "crm-webhook-url",
		Env:     "CASHIER_CRM_WEBHOOK_URL",
		Default: "",
		Usage:   "URL of the broker's CRM that receives a signed webhook for every deposit and withdrawal status change; empty sends none.",
		Set: func(c *Config, v string) error {
			if err := optionalAbsURL(v); err != nil {
				return err
			}
			c.BackOffice.CRMWebhookURL = v
			return nil
		},
	},
	{
		Name:    "crm-webhook-secret",
		Env:     "CASHIER_CRM_WEBHOOK_SECRET",
		Default: "",
		Usage:   "Secret that signs the CRM webhooks (HMAC-SHA256; at least 32 characters); required with CASHIER_CRM_WEBHOOK_URL.",
		Set: func(c *Config, v string) error {
			if v != "" && len(v) < 32 {
				return fmt.Errorf("is shorter than 32 characters")
			}
			c.BackOffice.CRMWebhookSecret = v
			return nil
		},
		Show: secret,
	},
	{
		Name:    "kyc-withdrawal-level",
		Env:     "CASHIER_KYC_WITHDRAWAL_LEVEL",
		Default: "1",
		Usage:   "KYC level every withdrawal needs (0 to 3; 0 lets unverified users withdraw).",
		Set:     levelSetting(func(c *Config) *int { return &c.BackOffice.KYCWithdrawalLevel }),
	},
	{
		Name:    "kyc-verified-level",
		Env:     "CASHIER_KYC_VERIFIED_LEVEL",
		Default: "1",
		Usage:   "KYC level from which a user counts as verified; below it the unverified deposit allowance applies (0 to 3).",
		Set:     levelSetting(func(c *Config) *int { return &c.BackOffice.KYCVerifiedLevel }),
	},
	{
		Name:    "kyc-unverified-allowance",
		Env:     "CASHIER_KYC_UNVERIFIED_ALLOWANCE",
		Default: "",
		Usage:   "Per currency, the lifetime deposit total of a user below the verified KYC level, as USD:2000.00,EUR:1800; empty means no allowance rule.",
		Set: func(c *Config, v string) error {
			limits, err := funding.ParseAutoApproveLimits(v)
			if err != nil {
				return fmt.Errorf("is not a list of CODE:AMOUNT (%s)", errs.MessageOf(err))
			}
			c.BackOffice.KYCUnverifiedAllowance = limits
			return nil
		},
	},
	{
		Name:    "reconcile-every",
		Env:     "CASHIER_RECONCILE_EVERY",
		Default: "1h",
		Usage:   "Interval of the scheduled reconciliation of the ledger against the platform and the providers; 0 runs it only on demand (cashier reconcile).",
		Set: func(c *Config, v string) error {
			if v == "0" {
				c.BackOffice.ReconcileEvery = 0
				return nil
			}
			return durationSetting(time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.BackOffice.ReconcileEvery })(c, v)
		},
	},
}

// Check checks the settings that depend on each other, after every setting
// has been resolved. It returns an errs.Invalid error naming the settings.
func (c Config) Check() error {
	const op = "config"
	switch {
	case c.CTrader.URL != "" && (c.CTrader.ManagerLogin <= 0 || c.CTrader.ManagerPassword == ""):
		return errs.E(errs.Invalid, op, "CASHIER_CTRADER_URL needs CASHIER_CTRADER_MANAGER_LOGIN and CASHIER_CTRADER_MANAGER_PASSWORD")
	case c.Platform.Connector == "callback" && (c.Platform.CallbackURL == "" || c.Platform.CallbackToken == ""):
		return errs.E(errs.Invalid, op, "CASHIER_PLATFORM_CONNECTOR=callback needs CASHIER_CALLBACK_URL and CASHIER_CALLBACK_TOKEN")
	case c.Platform.Connector == "callback" && c.CTrader.URL == "":
		return errs.E(errs.Invalid, op, "CASHIER_PLATFORM_CONNECTOR=callback needs CASHIER_CTRADER_URL to read trading accounts")
	case c.BackOffice.CRMWebhookURL != "" && c.BackOffice.CRMWebhookSecret == "":
		return errs.E(errs.Invalid, op, "CASHIER_CRM_WEBHOOK_URL needs CASHIER_CRM_WEBHOOK_SECRET")
	case c.SMTP.Host != "" && c.SMTP.From == "":
		return errs.E(errs.Invalid, op, "CASHIER_SMTP_HOST needs CASHIER_SMTP_FROM")
	case c.Identity.Mode == identity.ModeHandoff && (c.CTrader.URL == "" || c.CTrader.BrokerCrmName == "" || c.CTrader.BrokerName == ""):
		return errs.E(errs.Invalid, op, "CASHIER_IDENTITY_MODE=handoff needs CASHIER_CTRADER_URL, CASHIER_CTRADER_BROKER_CRM_NAME and CASHIER_CTRADER_BROKER_NAME to redeem cTrader's tokens")
	}
	return nil
}

var (
	countryCode  = regexp.MustCompile(`^[A-Z]{2}$`)
	languageCode = regexp.MustCompile(`^[a-z]{2}$`)
	plainDecimal = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,8})?$`)
)

// list splits a comma-separated value, trimming spaces and dropping empty
// entries.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// currencies parses a comma-separated list of currency codes.
func currencies(v string) ([]string, error) {
	var out []string
	for _, code := range list(v) {
		cur, err := money.LookupCurrency(strings.ToUpper(code))
		if err != nil {
			return nil, fmt.Errorf("holds %q, which is not a known currency", code)
		}
		out = append(out, cur.Code)
	}
	return out, nil
}

// secret hides a secret's value in messages.
func secret(v string) string {
	if v == "" {
		return ""
	}
	return "xxxxx"
}

// checkFrameSource accepts 'self', 'none' and http(s) origins (a leading
// "*." in the host is allowed, as CSP allows it).
func checkFrameSource(s string) error {
	if s == "'self'" || s == "'none'" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || strings.ContainsAny(s, ";'\"") {
		return fmt.Errorf("holds %q, which is not 'self', 'none' or an origin such as https://app.ctrader.com", s)
	}
	return nil
}

// optionalAbsURL accepts "" or an absolute http(s) URL.
func optionalAbsURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("is not an absolute http:// or https:// URL")
	}
	return nil
}

// levelSetting parses a KYC level from 0 to 3.
func levelSetting(field func(c *Config) *int) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3 {
			return fmt.Errorf("is not a KYC level from 0 to 3")
		}
		*field(c) = n
		return nil
	}
}

func boolSetting(field func(c *Config) *bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("is not true or false")
		}
		*field(c) = b
		return nil
	}
}

func pathSetting(field func(c *Config) *string) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		if !strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.ContainsAny(v, "?#{} ") {
			return fmt.Errorf("is not a path such as /inapp/deposit")
		}
		*field(c) = v
		return nil
	}
}

// durationSetting parses a Go duration within [lo, hi] (hi 0: no upper
// bound).
func durationSetting(lo, hi time.Duration, field func(c *Config) *time.Duration) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d <= 0:
			return fmt.Errorf("is not a positive duration such as 30m or 168h")
		case d < lo:
			return fmt.Errorf("is shorter than %s", lo)
		case hi > 0 && d > hi:
			return fmt.Errorf("is longer than %s", hi)
		}
		*field(c) = d
		return nil
	}
}
