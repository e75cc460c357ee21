package identity

import "context"

// NewCTID is what cTrader needs to create a cTID for a new user.
type NewCTID struct {
	Email             string
	PreferredLanguage string // ISO 639-1, e.g. "en"
	NickName          string // optional
}

// LinkRequest links a trading account to a cTID.
type LinkRequest struct {
	UserID      int64  // the cTID user id
	Login       int64  // the trading account
	Environment string // "demo" or "live"
	// Password is the trading account's password in plain text; the adapter
	// hashes it the way the platform wants (MD5 for cTrader). It is never
	// stored by identity.
	Password string
}

// CTIDProvisioner creates and maintains cTIDs on the cTrader side
// (`/cid/oauth2/ctid/create`, `/cid/ctid/link`, `/cid/oauth2/ctid/changeEmail`).
//
// CreateUser returns the new cTID user id. LinkAccount returns the
// ctidTraderAccountId of the link (0 if the platform did not return one).
// Errors carry errs codes: errs.Invalid for a request cTrader refuses,
// errs.Unavailable when cTrader cannot be reached.
type CTIDProvisioner interface {
	CreateUser(ctx context.Context, u NewCTID) (int64, error)
	LinkAccount(ctx context.Context, l LinkRequest) (int64, error)
	ChangeEmail(ctx context.Context, userID int64, newEmail string) error
}

// PartnerSetter is an optional capability of a CTIDProvisioner: record the
// partner (introducing broker) a user came from (`/cid/oauth2/ctid/referral`).
type PartnerSetter interface {
	SetPartner(ctx context.Context, userID int64, partnerID string) error
}

// NewTrader asks for a new trading account.
type NewTrader struct {
	Environment string // "demo" or "live"
	Currency    string // ISO 4217 deposit currency
	Email       string // the owner's e-mail, for the account's contact details
	Password    string // the account password in plain text (the adapter hashes it)
}

// TraderCreator opens trading accounts (`POST /v2/webserv/traders`). It
// returns the new login.
type TraderCreator interface {
	CreateTrader(ctx context.Context, t NewTrader) (int64, error)
}

// HandoffIdentity is what cTrader says about the holder of a handoff token.
type HandoffIdentity struct {
	UserID       int64
	Email        string
	TradingLogin int64
}

// HandoffRedeemer redeems a one-time token that cTrader issued
// (`POST /ctid2/inAppToken/redeem`). It returns an error with code
// errs.NotFound when cTrader does not know the token or it was used or has
// expired, and errs.Unavailable when cTrader cannot be reached.
type HandoffRedeemer interface {
	RedeemInAppToken(ctx context.Context, token string) (HandoffIdentity, error)
}

// TraderInfo describes a trading account as the platform reports it.
type TraderInfo struct {
	Currency    string
	Environment string // "demo" or "live"; empty if unknown
}

// TraderLookup reads a trading account from the platform. It returns an
// error with code errs.NotFound for an unknown login.
type TraderLookup interface {
	LookupTrader(ctx context.Context, login int64) (TraderInfo, error)
}
