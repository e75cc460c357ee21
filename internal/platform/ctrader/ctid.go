package ctrader

import (
	"context"
	"net/http"

	"github.com/opencashier/cashier/internal/errs"
)

// NewCTID is what CreateCTID sends to POST /cid/oauth2/ctid/create.
type NewCTID struct {
	Email             string // required; @privaterelay.appleid.com is refused by cTrader
	BrokerCrmName     string // required, case-sensitive
	PreferredLanguage string // ISO 639-1, e.g. "en"
	NickName          string // optional; cTrader derives one when absent or taken
	FirstName         string
}

// CreateCTID creates (or finds, for a known email) the cTID user of an email
// and returns its userId. It returns an errs.Invalid error for missing
// fields or cTrader's INVALID_REQUEST, and the mapped code of other refusals.
func (c *Client) CreateCTID(ctx context.Context, u NewCTID) (int64, error) {
	const op = "ctrader.CreateCTID"
	if u.Email == "" || u.BrokerCrmName == "" {
		return 0, errs.E(errs.Invalid, op, "email and brokerCrmName are required")
	}
	body := map[string]string{"email": u.Email, "brokerCrmName": u.BrokerCrmName}
	for k, v := range map[string]string{"preferredLanguage": u.PreferredLanguage, "nickName": u.NickName, "firstName": u.FirstName} {
		if v != "" {
			body[k] = v
		}
	}
	var out struct {
		UserID int64 `json:"userId"`
	}
	if err := c.call(ctx, op, call{endpoint: "ctid.create", method: http.MethodPost, path: "/cid/oauth2/ctid/create", body: body}, &out); err != nil {
		return 0, err
	}
	if out.UserID <= 0 {
		return 0, errs.E(errs.Internal, op, "cTrader's answer has no userId")
	}
	return out.UserID, nil
}

// Link is what LinkAccount sends to POST /cid/ctid/link.
type Link struct {
	TraderLogin        int64
	TraderPasswordHash string // MD5 hex of the trader's password (HashPassword)
	UserID             int64
	BrokerName         string
	EnvironmentName    string // "demo" or "live"
}

// LinkAccount links a trading account to a cTID user and returns the link's
// ctidTraderAccountId (it asks for account details so that the id comes
// back). It returns errs.NotFound for an unknown trader or user, errs.Invalid
// for WRONG_PASSWORD and INVALID_REQUEST, and the mapped code of other
// refusals.
func (c *Client) LinkAccount(ctx context.Context, l Link) (int64, error) {
	const op = "ctrader.LinkAccount"
	var out struct {
		CtidTraderAccountID int64 `json:"ctidTraderAccountId"`
	}
	body := map[string]any{"traderLogin": l.TraderLogin, "traderPasswordHash": l.TraderPasswordHash, "userId": l.UserID,
		"brokerName": l.BrokerName, "environmentName": l.EnvironmentName, "returnAccountDetails": true}
	if err := c.call(ctx, op, call{endpoint: "ctid.link", method: http.MethodPost, path: "/cid/ctid/link", body: body}, &out); err != nil {
		return 0, err
	}
	if out.CtidTraderAccountID <= 0 {
		return 0, errs.E(errs.Internal, op, "cTrader's answer has no ctidTraderAccountId")
	}
	return out.CtidTraderAccountID, nil
}

// ChangeEmail tells cTrader a user's new email (PUT
// /cid/oauth2/ctid/changeEmail); the CRM must call it whenever the email
// changes. It returns errs.NotFound for an unknown user, errs.Invalid for a
// refused address, and the mapped code of other refusals.
func (c *Client) ChangeEmail(ctx context.Context, userID int64, newEmail, brokerCrmName string) error {
	return c.call(ctx, "ctrader.ChangeEmail", call{endpoint: "ctid.changeEmail", method: http.MethodPut,
		path: "/cid/oauth2/ctid/changeEmail",
		body: map[string]any{"userId": userID, "newEmail": newEmail, "brokerCrmName": brokerCrmName}}, nil)
}

// Handoff is what a redeemed in-app token says about the user.
type Handoff struct {
	UserID       int64
	Email        string
	TradingLogin int64
}

// RedeemInAppToken redeems the one-time token cTrader put in the cashier URL
// under the one-time-token handoff (POST /ctid2/inAppToken/redeem, spec
// §5.5). The token is single-use. It returns an errs.NotFound error when the
// token is unknown, expired or already used, errs.Invalid for an empty
// token, and the mapped code of other refusals.
func (c *Client) RedeemInAppToken(ctx context.Context, token string) (Handoff, error) {
	const op = "ctrader.RedeemInAppToken"
	if token == "" {
		return Handoff{}, errs.E(errs.Invalid, op, "token is empty")
	}
	var out struct {
		UserID       int64  `json:"userId"`
		Email        string `json:"email"`
		TradingLogin int64  `json:"tradingLogin"`
	}
	if err := c.call(ctx, op, call{endpoint: "redeem", method: http.MethodPost, path: c.cfg.RedeemPath,
		body: map[string]string{"token": token}}, &out); err != nil {
		return Handoff{}, err
	}
	if out.UserID <= 0 {
		return Handoff{}, errs.E(errs.Internal, op, "cTrader's answer has no userId")
	}
	return Handoff{UserID: out.UserID, Email: out.Email, TradingLogin: out.TradingLogin}, nil
}
