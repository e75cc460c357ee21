package funding

import (
	"context"
	"strconv"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The kinds of the ledger accounts funding books on (the chart of accounts
// in docs/funding.md).
const (
	// KindCustomer: the customer's money in the cashier's custody for one
	// trading login: paid and not yet on the platform, or taken from the
	// platform and not yet paid out. Credit-normal, never below zero.
	KindCustomer = "customer"
	// KindPlatform: the money the cashier has moved onto one trading
	// account (deposits credited less withdrawals debited). Credit-normal,
	// unbounded (a withdrawal may take money deposited before the cashier).
	KindPlatform = "platform"
	// KindPSPClearing: money at a payment provider, per provider and
	// currency. Debit-normal, unbounded.
	KindPSPClearing = "psp_clearing"
	// KindFeeIncome: fees customers pay. Credit-normal.
	KindFeeIncome = "fee_income"
	// KindFeeExpense: provider fees the broker bears. Debit-normal.
	KindFeeExpense = "fee_expense"
	// KindFX: the conversion account, per currency: credited in the currency
	// a conversion takes in, debited in the one it pays out.
	KindFX = "fx"
	// KindSuspense: customer money an operator must place (a deposit the
	// platform refused, a return it refused). Credit-normal, never below
	// zero.
	KindSuspense = "suspense"
)

// chart names the ledger accounts of one platform.
type chart struct{ platform string }

func (c chart) customer(login int64, cur money.Currency) ledger.AccountSpec {
	zero := int64(0)
	return ledger.AccountSpec{ID: "customer:" + c.platform + ":" + strconv.FormatInt(login, 10), Kind: KindCustomer,
		Currency: cur, Normal: ledger.CreditNormal, Lower: &zero}
}

func (c chart) platformAccount(login int64, cur money.Currency) ledger.AccountSpec {
	return ledger.AccountSpec{ID: "platform:" + c.platform + ":" + strconv.FormatInt(login, 10), Kind: KindPlatform,
		Currency: cur, Normal: ledger.CreditNormal}
}

func pspClearing(provider string, cur money.Currency) ledger.AccountSpec {
	return ledger.AccountSpec{ID: "psp:" + provider + ":" + cur.Code, Kind: KindPSPClearing, Currency: cur, Normal: ledger.DebitNormal}
}

func feeIncome(cur money.Currency) ledger.AccountSpec {
	return ledger.AccountSpec{ID: "fees:income:" + cur.Code, Kind: KindFeeIncome, Currency: cur, Normal: ledger.CreditNormal}
}

func feeExpense(cur money.Currency) ledger.AccountSpec {
	return ledger.AccountSpec{ID: "fees:expense:" + cur.Code, Kind: KindFeeExpense, Currency: cur, Normal: ledger.DebitNormal}
}

func fxAccount(cur money.Currency) ledger.AccountSpec {
	return ledger.AccountSpec{ID: "fx:" + cur.Code, Kind: KindFX, Currency: cur, Normal: ledger.CreditNormal}
}

func suspense(cur money.Currency) ledger.AccountSpec {
	zero := int64(0)
	return ledger.AccountSpec{ID: "suspense:" + cur.Code, Kind: KindSuspense, Currency: cur, Normal: ledger.CreditNormal, Lower: &zero}
}

// CustomerAccountID is the ledger account of the customer money in the
// cashier's custody for a trading login.
func (s *Service) CustomerAccountID(login int64) string {
	return chart{s.cfg.Platform}.customer(login, money.Currency{}).ID
}

// PlatformAccountID is the ledger account of the money the cashier moved
// onto a trading login; its posted balance is what the platform's balance
// must have changed by through the cashier.
func (s *Service) PlatformAccountID(login int64) string {
	return chart{s.cfg.Platform}.platformAccount(login, money.Currency{}).ID
}

// ensure creates the ledger accounts (it is a no-op for those that exist)
// and returns their ids in order.
func (s *Service) ensure(ctx context.Context, tx *sqlstore.Tx, specs ...ledger.AccountSpec) ([]string, error) {
	ids := make([]string, len(specs))
	for i, spec := range specs {
		if _, err := s.ledger.CreateAccountTx(ctx, tx, spec); err != nil {
			return nil, errs.Wrap("funding.ensureAccount", err)
		}
		ids[i] = spec.ID
	}
	return ids, nil
}
