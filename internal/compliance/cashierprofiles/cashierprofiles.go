// Package cashierprofiles adapts the compliance service to the cashier
// screens' Profiles port (cashierpages.Profiles), so the screens offer each
// customer the payment methods of their country and verified KYC level.
// It lives apart from internal/compliance so that the domain package does
// not import a web package.
package cashierprofiles

import (
	"context"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

// Profiles implements cashierpages.Profiles with a compliance service.
type Profiles struct {
	Service *compliance.Service
}

// New returns the screens' view of s's KYC profiles.
func New(s *compliance.Service) Profiles { return Profiles{Service: s} }

var _ cashierpages.Profiles = Profiles{}

// Profile returns the user's country and KYC level: the stored profile's,
// or compliance's defaults for a user without one. It returns the errors
// of compliance.Service.Profile.
func (p Profiles) Profile(ctx context.Context, userID string) (cashierpages.Profile, error) {
	prof, err := p.Service.Profile(ctx, userID)
	if err != nil {
		return cashierpages.Profile{}, errs.Wrap("cashierprofiles.Profile", err)
	}
	return cashierpages.Profile{Country: prof.Country, KYCLevel: prof.Level}, nil
}
