package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Environment is a trading server's environment.
type Environment string

// The environments of a cTrader plant.
const (
	Demo Environment = "demo"
	Live Environment = "live"
)

// AccountKind says what a trading account is for.
type AccountKind string

// The account kinds.
const (
	KindTrading AccountKind = "trading"
	KindSignal  AccountKind = "signal" // a strategy provider's signal account
)

// Account is a trading account owned by a user.
type Account struct {
	ID                  string // "acc_" + UUIDv7
	Login               int64
	Platform            string // "ctrader"
	Environment         Environment
	Currency            string // ISO 4217 deposit currency
	Kind                AccountKind
	UserID              string
	CTIDTraderAccountID int64 // the cTID link, 0 if unknown
	CreatedAt           time.Time
}

// NewAccount describes an existing trading account to record for a user.
type NewAccount struct {
	UserID              string
	Login               int64
	Platform            string // empty: the configured platform
	Environment         Environment
	Currency            string
	Kind                AccountKind // empty: trading
	CTIDTraderAccountID int64
}

func (n *NewAccount) check(op, defaultPlatform string) error {
	if n.Platform == "" {
		n.Platform = defaultPlatform
	}
	if n.Kind == "" {
		n.Kind = KindTrading
	}
	n.Environment = Environment(strings.ToLower(string(n.Environment)))
	switch {
	case n.Login <= 0:
		return errs.Ef(errs.Invalid, op, "login %d is not a trading account number", n.Login)
	case n.Environment != Demo && n.Environment != Live:
		return errs.Ef(errs.Invalid, op, "environment %q is neither demo nor live", n.Environment)
	case n.Kind != KindTrading && n.Kind != KindSignal:
		return errs.Ef(errs.Invalid, op, "account kind %q is neither trading nor signal", n.Kind)
	case n.UserID == "":
		return errs.E(errs.Invalid, op, "owner is required")
	}
	cur, err := money.LookupCurrency(strings.ToUpper(strings.TrimSpace(n.Currency)))
	if err != nil {
		return errs.Ef(errs.Invalid, op, "currency %q is not known", n.Currency)
	}
	n.Currency = cur.Code
	return nil
}

// LinkAccount records an existing trading account as owned by a user (the
// operator's `cashier accounts link`). It returns errs.Invalid for bad
// fields, errs.NotFound for an unknown user and errs.Conflict if the login is
// already recorded in that environment.
func (s *Service) LinkAccount(ctx context.Context, n NewAccount) (Account, error) {
	const op = "identity.LinkAccount"
	if err := n.check(op, s.cfg.Platform); err != nil {
		return Account{}, err
	}
	var a Account
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		if _, err := getUser(ctx, tx, op, "id = ?", n.UserID); err != nil {
			return err
		}
		var err error
		a, err = s.insertAccount(ctx, tx, n, op)
		return err
	})
	return a, err
}

func (s *Service) insertAccount(ctx context.Context, tx *sqlstore.Tx, n NewAccount, op string) (Account, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	now := s.now()
	a := Account{ID: "acc_" + id.String(), Login: n.Login, Platform: n.Platform, Environment: n.Environment,
		Currency: n.Currency, Kind: n.Kind, UserID: n.UserID, CTIDTraderAccountID: n.CTIDTraderAccountID,
		CreatedAt: sqlstore.FromMicros(sqlstore.Micros(now))}
	_, err = tx.Exec(ctx, `INSERT INTO identity_accounts (id, platform, environment, login, user_id, currency, kind,
		ctid_trader_account_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Platform, string(a.Environment), a.Login, a.UserID, a.Currency, string(a.Kind),
		nullInt(a.CTIDTraderAccountID), sqlstore.Micros(now))
	if sqlstore.IsUniqueViolation(err) {
		return Account{}, errs.Ef(errs.Conflict, op, "%s account %d is already recorded", a.Environment, a.Login)
	}
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	return a, nil
}

const accountColumns = `id, login, platform, environment, currency, kind, user_id, COALESCE(ctid_trader_account_id, 0), created_at`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var env, kind string
	var created int64
	if err := row.Scan(&a.ID, &a.Login, &a.Platform, &env, &a.Currency, &kind, &a.UserID, &a.CTIDTraderAccountID, &created); err != nil {
		return Account{}, err
	}
	a.Environment, a.Kind, a.CreatedAt = Environment(env), AccountKind(kind), sqlstore.FromMicros(created)
	return a, nil
}

type rowsQuerier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func listAccounts(ctx context.Context, q rowsQuerier, op, where string, args ...any) ([]Account, error) {
	query := `SELECT ` + accountColumns + ` FROM identity_accounts`
	if where != "" {
		query += ` WHERE ` + where
	}
	rows, err := q.Query(ctx, query+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, a)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Accounts returns the trading accounts of a user, oldest first.
func (s *Service) Accounts(ctx context.Context, userID string) ([]Account, error) {
	return listAccounts(ctx, s.db, "identity.Accounts", "user_id = ?", userID)
}

// ListAccounts returns every recorded trading account, oldest first.
func (s *Service) ListAccounts(ctx context.Context) ([]Account, error) {
	return listAccounts(ctx, s.db, "identity.ListAccounts", "")
}

// AccountOf returns the account with the given login if the user owns it.
// It returns errs.Forbidden if the login belongs to another user and
// errs.NotFound if nobody owns it.
func (s *Service) AccountOf(ctx context.Context, userID string, login int64) (Account, error) {
	return accountOf(ctx, s.db, userID, login)
}

func accountOf(ctx context.Context, q rowsQuerier, userID string, login int64) (Account, error) {
	const op = "identity.AccountOf"
	all, err := listAccounts(ctx, q, op, "login = ?", login)
	if err != nil {
		return Account{}, err
	}
	if len(all) == 0 {
		return Account{}, errs.Ef(errs.NotFound, op, "trading account %d not found", login)
	}
	for _, a := range all {
		if a.UserID == userID {
			return a, nil
		}
	}
	return Account{}, errs.Ef(errs.Forbidden, op, "trading account %d belongs to someone else", login)
}

// AccountRequest asks for a new trading account at signup or on the account
// creation screen.
type AccountRequest struct {
	Environment Environment
	Currency    string
}

// OpenTradingAccount opens a new trading account on the platform for a user
// who has a cTID, links it to the cTID, and records it. It returns
// errs.Invalid for a bad request, errs.NotFound for an unknown user,
// errs.Conflict when the user has no cTID yet, errs.Unavailable when no
// platform is configured, and the platform's error otherwise.
func (s *Service) OpenTradingAccount(ctx context.Context, userID string, req AccountRequest) (Account, error) {
	const op = "identity.OpenTradingAccount"
	if s.traders == nil || s.prov == nil {
		return Account{}, errs.E(errs.Unavailable, op, "opening trading accounts is not configured")
	}
	n := NewAccount{UserID: userID, Login: 1, Environment: req.Environment, Currency: req.Currency}
	if err := n.check(op, s.cfg.Platform); err != nil {
		return Account{}, err
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return Account{}, err
	}
	if u.Status != StatusActive {
		return Account{}, errs.E(errs.Forbidden, op, "user is disabled")
	}
	if u.CTIDUserID == 0 {
		return Account{}, errs.E(errs.Conflict, op, "user has no cTID yet")
	}
	password, err := traderPassword()
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	login, err := s.traders.CreateTrader(ctx, NewTrader{Environment: string(n.Environment), Currency: n.Currency, Email: u.Email, Password: password})
	if err != nil {
		return Account{}, errs.Wrap(op, err)
	}
	link, err := s.prov.LinkAccount(ctx, LinkRequest{UserID: u.CTIDUserID, Login: login, Environment: string(n.Environment), Password: password})
	if err != nil {
		s.log.ErrorContext(ctx, "trading account created but not linked to the cTID", "op", op, "login", login, "user", u.ID, "err", err)
		return Account{}, errs.Wrap(op, err)
	}
	n.Login, n.CTIDTraderAccountID = login, link
	var a Account
	err = s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		a, err = s.insertAccount(ctx, tx, n, op)
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "trading account created and linked but not recorded", "op", op, "login", login, "user", u.ID, "err", err)
	}
	return a, err
}

// traderPassword returns a random password for a new trading account; the
// user signs in with the cTID, so nobody needs to know it.
func traderPassword() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// accountForLogin finds the single recorded account with the login, or
// errs.NotFound.
func accountForLogin(ctx context.Context, q rowsQuerier, login int64) (Account, error) {
	all, err := listAccounts(ctx, q, "identity.accountForLogin", "login = ?", login)
	if err != nil {
		return Account{}, err
	}
	if len(all) == 0 {
		return Account{}, errs.E(errs.NotFound, "identity.accountForLogin", "account not found")
	}
	return all[0], nil
}
