package cashierpages

import (
	"context"

	"github.com/opencashier/cashier/internal/identity"
)

// Identity is what the screens need of identity.Service: consume the
// one-time token of the URL into a cashier session, resolve that session on
// every later request, and list and check the user's trading accounts.
// *identity.Service implements it.
type Identity interface {
	OpenInApp(ctx context.Context, token string, account int64) (identity.CashierSession, error)
	Session(ctx context.Context, token string) (identity.CashierSession, error)
	Accounts(ctx context.Context, userID string) ([]identity.Account, error)
	AccountOf(ctx context.Context, userID string, login int64) (identity.Account, error)
}

// Profile is what the screens know of a customer beyond identity: the
// country and verified KYC level that decide which payment methods they
// may use.
type Profile struct {
	Country  string // ISO 3166-1 alpha-2
	KYCLevel int
}

// Profiles looks up a customer's country and KYC level (the back office
// owns them). Without one, Options.DefaultCountry and
// Options.DefaultKYCLevel apply to everyone.
type Profiles interface {
	Profile(ctx context.Context, userID string) (Profile, error)
}
