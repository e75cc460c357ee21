// Package ctraderid adapts the cTrader WebServices client (platform/ctrader)
// to the ports identity declares: cTID creation and linking
// (identity.CTIDProvisioner), trader creation (identity.TraderCreator),
// handoff redemption (identity.HandoffRedeemer) and trader lookup
// (identity.TraderLookup).
package ctraderid

import (
	"context"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform/ctrader"
)

// Config holds the broker's names at cTrader and the settings of new
// trading accounts.
type Config struct {
	BrokerCrmName string // for cTID calls (case-sensitive, issued by Spotware)
	BrokerName    string // for trader creation and linking
	// Groups maps an environment ("demo", "live") to the trader group new
	// accounts join. An environment without a group cannot open accounts.
	Groups map[string]string
	// LeverageInCents of new accounts; default 10000 (1:100).
	LeverageInCents int64
	// DemoBalance is the starting balance of new demo accounts, as a decimal
	// in the account's currency (e.g. "10000"); empty for none.
	DemoBalance string
}

// Adapter implements identity's ports on cTrader clients. One client talks
// to the cTID endpoints; one client per environment (demo and live are
// separate servers) creates and reads traders.
type Adapter struct {
	cfg  Config
	ctid *ctrader.Client
	envs map[string]*ctrader.Client
}

// The ports the adapter implements.
var (
	_ identity.CTIDProvisioner = (*Adapter)(nil)
	_ identity.TraderCreator   = (*Adapter)(nil)
	_ identity.HandoffRedeemer = (*Adapter)(nil)
	_ identity.TraderLookup    = (*Adapter)(nil)
)

// New returns an adapter. ctid serves cTID calls and handoff redemption;
// envs maps "demo"/"live" to the client of that environment's server (it may
// hold the same client twice). It returns an errs.Invalid error for missing
// names or clients.
func New(ctid *ctrader.Client, envs map[string]*ctrader.Client, cfg Config) (*Adapter, error) {
	const op = "ctraderid.New"
	if ctid == nil || cfg.BrokerCrmName == "" || cfg.BrokerName == "" {
		return nil, errs.E(errs.Invalid, op, "a cTID client, brokerCrmName and brokerName are required")
	}
	for env := range envs {
		if env != "demo" && env != "live" {
			return nil, errs.Ef(errs.Invalid, op, "environment %q is neither demo nor live", env)
		}
	}
	if cfg.LeverageInCents == 0 {
		cfg.LeverageInCents = 10000
	}
	return &Adapter{cfg: cfg, ctid: ctid, envs: envs}, nil
}

// CreateUser creates the cTID of a new user (POST /cid/oauth2/ctid/create).
func (a *Adapter) CreateUser(ctx context.Context, u identity.NewCTID) (int64, error) {
	return a.ctid.CreateCTID(ctx, ctrader.NewCTID{Email: u.Email, BrokerCrmName: a.cfg.BrokerCrmName,
		PreferredLanguage: u.PreferredLanguage, NickName: u.NickName})
}

// LinkAccount links a trading account to a cTID (POST /cid/ctid/link).
func (a *Adapter) LinkAccount(ctx context.Context, l identity.LinkRequest) (int64, error) {
	return a.ctid.LinkAccount(ctx, ctrader.Link{TraderLogin: l.Login, TraderPasswordHash: ctrader.HashPassword(l.Password),
		UserID: l.UserID, BrokerName: a.cfg.BrokerName, EnvironmentName: l.Environment})
}

// ChangeEmail tells cTrader a user's new e-mail address.
func (a *Adapter) ChangeEmail(ctx context.Context, userID int64, newEmail string) error {
	return a.ctid.ChangeEmail(ctx, userID, newEmail, a.cfg.BrokerCrmName)
}

// CreateTrader opens a trading account on the environment's server. It
// returns errs.Unavailable for an environment without a client or group.
func (a *Adapter) CreateTrader(ctx context.Context, t identity.NewTrader) (int64, error) {
	const op = "ctraderid.CreateTrader"
	c, group := a.envs[t.Environment], a.cfg.Groups[t.Environment]
	if c == nil || group == "" {
		return 0, errs.Ef(errs.Unavailable, op, "opening %s accounts is not configured", t.Environment)
	}
	cur, err := money.LookupCurrency(t.Currency)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	nt := ctrader.NewTrader{Currency: cur, BrokerName: a.cfg.BrokerName, GroupName: group,
		HashedPassword: ctrader.HashPassword(t.Password), LeverageInCents: a.cfg.LeverageInCents}
	if t.Email != "" {
		nt.ContactDetails = &ctrader.ContactDetails{Email: t.Email}
	}
	if t.Environment == "demo" && a.cfg.DemoBalance != "" {
		if nt.Balance, err = money.Parse(a.cfg.DemoBalance, cur); err != nil {
			return 0, errs.Wrap(op, err)
		}
	}
	tr, err := c.CreateTrader(ctx, nt)
	if err != nil {
		return 0, err
	}
	return tr.Login, nil
}

// RedeemInAppToken redeems cTrader's handoff token.
func (a *Adapter) RedeemInAppToken(ctx context.Context, token string) (identity.HandoffIdentity, error) {
	h, err := a.ctid.RedeemInAppToken(ctx, token)
	if err != nil {
		return identity.HandoffIdentity{}, err
	}
	return identity.HandoffIdentity{UserID: h.UserID, Email: h.Email, TradingLogin: h.TradingLogin}, nil
}

// LookupTrader finds a trading account on the live server, then the demo
// server. It returns errs.NotFound if neither knows the login.
func (a *Adapter) LookupTrader(ctx context.Context, login int64) (identity.TraderInfo, error) {
	var last error = errs.Ef(errs.NotFound, "ctraderid.LookupTrader", "trading account %d not found", login)
	for _, env := range []string{"live", "demo"} {
		c := a.envs[env]
		if c == nil {
			continue
		}
		t, err := c.GetTrader(ctx, login)
		if err == nil {
			return identity.TraderInfo{Currency: strings.ToUpper(t.Currency.Code), Environment: env}, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return identity.TraderInfo{}, err
		}
		last = err
	}
	return identity.TraderInfo{}, last
}
