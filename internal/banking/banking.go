// Package banking is seed 003: bank accounts that a user links to fund
// trading accounts, verified by two micro-deposits the user confirms, and
// cash transfers (DEPOSIT or WITHDRAWAL) between a trading account and a
// linked bank, with their history.
//
// Bank statuses:
//
//	PENDING ──(micro-deposits sent)──▶ PENDING_VERIFICATION ──(right amounts)──▶ PROCESSED
//	                                        └──(attempts used up)──▶ REJECTED
//	any ──(user unlinks)──▶ PENDING_DELETE
//
// Transfer statuses: a deposit to a bank that is still PENDING_VERIFICATION
// is SCHEDULED and becomes PENDING when the bank is verified (FAILED if it
// is rejected or unlinked); every other accepted transfer starts PENDING.
// PENDING becomes SUCCESS or FAILED when the bank rail settles it (Settle).
//
// Money: this package records the client's instructions and enforces the
// seed's rules (minimum deposit, verified bank, available funds net of the
// withdrawals already instructed, trading accounts only). With
// Options.Funds, a DEPOSIT that settles SUCCESS is credited to the trading
// account through funding (ledger and DEPOSIT push) in the settlement's own
// transaction, once; a FAILED one books nothing. An accepted WITHDRAWAL
// becomes a funding withdrawal to the linked bank (hold, WITHDRAW push,
// approval, payout through the bank rail; the money goes back if it fails),
// and SyncWithdrawals copies its outcome. See docs/client-api.md.
package banking

import (
	"context"
	"crypto/rand"
	"embed"
	"io/fs"
	"log/slog"
	"math/big"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the banking part of the database (version 00520).
var Schema = sqlstore.Schema{Name: "banking", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// BankStatus is the verification state of a linked bank.
type BankStatus string

// The bank statuses of seed 003.
const (
	BankPending             BankStatus = "PENDING"
	BankPendingVerification BankStatus = "PENDING_VERIFICATION"
	BankProcessed           BankStatus = "PROCESSED"
	BankPendingDelete       BankStatus = "PENDING_DELETE"
	BankRejected            BankStatus = "REJECTED"
)

// TransferType is the direction of a cash transfer.
type TransferType string

// The instruction types of seed 003.
const (
	Deposit    TransferType = "DEPOSIT"
	Withdrawal TransferType = "WITHDRAWAL"
)

// TransferStatus is the state of a cash transfer.
type TransferStatus string

// The transaction statuses of seed 003.
const (
	Scheduled TransferStatus = "SCHEDULED"
	Pending   TransferStatus = "PENDING"
	Success   TransferStatus = "SUCCESS"
	Failed    TransferStatus = "FAILED"
)

// The seed's exact messages; errors carrying them have these as
// errs.MessageOf.
const (
	MsgMinimumDeposit    = "Minimum deposit amount is $10"
	MsgBankNotFound      = "Bank account not found"
	MsgBankNotVerified   = "We're verifying your bank account. This usually takes about 4 hours. Once verified, you'll be able to deposit and start trading."
	MsgInsufficient      = "Insufficient funds available for withdrawal"
	MsgTransactionNF     = "Transaction not found"
	MsgTradingOnly       = "Fund transfers are only available for Trading Accounts"
	MsgInvalidType       = "Invalid transaction type. Must be DEPOSIT or WITHDRAWAL"
	MsgInvalidStatus     = "Invalid status. Must be PENDING, SCHEDULED, SUCCESS or FAILED"
	MsgDepositSubmitted  = "Deposit request submitted successfully. It may take up to 4 business days for deposits to arrive."
	MsgWithdrawSubmitted = "Withdrawal request submitted successfully. It may take up to 4 business days for withdrawals to arrive."
)

// Accounts lists a user's trading accounts; *identity.Service implements it.
type Accounts interface {
	Accounts(ctx context.Context, userID string) ([]identity.Account, error)
}

// Balances tells how much may leave a user's trading account now (the
// platform's withdrawable amount less what funding's own withdrawals
// reserved), before the withdrawals banking already accepted. It returns
// errs.Unavailable when the platform cannot be read. FundingBalances
// implements it with funding.Service.
type Balances interface {
	Withdrawable(ctx context.Context, userID string, login int64, cur money.Currency) (money.Amount, error)
}

// FundingBalances reads withdrawable amounts through
// funding.Service.WithdrawalOptions.
type FundingBalances struct{ Funding *funding.Service }

// Withdrawable implements Balances. It returns the errors of
// funding.Service.WithdrawalOptions and errs.Internal when the platform
// account is in another currency.
func (f FundingBalances) Withdrawable(ctx context.Context, userID string, login int64, cur money.Currency) (money.Amount, error) {
	const op = "banking.FundingBalances"
	o, err := f.Funding.WithdrawalOptions(ctx, funding.Customer{UserID: userID}, login)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	if o.Account.Withdrawable.Currency() != cur {
		return money.Amount{}, errs.Ef(errs.Internal, op, "account %d is in %s, not %s", login, o.Account.Withdrawable.Currency().Code, cur.Code)
	}
	return o.Account.Withdrawable, nil
}

// MicroDeposit is one verification payment to a bank account.
type MicroDeposit struct {
	ID     string // bank id + ":1" or ":2"; the rail's idempotency key
	Bank   Bank
	Amount money.Amount
}

// Rail sends money to bank accounts. SendMicroDeposit is idempotent on
// MicroDeposit.ID and returns an error when the rail refuses or cannot be
// reached.
type Rail interface {
	SendMicroDeposit(ctx context.Context, m MicroDeposit) error
}

// PayoutRail sends micro-deposits as bank-transfer payouts of a payment
// provider (the sandbox's bank rail in the demo).
type PayoutRail struct{ Provider psp.Provider }

// SendMicroDeposit implements Rail with Provider.StartPayout.
func (p PayoutRail) SendMicroDeposit(ctx context.Context, m MicroDeposit) error {
	_, err := p.Provider.StartPayout(ctx, psp.PayoutRequest{
		ID: m.ID, Method: psp.BankTransfer, Amount: m.Amount,
		Destination: psp.Destination{IBAN: m.Bank.IBAN, BIC: m.Bank.BIC, HolderName: m.Bank.HolderName},
		Customer:    psp.Customer{ID: m.Bank.UserID},
		Description: "Bank account verification",
	})
	if err != nil {
		return errs.Wrap("banking.PayoutRail", err)
	}
	return nil
}

// Funds moves the money of cash transfers; *funding.Service implements it.
// BankDepositTx credits a trading account inside a deposit's settlement
// transaction, idempotently on the transfer's order id (see
// funding.Service.BankDeposit). RequestWithdrawal and WithdrawalByRequest
// run and follow a withdrawal's funding withdrawal, requested with the id
// "bank:" + order id.
type Funds interface {
	BankDepositTx(ctx context.Context, tx *sqlstore.Tx, c funding.BankCredit) (string, error)
	RequestWithdrawal(ctx context.Context, req funding.WithdrawalRequest) (funding.Withdrawal, error)
	WithdrawalByRequest(ctx context.Context, customerUserID, requestID string) (funding.Withdrawal, error)
}

// CustomerFunc gives the customer funding checks a withdrawal for
// (country and KYC level decide the methods).
type CustomerFunc func(ctx context.Context, userID string) (funding.Customer, error)

// Options configures a Service. DB, Accounts, Balances and Rail are
// required.
type Options struct {
	DB       *sqlstore.DB
	Accounts Accounts
	Balances Balances
	Rail     Rail
	// Funds, when set, moves the money: a DEPOSIT settled SUCCESS is
	// credited (in the settlement's transaction), and an accepted
	// WITHDRAWAL becomes a funding withdrawal to the bank (hold, WITHDRAW
	// push, approval, payout) whose outcome SyncWithdrawals copies.
	// Without it transfers are only recorded (the HTTP layer's tests).
	Funds Funds
	// Customers gives the customer of a withdrawal; default a customer
	// with only the user id.
	Customers CustomerFunc
	Clock     clock.Clock  // default clock.System
	Logger    *slog.Logger // default slog.Default()
	// VerifyAttempts is how many wrong confirmations reject a bank
	// (default 3).
	VerifyAttempts int
	// Currency of micro-deposits (default USD).
	Currency string
}

// DefaultVerifyAttempts is the default of Options.VerifyAttempts.
const DefaultVerifyAttempts = 3

// Service runs bank linking and cash transfers. It is safe for concurrent
// use.
type Service struct {
	db       *sqlstore.DB
	accounts Accounts
	balances Balances
	rail     Rail
	funds    Funds
	custs    CustomerFunc
	clock    clock.Clock
	log      *slog.Logger
	attempts int
	currency money.Currency
}

// New returns a Service. It returns errs.Invalid for a missing dependency,
// a negative attempt count or an unknown currency.
func New(o Options) (*Service, error) {
	const op = "banking.New"
	if o.DB == nil || o.Accounts == nil || o.Balances == nil || o.Rail == nil {
		return nil, errs.E(errs.Invalid, op, "DB, Accounts, Balances and Rail are required")
	}
	if o.VerifyAttempts < 0 {
		return nil, errs.E(errs.Invalid, op, "VerifyAttempts must not be negative")
	}
	if o.VerifyAttempts == 0 {
		o.VerifyAttempts = DefaultVerifyAttempts
	}
	if o.Currency == "" {
		o.Currency = "USD"
	}
	cur, err := money.LookupCurrency(o.Currency)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Customers == nil {
		o.Customers = func(_ context.Context, userID string) (funding.Customer, error) {
			return funding.Customer{UserID: userID}, nil
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{db: o.DB, accounts: o.Accounts, balances: o.Balances, rail: o.Rail, funds: o.Funds, custs: o.Customers, clock: o.Clock,
		log: o.Logger.With("component", "banking"), attempts: o.VerifyAttempts, currency: cur}, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// microCents returns a random amount of 1 to 99 minor units.
func microCents() (int64, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(99))
	if err != nil {
		return 0, err
	}
	return n.Int64() + 1, nil
}
