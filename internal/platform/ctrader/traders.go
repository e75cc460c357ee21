package ctrader

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// ContactDetails are a trader's contact fields.
type ContactDetails struct {
	Address            string `json:"address,omitempty"`
	City               string `json:"city,omitempty"`
	CountryID          int64  `json:"countryId,omitempty"`
	DocumentID         string `json:"documentId,omitempty"`
	Email              string `json:"email,omitempty"`
	Phone              string `json:"phone,omitempty"`
	State              string `json:"state,omitempty"`
	ZipCode            string `json:"zipCode,omitempty"`
	IntroducingBroker1 string `json:"introducingBroker1,omitempty"`
	IntroducingBroker2 string `json:"introducingBroker2,omitempty"`
}

// Trader is a trading account (cTrader's TraderTO) with money as exact
// amounts in the account's currency.
type Trader struct {
	Login                                int64
	GroupName                            string
	Currency                             money.Currency
	AccessRights                         string // FULL_ACCESS, CLOSE_ONLY, NO_TRADING, NO_LOGIN
	AccountType                          string // HEDGED, NETTED, SPREAD_BETTING
	BrokerName                           string
	Description                          string
	Name                                 string
	LastName                             string
	MoneyDigits                          int // the scale cTrader used for the figures below
	Balance                              money.Amount
	Bonus                                money.Amount
	NonWithdrawableBonus                 money.Amount
	Equity                               money.Amount
	CashEquity                           money.Amount // balance + unrealised P&L - fees
	UsedMargin                           money.Amount
	FreeMargin                           money.Amount
	LeverageInCents                      int64 // 1:100 is 10000
	MaxLeverage                          int64
	TotalMarginCalculationType           string
	IsLimitedRisk                        bool
	LimitedRiskMarginCalculationStrategy string
	SwapFree                             bool
	SendOwnStatement                     bool
	SendStatementToBroker                bool
	FrenchRisk                           bool
	Registered                           time.Time
	LastUpdated                          time.Time
	ContactDetails                       ContactDetails
}

// traderWire is TraderTO as sent: money scaled by moneyDigits, timestamps in
// epoch ms. Integers decode exactly (never through a float).
type traderWire struct {
	Login                                int64          `json:"login"`
	GroupName                            string         `json:"groupName"`
	DepositCurrency                      string         `json:"depositCurrency"`
	AccessRights                         string         `json:"accessRights"`
	AccountType                          string         `json:"accountType"`
	BrokerName                           string         `json:"brokerName"`
	Description                          string         `json:"description"`
	Name                                 string         `json:"name"`
	LastName                             string         `json:"lastName"`
	Balance                              int64          `json:"balance"`
	Bonus                                int64          `json:"bonus"`
	NonWithdrawableBonus                 int64          `json:"nonWithdrawableBonus"`
	Equity                               int64          `json:"equity"`
	CashEquity                           int64          `json:"cashEquity"`
	UsedMargin                           int64          `json:"usedMargin"`
	FreeMargin                           int64          `json:"freeMargin"`
	MoneyDigits                          *int           `json:"moneyDigits"`
	LeverageInCents                      int64          `json:"leverageInCents"`
	MaxLeverage                          int64          `json:"maxLeverage"`
	TotalMarginCalculationType           string         `json:"totalMarginCalculationType"`
	IsLimitedRisk                        bool           `json:"isLimitedRisk"`
	LimitedRiskMarginCalculationStrategy string         `json:"limitedRiskMarginCalculationStrategy"`
	SwapFree                             bool           `json:"swapFree"`
	SendOwnStatement                     bool           `json:"sendOwnStatement"`
	SendStatementToBroker                bool           `json:"sendStatementToBroker"`
	FrenchRisk                           bool           `json:"frenchRisk"`
	RegistrationTimestamp                int64          `json:"registrationTimestamp"`
	LastUpdateTimestamp                  int64          `json:"lastUpdateTimestamp"`
	ContactDetails                       ContactDetails `json:"contactDetails"`
}

// trader converts the wire form. It returns an errs.Internal error when the
// currency is unknown to the money package or a figure has more decimals
// than the currency allows (the money package must then be told about the
// currency's digits, money.RegisterAsset).
func (w traderWire) trader(op string) (Trader, error) {
	cur, err := money.LookupCurrency(w.DepositCurrency)
	if err != nil {
		return Trader{}, &errs.Error{Code: errs.Internal, Op: op, Message: "cTrader reported a currency OpenCashier does not know", Err: err}
	}
	if w.MoneyDigits == nil {
		return Trader{}, errs.Ef(errs.Internal, op, "trader %d has no moneyDigits", w.Login)
	}
	t := Trader{
		Login: w.Login, GroupName: w.GroupName, Currency: cur, AccessRights: w.AccessRights, AccountType: w.AccountType,
		BrokerName: w.BrokerName, Description: w.Description, Name: w.Name, LastName: w.LastName, MoneyDigits: *w.MoneyDigits,
		LeverageInCents: w.LeverageInCents, MaxLeverage: w.MaxLeverage, TotalMarginCalculationType: w.TotalMarginCalculationType,
		IsLimitedRisk: w.IsLimitedRisk, LimitedRiskMarginCalculationStrategy: w.LimitedRiskMarginCalculationStrategy,
		SwapFree: w.SwapFree, SendOwnStatement: w.SendOwnStatement, SendStatementToBroker: w.SendStatementToBroker,
		FrenchRisk: w.FrenchRisk, Registered: time.UnixMilli(w.RegistrationTimestamp).UTC(),
		LastUpdated: time.UnixMilli(w.LastUpdateTimestamp).UTC(), ContactDetails: w.ContactDetails,
	}
	for _, f := range []struct {
		dst  *money.Amount
		v    int64
		name string
	}{
		{&t.Balance, w.Balance, "balance"}, {&t.Bonus, w.Bonus, "bonus"},
		{&t.NonWithdrawableBonus, w.NonWithdrawableBonus, "nonWithdrawableBonus"}, {&t.Equity, w.Equity, "equity"},
		{&t.CashEquity, w.CashEquity, "cashEquity"}, {&t.UsedMargin, w.UsedMargin, "usedMargin"},
		{&t.FreeMargin, w.FreeMargin, "freeMargin"},
	} {
		a, err := money.FromScaled(f.v, t.MoneyDigits, cur)
		if err != nil {
			return Trader{}, &errs.Error{Code: errs.Internal, Op: op, Message: "trader " + strconv.FormatInt(w.Login, 10) + " " + f.name + " does not fit " + cur.Code, Err: err}
		}
		*f.dst = a
	}
	return t, nil
}

// GetTrader reads a trading account. It returns an errs.NotFound error for
// TRADER_NOT_FOUND, errs.Unavailable when cTrader does not answer, and the
// mapped code of any other refusal.
func (c *Client) GetTrader(ctx context.Context, login int64) (Trader, error) {
	const op = "ctrader.GetTrader"
	var w traderWire
	if err := c.call(ctx, op, call{endpoint: "trader.read", method: http.MethodGet,
		path: "/v2/webserv/traders/" + strconv.FormatInt(login, 10)}, &w); err != nil {
		return Trader{}, err
	}
	t, err := w.trader(op)
	if err != nil {
		return Trader{}, err
	}
	c.remember(t)
	return t, nil
}

func (c *Client) remember(t Trader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accts[t.Login] = t.Currency
}

// NewTrader is what CreateTrader needs. The required fields of spec §5.3
// get defaults where one is natural: AccessRights FULL_ACCESS, AccountType
// HEDGED, TotalMarginCalculationType MAX, LeverageInCents 10000 (1:100).
type NewTrader struct {
	Currency       money.Currency // depositCurrency
	Balance        money.Amount   // starting balance (demo accounts); zero or unset for none
	BrokerName     string
	GroupName      string
	HashedPassword string // MD5 hex of the trader's password (HashPassword)

	AccessRights               string
	AccountType                string
	LeverageInCents            int64
	TotalMarginCalculationType string

	Name, LastName, Description string
	ContactDetails              *ContactDetails
	SwapFree                    bool
}

// CreateTrader creates a trading account and returns it with its new login.
// The starting balance is written scaled by the currency's digits in the
// money package, which must equal cTrader's moneyDigits for the currency.
// It returns an errs.Invalid error for missing fields or a balance in another
// currency, and the mapped code of cTrader's refusal (TRADER_GROUP_NOT_FOUND
// is errs.NotFound, INVALID_REQUEST errs.Invalid, ...).
func (c *Client) CreateTrader(ctx context.Context, nt NewTrader) (Trader, error) {
	const op = "ctrader.CreateTrader"
	if nt.Currency.Code == "" || nt.BrokerName == "" || nt.GroupName == "" || nt.HashedPassword == "" {
		return Trader{}, errs.E(errs.Invalid, op, "currency, broker name, group name and hashed password are required")
	}
	balance := int64(0)
	if nt.Balance.Currency().Code != "" {
		if nt.Balance.Currency() != nt.Currency {
			return Trader{}, errs.Ef(errs.Invalid, op, "starting balance %s is not in %s", nt.Balance, nt.Currency)
		}
		balance = nt.Balance.Minor()
	}
	body := map[string]any{
		"accessRights": or(nt.AccessRights, "FULL_ACCESS"), "accountType": or(nt.AccountType, "HEDGED"),
		"balance": balance, "brokerName": nt.BrokerName, "depositCurrency": nt.Currency.Code, "groupName": nt.GroupName,
		"hashedPassword": nt.HashedPassword, "leverageInCents": nt.LeverageInCents,
		"totalMarginCalculationType": or(nt.TotalMarginCalculationType, "MAX"),
	}
	if nt.LeverageInCents == 0 {
		body["leverageInCents"] = 10000
	}
	for k, v := range map[string]string{"name": nt.Name, "lastName": nt.LastName, "description": nt.Description} {
		if v != "" {
			body[k] = v
		}
	}
	if nt.ContactDetails != nil {
		body["contactDetails"] = nt.ContactDetails
	}
	if nt.SwapFree {
		body["swapFree"] = true
	}
	var w traderWire
	if err := c.call(ctx, op, call{endpoint: "trader.create", method: http.MethodPost, path: "/v2/webserv/traders", body: body}, &w); err != nil {
		return Trader{}, err
	}
	t, err := w.trader(op)
	if err != nil {
		return Trader{}, err
	}
	c.remember(t)
	return t, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TraderPage is one answer of ListTraders.
type TraderPage struct {
	Traders []Trader
	HasMore bool // more traders match; ask again with a later from
}

// ListTraders lists the trading accounts registered in [from, to) (cTrader
// pages by from/to; the caller continues with a later from while HasMore).
// It returns the errors of GetTrader.
func (c *Client) ListTraders(ctx context.Context, from, to time.Time) (TraderPage, error) {
	const op = "ctrader.ListTraders"
	const layout = "2006-01-02T15:04:05.000"
	var out struct {
		Trader  []traderWire `json:"trader"`
		HasMore bool         `json:"hasMore"`
	}
	q := url.Values{"from": {from.UTC().Format(layout)}, "to": {to.UTC().Format(layout)}}
	if err := c.call(ctx, op, call{endpoint: "trader.list", method: http.MethodGet, path: "/v2/webserv/traders", query: q}, &out); err != nil {
		return TraderPage{}, err
	}
	page := TraderPage{HasMore: out.HasMore, Traders: make([]Trader, 0, len(out.Trader))}
	for _, w := range out.Trader {
		t, err := w.trader(op)
		if err != nil {
			return TraderPage{}, err
		}
		c.remember(t)
		page.Traders = append(page.Traders, t)
	}
	return page, nil
}

// TraderPatch is a partial update: only non-nil fields are sent. The
// balance cannot be changed this way (use ChangeBalance).
type TraderPatch struct {
	AccessRights               *string         `json:"accessRights,omitempty"`
	AccountType                *string         `json:"accountType,omitempty"`
	GroupName                  *string         `json:"groupName,omitempty"`
	HashedPassword             *string         `json:"hashedPassword,omitempty"`
	LeverageInCents            *int64          `json:"leverageInCents,omitempty"`
	MaxLeverage                *int64          `json:"maxLeverage,omitempty"`
	TotalMarginCalculationType *string         `json:"totalMarginCalculationType,omitempty"`
	Name                       *string         `json:"name,omitempty"`
	LastName                   *string         `json:"lastName,omitempty"`
	Description                *string         `json:"description,omitempty"`
	ContactDetails             *ContactDetails `json:"contactDetails,omitempty"`
	SwapFree                   *bool           `json:"swapFree,omitempty"`
	SendOwnStatement           *bool           `json:"sendOwnStatement,omitempty"`
	SendStatementToBroker      *bool           `json:"sendStatementToBroker,omitempty"`
}

// PatchTrader updates some fields of a trading account and returns the
// account as it is afterwards (read again when the answer carries no
// TraderTO). It returns the errors of GetTrader.
func (c *Client) PatchTrader(ctx context.Context, login int64, p TraderPatch) (Trader, error) {
	const op = "ctrader.PatchTrader"
	var w traderWire
	if err := c.call(ctx, op, call{endpoint: "trader.update", method: http.MethodPatch,
		path: "/v2/webserv/traders/" + strconv.FormatInt(login, 10), body: p}, &w); err != nil {
		return Trader{}, err
	}
	if w.Login == 0 { // the answer carried no TraderTO
		return c.GetTrader(ctx, login)
	}
	t, err := w.trader(op)
	if err != nil {
		return Trader{}, err
	}
	c.remember(t)
	return t, nil
}
