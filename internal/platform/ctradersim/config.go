package ctradersim

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/opencashier/cashier/internal/clock"
)

// Config configures a simulator. The zero Config is usable: no managers, no
// traders, the history extension on, faults off, the system clock.
type Config struct {
	// Addr is where Start listens. Default "127.0.0.1:0" (a free port).
	Addr string

	Clock  clock.Clock  // time source for timestamps, token lifetimes and rate limits; default clock.System
	Logger *slog.Logger // default: discard

	Seed Seed // the state the simulator starts with and returns to on Reset

	// BrokerName is the brokerName traders get when a create request names
	// none, and the one link requests must name. Default "demo_broker".
	BrokerName string
	// BrokerCrmName is the brokerCrmName cTID requests must carry.
	// Default "demo_crm".
	BrokerCrmName string
	// Environment is the environmentName link requests must carry.
	// Default "demo".
	Environment string
	// Groups, when not empty, are the only groupName values a trader may
	// have; others get TRADER_GROUP_NOT_FOUND.
	Groups []string

	// DisableHistoryExtension turns off the simulator-only endpoint
	// GET /v2/webserv/traders/{login}/balancehistory (it then answers 404,
	// as real cTrader presumably does).
	DisableHistoryExtension bool
	// HandoffTTL is the lifetime of in-app handoff tokens. Default 60 s.
	HandoffTTL time.Duration
	// CallbackToken is the Bearer token of seed 000's balance-update
	// callback. Empty disables POST /ctrader/callback/balance-update.
	CallbackToken string
	// WriteLimitPerHour, when positive, is how many non-GET WebServices
	// requests one manager may make per clock hour before getting
	// REQUEST_FREQUENCY_EXCEEDED.
	WriteLimitPerHour int
	// ListPageSize is the most traders one list answer holds (then hasMore is
	// true). Default 500.
	ListPageSize int
	// AdminToken, when set, must be sent as "Authorization: Bearer …" to
	// the /_sim/ admin API.
	AdminToken string

	Faults FaultConfig // injected faults; see FaultConfig
	App    AppConfig   // the fake cTrader app
}

// AppConfig configures the fake cTrader app served under /app/.
type AppConfig struct {
	// BrokerURL is the broker CRM base URL (OpenCashier), e.g.
	// http://127.0.0.1:8080. The app calls {BrokerURL}/oauth2/... and opens
	// {BrokerURL}/auth/login and {BrokerURL}/inapp/{action}.
	BrokerURL string
	// SuccessURL is the success URL the broker redirects to when a screen is
	// done. The app can only see the frame arrive there when it is a page of
	// the simulator's own origin; its path is served as the success page.
	// Empty means /app/success on the simulator.
	SuccessURL string
	// CRMPassword is the password shared with the broker for
	// POST /oauth2/crmApiToken.
	CRMPassword string
	// Handoff switches the app to the one-time-token handoff: it issues its
	// own in-app tokens (redeemed at /ctid2/inAppToken/redeem) instead of
	// asking the broker's /oauth2/onetime/generate.
	Handoff bool
	// HTTPClient calls the broker. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Seed is the simulator's starting state: managers, trading accounts and cTID
// users. The JSON form is what `cashier sim -config FILE` reads.
type Seed struct {
	Managers []Manager    `json:"managers"`
	Traders  []TraderSeed `json:"traders"`
	Users    []UserSeed   `json:"users"`
}

// Manager is a WebServices manager account.
type Manager struct {
	Login    int64  `json:"login"`
	Password string `json:"password"` // plain; clients send its MD5 hex
	// ReadOnly managers may read but every write gets NOT_ENOUGH_RIGHTS.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// TraderSeed is a trading account present from the start.
type TraderSeed struct {
	Login    int64  `json:"login"`
	Currency string `json:"currency"` // depositCurrency; moneyDigits follow the money package's digits
	Balance  string `json:"balance"`  // exact decimal, e.g. "1000.00"
	Password string `json:"password"` // plain trader password (its MD5 is what link requests send)

	GroupName  string `json:"groupName,omitempty"`  // default "default"
	BrokerName string `json:"brokerName,omitempty"` // default Config.BrokerName
	Name       string `json:"name,omitempty"`
	LastName   string `json:"lastName,omitempty"`
	Email      string `json:"email,omitempty"`
}

// UserSeed is a cTID user present from the start, with the trading accounts
// linked to it.
type UserSeed struct {
	UserID            int64   `json:"userId"`
	Email             string  `json:"email"`
	NickName          string  `json:"nickName,omitempty"`
	PreferredLanguage string  `json:"preferredLanguage,omitempty"`
	Logins            []int64 `json:"logins,omitempty"`
}

// DemoSeed returns the seed `cashier sim` uses when given no -config: one
// manager (login 1001, password "manager-password") and three users with
// accounts in USD, EUR, JPY and BTC (trader password "trader-password").
func DemoSeed() Seed {
	const pw = "trader-password"
	return Seed{
		Managers: []Manager{{Login: 1001, Password: "manager-password"}},
		Traders: []TraderSeed{
			{Login: 3000001, Currency: "USD", Balance: "1000.00", Password: pw, Name: "Alice", LastName: "Archer", Email: "alice@example.com"},
			{Login: 3000002, Currency: "EUR", Balance: "250.00", Password: pw, Name: "Alice", LastName: "Archer", Email: "alice@example.com"},
			{Login: 3000003, Currency: "JPY", Balance: "150000", Password: pw, Name: "Bob", LastName: "Baker", Email: "bob@example.com"},
			{Login: 3000004, Currency: "BTC", Balance: "0.05000000", Password: pw, Name: "Carol", LastName: "Cole", Email: "carol@example.com"},
		},
		Users: []UserSeed{
			{UserID: 10000001, Email: "alice@example.com", NickName: "alice", PreferredLanguage: "en", Logins: []int64{3000001, 3000002}},
			{UserID: 10000002, Email: "bob@example.com", NickName: "bob", PreferredLanguage: "de", Logins: []int64{3000003}},
			{UserID: 10000003, Email: "carol@example.com", NickName: "carol", PreferredLanguage: "en", Logins: []int64{3000004}},
		},
	}
}

func (c *Config) withDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BrokerName == "" {
		c.BrokerName = "demo_broker"
	}
	if c.BrokerCrmName == "" {
		c.BrokerCrmName = "demo_crm"
	}
	if c.Environment == "" {
		c.Environment = "demo"
	}
	if c.HandoffTTL <= 0 {
		c.HandoffTTL = 60 * time.Second
	}
	if c.ListPageSize <= 0 {
		c.ListPageSize = 500
	}
	if c.App.HTTPClient == nil {
		c.App.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
}
