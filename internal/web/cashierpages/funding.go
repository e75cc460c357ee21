package cashierpages

import (
	"context"
	"errors"
	"time"

	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
)

// Funding is what the screens need of the funding service
// (internal/funding): the deposit and withdrawal steps a trader takes.
type Funding interface {
	DepositOptions(ctx context.Context, u Customer, login int64) (DepositOptions, error)
	QuoteDeposit(ctx context.Context, u Customer, login int64, methodID string, amount money.Amount) (payments.Price, error)
	StartDeposit(ctx context.Context, req DepositRequest) (Deposit, error)
	Deposit(ctx context.Context, customerUserID, depositID string) (Deposit, error)

	WithdrawalOptions(ctx context.Context, u Customer, login int64) (WithdrawalOptions, error)
	RequestWithdrawal(ctx context.Context, req WithdrawalRequest) (Withdrawal, error)
	ConfirmWithdrawal(ctx context.Context, customerUserID, withdrawalID, code string) (Withdrawal, error)
	Withdrawal(ctx context.Context, customerUserID, withdrawalID string) (Withdrawal, error)
}

// Customer is who deposits or withdraws.
type Customer struct {
	UserID   string
	Country  string
	KYCLevel int
	Lang     string
	Email    string
}

// AccountView is a trading account as the screens show it.
type AccountView struct {
	Login                 int64
	Currency              money.Currency
	Balance, Withdrawable money.Amount
	Kind                  string
}

// DepositOptions are the account and the methods a customer may deposit with.
type DepositOptions struct {
	Account AccountView
	Methods []payments.Method
}

// WithdrawalOptions are the account and the methods a customer may withdraw with.
type WithdrawalOptions struct {
	Account AccountView
	Methods []payments.Method
}

// DepositRequest starts a deposit.
type DepositRequest struct {
	ID        string
	Customer  Customer
	Login     int64
	MethodID  string
	Amount    money.Amount
	ReturnURL string
	Lang      string
}

// Next says what the customer does after a deposit started.
type Next struct {
	RedirectURL  string
	Instructions *psp.Instructions
}

// Deposit is a deposit as the screens show it.
type Deposit struct {
	ID       string
	Login    int64
	MethodID string
	Amount   money.Amount // what the customer pays
	Fee      money.Amount
	Credit   money.Amount // what the trading account receives
	Status   string
	Next     Next
	Failure  *payments.ErrorBody
	Created  time.Time
}

// WithdrawalRequest asks for a withdrawal.
type WithdrawalRequest struct {
	ID       string
	Customer Customer
	Login    int64
	MethodID string
	Amount   money.Amount
	Details  map[string]string
}

// Withdrawal is a withdrawal as the screens show it.
type Withdrawal struct {
	ID       string
	Login    int64
	MethodID string
	Amount   money.Amount // debited from the trading account
	Payout   money.Amount // what the customer receives
	Status   string
	Failure  *payments.ErrorBody
	Created  time.Time
}

// InsufficientError carries the INSUFFICIENT_FUNDS body of a refused
// withdrawal.
type InsufficientError struct{ Body payments.ErrorBody }

func (e *InsufficientError) Error() string { return e.Body.Message }

// asInsufficient finds the INSUFFICIENT_FUNDS body in err.
func asInsufficient(err error) (*payments.ErrorBody, bool) {
	var ie *InsufficientError
	if errors.As(err, &ie) {
		return &ie.Body, true
	}
	return nil, false
}
