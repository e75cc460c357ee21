package main

import (
	"context"
	"net/http"
	"time"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpapi/clientapi"
	"github.com/opencashier/cashier/internal/httpapi/wizardapi"
	"github.com/opencashier/cashier/internal/idempotency"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/ratelimit"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

// The client API's periodic work.
const (
	purgeEvery        = time.Hour
	microDepositEvery = time.Minute
	// withdrawalSyncEvery is how often cash-transfer withdrawals take the
	// outcome of their funding withdrawals.
	withdrawalSyncEvery = 5 * time.Second
	// tokenKeep is how long expired or revoked client tokens are kept
	// (for the refresh-token reuse check) before they are purged.
	tokenKeep = 24 * time.Hour
)

// The client API's auth routes (clientauth.Handler.Routes).
var authRoutes = []string{"POST /api/v2/auth/login", "POST /api/v2/auth/refresh", "POST /api/v2/auth/logout"}

// The seed 003 paths (clientapi.Handler.Routes registers the methods under
// them; its mux answers 404 and 405 for the rest).
var clientAPIPaths = []string{"/banks", "/banks/", "/cash-transfer", "/transactions", "/transactions/"}

// buildClientAPI composes the client API of seeds 002 and 003: bearer
// tokens (with the user's second factor at login), the withdrawal wizard,
// bank linking and cash transfers, every POST behind the Idempotency-Key
// middleware (except the auth endpoints, which have no user yet and whose
// answers hold tokens that must not be stored). It needs funding and the
// payment provider; without them it is off. It returns errs.Invalid for SMS
// settings that do not work, and the packages' other errors.
func buildClientAPI(w wiring, a *app, ids *identity.Service, mailer mail.Mailer, sec func(http.Handler) http.Handler) error {
	cfg := w.cfg
	if a.funding == nil || a.provider == nil {
		a.off["client api"] = "the client API (login, withdrawal wizard, banks, cash transfers) needs deposits and withdrawals"
		return nil
	}

	sms := w.sms
	if sms == nil && cfg.SMS.URL != "" {
		h, err := twofactor.NewHTTPSMS(cfg.SMS.URL, cfg.SMS.Token, nil)
		if err != nil {
			return err
		}
		sms = h
	}
	if sms == nil {
		a.off["sms"] = "CASHIER_SMS_URL is not set: users enrolled for SMS codes cannot receive one"
	}
	tfDeps := twofactor.Deps{DB: w.db, Clock: w.clock, Mailer: mailer}
	if sms != nil {
		tfDeps.SMS = sms
	}
	tf, err := twofactor.New(tfDeps, twofactor.Config{Issuer: cfg.Screens.BrandName})
	if err != nil {
		return err
	}
	auth, err := clientauth.New(clientauth.Options{DB: w.db, Clock: w.clock,
		Passwords: clientauth.IdentityPasswords{Identity: ids}, SecondFactor: twofactor.LoginFactor{Service: tf}})
	if err != nil {
		return err
	}
	idem, err := idempotency.New(w.db, idempotency.Options{Clock: w.clock})
	if err != nil {
		return err
	}
	customers := func(ctx context.Context, userID string) (withdrawwizard.Customer, error) {
		u, err := ids.UserByID(ctx, userID)
		if err != nil {
			return withdrawwizard.Customer{}, errs.Wrap("cashier: customer", err)
		}
		c := funding.Customer{UserID: u.ID, Email: u.Email, Lang: u.Language, Country: cfg.Screens.DefaultCountry, KYCLevel: cfg.Screens.DefaultKYCLevel}
		if a.compliance != nil {
			p, err := a.compliance.Profile(ctx, u.ID)
			if err != nil {
				return withdrawwizard.Customer{}, errs.Wrap("cashier: customer", err)
			}
			c.Country, c.KYCLevel = p.Country, p.Level
		}
		return withdrawwizard.Customer{Customer: c, Name: u.Email}, nil
	}
	bank, err := banking.New(banking.Options{DB: w.db, Clock: w.clock, Accounts: ids,
		Balances: banking.FundingBalances{Funding: a.funding}, Rail: banking.PayoutRail{Provider: a.provider}, Funds: a.funding,
		Customers: func(ctx context.Context, userID string) (funding.Customer, error) {
			c, err := customers(ctx, userID)
			return c.Customer, err
		}, Logger: w.log})
	if err != nil {
		return err
	}
	wiz, err := withdrawwizard.New(withdrawwizard.Deps{DB: w.db, Clock: w.clock, Funding: a.funding, Pricer: a.payments,
		TwoFactor: tf, Customers: customers}, withdrawwizard.Config{Require2FA: cfg.Funding.WizardRequire2FA})
	if err != nil {
		return err
	}
	a.twoFactor, a.banking = tf, bank

	// Login, refresh and logout.
	authMux := http.NewServeMux()
	clientauth.NewHandler(auth, ratelimit.New(time.Second, 10, w.clock)).Routes(authMux)
	for _, p := range authRoutes {
		a.mount(p, sec(authMux))
	}

	// Seed 002: the wizard reads the caller that clientauth.Middleware
	// found; its POSTs go through the Idempotency-Key middleware.
	wizMux := http.NewServeMux()
	wh, err := wizardapi.New(wizardapi.Options{Wizard: wiz, Authenticate: func(r *http.Request) (string, error) {
		if id := clientauth.UserID(r.Context()); id != "" {
			return id, nil
		}
		return auth.Authenticate(r.Context(), clientauth.BearerToken(r))
	}, TwoFactor: tf, Clock: w.clock, Profiles: func(ctx context.Context, userID string) (wizardapi.Profile, error) {
		c, err := customers(ctx, userID)
		return wizardapi.Profile{Email: c.Email, Name: c.Name}, err
	}})
	if err != nil {
		return err
	}
	wh.Routes(wizMux)
	wizard := sec(clientauth.Middleware(auth, idem.Middleware(wizMux)))
	for _, p := range []string{wizardapi.RouteStart, wizardapi.RouteSubmit, wizardapi.RouteConfirm} {
		a.mount(p, wizard)
	}

	// The user's own second factor: behind clientauth, not behind the
	// Idempotency-Key middleware (a stored answer would keep a TOTP secret).
	tfMux := http.NewServeMux()
	wh.TwoFactorRoutes(tfMux)
	enrolment := sec(clientauth.Middleware(auth, tfMux))
	for _, p := range wizardapi.TwoFactorRoutes {
		a.mount(p, enrolment)
	}

	// Seed 003: clientapi wraps every route in clientauth and idempotency.
	api, err := clientapi.New(clientapi.Deps{Auth: auth, Idempotency: idem, Banking: bank})
	if err != nil {
		return err
	}
	apiMux := http.NewServeMux()
	api.Routes(apiMux)
	for _, p := range clientAPIPaths {
		a.mount(p, sec(apiMux))
	}

	a.periodic = append(a.periodic,
		periodic{name: "idempotency.purge", every: purgeEvery, run: func(ctx context.Context) (int64, error) { return idem.Purge(ctx) }},
		periodic{name: "clientauth.purge", every: purgeEvery, run: func(ctx context.Context) (int64, error) {
			return auth.PurgeExpired(ctx, tokenKeep)
		}},
		periodic{name: "banking.micro_deposits", every: microDepositEvery, run: func(ctx context.Context) (int64, error) {
			n, err := bank.SendPendingMicroDeposits(ctx)
			return int64(n), err
		}},
		periodic{name: "banking.withdrawals", every: withdrawalSyncEvery, run: func(ctx context.Context) (int64, error) {
			n, err := bank.SyncWithdrawals(ctx)
			return int64(n), err
		}},
	)
	return nil
}
