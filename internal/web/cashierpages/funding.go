package cashierpages

import (
	"context"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
)

// Funding is what the screens need of the funding service: the deposit and
// withdrawal steps a trader takes. *funding.Service implements it.
type Funding interface {
	DepositOptions(ctx context.Context, u funding.Customer, login int64) (funding.DepositOptions, error)
	QuoteDeposit(ctx context.Context, u funding.Customer, login int64, methodID string, amount money.Amount) (payments.Price, error)
	StartDeposit(ctx context.Context, req funding.DepositRequest) (funding.Deposit, error)
	Deposit(ctx context.Context, customerUserID, depositID string) (funding.Deposit, error)

	WithdrawalOptions(ctx context.Context, u funding.Customer, login int64) (funding.WithdrawalOptions, error)
	RequestWithdrawal(ctx context.Context, req funding.WithdrawalRequest) (funding.Withdrawal, error)
	ConfirmWithdrawal(ctx context.Context, customerUserID, withdrawalID, code string) (funding.Withdrawal, error)
	Withdrawal(ctx context.Context, customerUserID, withdrawalID string) (funding.Withdrawal, error)
}
