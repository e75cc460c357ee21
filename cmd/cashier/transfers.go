package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const transfersUsage = `usage: cashier transfers micro-deposits BANK_ID
       cashier transfers settle ORDER_ID success|failed [-reason TEXT]
`

// transfers is the support staff's side of seed 003: the micro-deposit
// amounts of a linked bank (to help a user who cannot find them) and the
// bank rail's outcome of a PENDING cash transfer. A DEPOSIT settled success
// is credited to the trading account (ledger and DEPOSIT push, which the
// running server's job workers send).
func (m *Main) transfers(ctx context.Context, args []string) error {
	db, rest, err := m.opsDB(ctx, "transfers", args)
	if err != nil {
		return err
	}
	defer db.Close()
	bad := func(msg string) error {
		fmt.Fprint(m.Stderr, transfersUsage)
		return usageError{errors.New(msg)}
	}
	if len(rest) < 2 || strings.HasPrefix(rest[1], "-") {
		return bad("transfers needs a command and an id: micro-deposits BANK_ID or settle ORDER_ID")
	}
	svc, err := m.opsBanking(db)
	if err != nil {
		return err
	}
	switch rest[0] {
	case "micro-deposits":
		a, err := svc.MicroDepositAmounts(ctx, rest[1])
		if err != nil {
			return opsError(err)
		}
		fmt.Fprintf(m.Stdout, "%s %s\n", a[0].Decimal(), a[1].Decimal())
		return nil
	case "settle":
		if len(rest) < 3 || (rest[2] != "success" && rest[2] != "failed") {
			return bad("settle needs the outcome: success or failed")
		}
		fs := flag.NewFlagSet("transfers settle", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		reason := fs.String("reason", "", "why it failed")
		if err := fs.Parse(rest[3:]); err != nil {
			return bad(err.Error())
		}
		t, err := svc.Settle(ctx, rest[1], rest[2] == "success", *reason)
		if err != nil {
			return opsError(err)
		}
		fmt.Fprintf(m.Stdout, "transfer %s (%s %s) is %s\n", t.OrderID, t.Type, t.Amount, t.Status)
		return nil
	default:
		return bad(fmt.Sprintf("unknown transfers command %q", rest[0]))
	}
}

// opsBanking is banking for the operator commands: it settles transfers
// through funding (opsFunding) and neither sends micro-deposits nor reads
// balances.
func (m *Main) opsBanking(db *sqlstore.DB) (*banking.Service, error) {
	fund, err := m.opsFunding(db)
	if err != nil {
		return nil, err
	}
	ids, err := opsIdentity(db)
	if err != nil {
		return nil, err
	}
	return banking.New(banking.Options{DB: db, Accounts: ids, Balances: offlineBanking{}, Rail: offlineBanking{}, Funds: fund})
}

// offlineBanking stands for the balance reader and the bank rail, which
// the operator commands do not use.
type offlineBanking struct{}

// Withdrawable implements banking.Balances; it is never called by the
// operator commands and reports zero.
func (offlineBanking) Withdrawable(_ context.Context, _ string, _ int64, cur money.Currency) (money.Amount, error) {
	return money.Zero(cur), nil
}

// SendMicroDeposit implements banking.Rail; it sends nothing.
func (offlineBanking) SendMicroDeposit(context.Context, banking.MicroDeposit) error { return nil }
