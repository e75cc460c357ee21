// Package identitytest holds in-memory fakes of the cTrader side that
// identity talks to (cTID provisioning, trader creation, handoff
// redemption), for tests of identity and of the surfaces built on it.
package identitytest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// CTrader fakes the cTrader side: cTIDs, traders, links and handoff tokens.
// It is safe for concurrent use.
type CTrader struct {
	mu       sync.Mutex
	nextUser int64
	nextAcc  int64
	Users    map[int64]identity.NewCTID // cTID user id → what was sent
	Traders  map[int64]identity.NewTrader
	Links    map[int64]identity.LinkRequest // login → link
	Partners map[int64]string
	Handoff  map[string]identity.HandoffIdentity // token → identity; deleted on redeem
	Currency map[int64]string                    // login → currency for LookupTrader
	// Fail, when set, is returned by every call.
	Fail error
	// FailTraders, when set, is returned by CreateTrader only.
	FailTraders error
}

// NewCTrader returns an empty fake.
func NewCTrader() *CTrader {
	return &CTrader{nextUser: 10345532, nextAcc: 8673589, Users: map[int64]identity.NewCTID{},
		Traders: map[int64]identity.NewTrader{}, Links: map[int64]identity.LinkRequest{}, Partners: map[int64]string{},
		Handoff: map[string]identity.HandoffIdentity{}, Currency: map[int64]string{}}
}

// CreateUser implements identity.CTIDProvisioner.
func (c *CTrader) CreateUser(_ context.Context, u identity.NewCTID) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return 0, c.Fail
	}
	c.nextUser++
	c.Users[c.nextUser] = u
	return c.nextUser, nil
}

// LinkAccount implements identity.CTIDProvisioner.
func (c *CTrader) LinkAccount(_ context.Context, l identity.LinkRequest) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return 0, c.Fail
	}
	if _, ok := c.Traders[l.Login]; !ok {
		return 0, errs.E(errs.NotFound, "fake.LinkAccount", "TRADER_NOT_FOUND")
	}
	if c.Traders[l.Login].Password != l.Password {
		return 0, errs.E(errs.Invalid, "fake.LinkAccount", "WRONG_PASSWORD")
	}
	c.Links[l.Login] = l
	return 500000 + l.Login, nil
}

// ChangeEmail implements identity.CTIDProvisioner.
func (c *CTrader) ChangeEmail(_ context.Context, userID int64, newEmail string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return c.Fail
	}
	u, ok := c.Users[userID]
	if !ok {
		return errs.E(errs.NotFound, "fake.ChangeEmail", "USER_NOT_FOUND")
	}
	u.Email = newEmail
	c.Users[userID] = u
	return nil
}

// SetPartner implements identity.PartnerSetter.
func (c *CTrader) SetPartner(_ context.Context, userID int64, partnerID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Partners[userID] = partnerID
	return nil
}

// CreateTrader implements identity.TraderCreator.
func (c *CTrader) CreateTrader(_ context.Context, t identity.NewTrader) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return 0, c.Fail
	}
	if c.FailTraders != nil {
		return 0, c.FailTraders
	}
	c.nextAcc++
	c.Traders[c.nextAcc] = t
	c.Currency[c.nextAcc] = t.Currency
	return c.nextAcc, nil
}

// RedeemInAppToken implements identity.HandoffRedeemer: each token works
// once.
func (c *CTrader) RedeemInAppToken(_ context.Context, token string) (identity.HandoffIdentity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return identity.HandoffIdentity{}, c.Fail
	}
	id, ok := c.Handoff[token]
	if !ok {
		return identity.HandoffIdentity{}, errs.E(errs.NotFound, "fake.RedeemInAppToken", "token not found, expired or already consumed")
	}
	delete(c.Handoff, token)
	return id, nil
}

// LookupTrader implements identity.TraderLookup.
func (c *CTrader) LookupTrader(_ context.Context, login int64) (identity.TraderInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.Currency[login]
	if !ok {
		return identity.TraderInfo{}, errs.E(errs.NotFound, "fake.LookupTrader", "TRADER_NOT_FOUND")
	}
	return identity.TraderInfo{Currency: cur, Environment: "demo"}, nil
}

// AddHandoffToken makes cTrader know a handoff token.
func (c *CTrader) AddHandoffToken(token string, id identity.HandoffIdentity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Handoff[token] = id
}

// SetFail makes every later call fail with err (nil: succeed again).
func (c *CTrader) SetFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Fail = err
}

// SetFailTraders makes CreateTrader fail with err (nil: succeed again).
func (c *CTrader) SetFailTraders(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.FailTraders = err
}

// Start is the fake clock's starting time in tests.
var Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// CRMPassword is the crm password of services made by NewService.
const CRMPassword = "cTrader-shared-secret-1" // #nosec G101 -- a test fixture, not a deployed secret

// FastPasswords are cheap argon2id parameters for tests only.
var FastPasswords = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

// NewService returns a Service on db with a fake clock at Start, the fake
// cTrader wired in for every port, CRMPassword configured, and cheap
// password hashing. cfg fields that are set override those defaults.
func NewService(tb testing.TB, db *sqlstore.DB, cfg identity.Config) (*identity.Service, *clock.Fake, *CTrader) {
	tb.Helper()
	clk := clock.NewFake(Start)
	ct := NewCTrader()
	if cfg.CRMPasswords == nil {
		cfg.CRMPasswords = []string{CRMPassword}
	}
	if cfg.Password == (identity.PasswordParams{}) {
		cfg.Password = FastPasswords
	}
	svc, err := identity.New(identity.Deps{DB: db, Clock: clk, Provisioner: ct, Traders: ct, Redeemer: ct, Lookup: ct,
		Logger: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		tb.Fatalf("identity.New: %v", err)
	}
	return svc, clk, ct
}
