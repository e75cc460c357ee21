package cashierpages_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
)

// fakeFunding is an in-memory funding service for the screens' unit tests:
// the default method catalogue, accounts with fixed balances, deposits
// that wait for the test to settle them, and withdrawals that go straight
// to awaiting approval (or to awaiting_2fa with code "424242").
type fakeFunding struct {
	mu          sync.Mutex
	catalog     *payments.Catalog
	accounts    map[int64]fakeAccount
	deposits    map[string]*funding.Deposit
	byRequest   map[string]string // request id → deposit id
	withdrawals map[string]*funding.Withdrawal
	wdRequests  map[string]string
	requests    []funding.DepositRequest
	wdReqs      []funding.WithdrawalRequest
	hosted      string // base URL of the "provider's" hosted page
	require2FA  bool
	cards       []funding.SavedCard
	// fail, when set, is returned by the next StartDeposit or
	// RequestWithdrawal call.
	fail error
	n    int
	// optionsRead counts DepositOptions calls (each reads the account's
	// balance from the platform).
	optionsRead int
}

type fakeAccount struct {
	user                  string
	balance, withdrawable money.Amount
}

func newFakeFunding(hosted string) *fakeFunding {
	return &fakeFunding{catalog: payments.DefaultCatalog(), accounts: map[int64]fakeAccount{}, deposits: map[string]*funding.Deposit{},
		byRequest: map[string]string{}, withdrawals: map[string]*funding.Withdrawal{}, wdRequests: map[string]string{}, hosted: hosted}
}

func (f *fakeFunding) addAccount(user string, login int64, balance, withdrawable money.Amount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[login] = fakeAccount{user: user, balance: balance, withdrawable: withdrawable}
}

func (f *fakeFunding) account(u funding.Customer, login int64) (funding.AccountView, error) {
	a, ok := f.accounts[login]
	switch {
	case !ok:
		return funding.AccountView{}, errs.E(errs.NotFound, "fake", "no such account")
	case a.user != u.UserID:
		return funding.AccountView{}, errs.E(errs.Forbidden, "fake", "someone else's account")
	}
	return funding.AccountView{Login: login, Currency: a.balance.Currency(), Balance: a.balance, Withdrawable: a.withdrawable, BalanceKnown: true, Kind: "trading"}, nil
}

func (f *fakeFunding) methods(d payments.Direction, cur string, u funding.Customer) []payments.Method {
	var out []payments.Method
	for _, m := range f.catalog.Available(payments.Filter{Direction: d, Country: u.Country, KYCLevel: u.KYCLevel}) {
		if d == payments.Withdrawal && !slices.Contains(m.Withdrawal.Currencies(), cur) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func (f *fakeFunding) DepositOptions(_ context.Context, u funding.Customer, login int64) (funding.DepositOptions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.optionsRead++
	a, err := f.account(u, login)
	if err != nil {
		return funding.DepositOptions{}, err
	}
	return funding.DepositOptions{Account: a, Methods: f.methods(payments.Deposit, a.Currency.Code, u)}, nil
}

var fakeRates = map[string]money.Rate{"EUR/USD": money.MustParseRate("1.0835"), "USDT/USD": money.MustParseRate("1")}

func (f *fakeFunding) QuoteDeposit(_ context.Context, u funding.Customer, login int64, methodID string, amount money.Amount) (payments.Price, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.account(u, login)
	if err != nil {
		return payments.Price{}, err
	}
	return f.price(a, methodID, amount)
}

func (f *fakeFunding) price(a funding.AccountView, methodID string, amount money.Amount) (payments.Price, error) {
	q, err := f.catalog.Quote(methodID, payments.Deposit, amount, "en")
	if err != nil {
		return payments.Price{}, err
	}
	p := payments.Price{Quote: q, Account: q.Net}
	if q.Net.Currency() != a.Currency {
		rate, ok := fakeRates[q.Net.Currency().Code+"/"+a.Currency.Code]
		if !ok {
			return payments.Price{}, errs.E(errs.Unavailable, "fake", "no rate")
		}
		to, err := money.Convert(q.Net, a.Currency, rate, money.RoundHalfEven)
		if err != nil {
			return payments.Price{}, err
		}
		p.Account = to
		p.FX = &payments.Conversion{From: q.Net, To: to, MidRate: rate, Rate: rate}
	}
	return p, nil
}

func (f *fakeFunding) StartDeposit(_ context.Context, req funding.DepositRequest) (funding.Deposit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if err := f.fail; err != nil {
		f.fail = nil
		return funding.Deposit{}, err
	}
	if id, ok := f.byRequest[req.ID]; ok {
		return *f.deposits[id], nil
	}
	a, err := f.account(req.Customer, req.Login)
	if err != nil {
		return funding.Deposit{}, err
	}
	p, err := f.price(a, req.MethodID, req.Amount)
	if err != nil {
		return funding.Deposit{}, err
	}
	m, _ := f.catalog.Method(req.MethodID)
	f.n++
	d := &funding.Deposit{ID: fmt.Sprintf("dep_%d", f.n), UserID: req.Customer.UserID, Login: req.Login, MethodID: m.ID, Kind: m.Kind,
		Status: funding.DepositAwaitingPayment, Amount: p.Gross, Fee: p.Fee, Net: p.Net, Credit: p.Account}
	switch m.Kind {
	case psp.BankTransfer:
		d.Next = funding.Next{Kind: psp.NextInstructions, Instructions: &psp.Instructions{BankName: "Sandbox Bank plc", AccountHolder: "Client Funds",
			IBAN: "GB33BUKB20201555555555", BIC: "BUKBGB22", Reference: "REF-" + d.ID, Amount: p.Gross}}
	case psp.Crypto:
		d.Next = funding.Next{Kind: psp.NextInstructions, Instructions: &psp.Instructions{Address: "TXYZsandboxAddress0000000000000001",
			Network: "TRC20", RequiredConfirmations: 3, Amount: p.Gross}}
	default:
		d.Next = funding.Next{Kind: psp.NextRedirect, RedirectURL: f.hosted + "/" + d.ID + "?return=" + req.ReturnURL}
	}
	f.deposits[d.ID] = d
	f.byRequest[req.ID] = d.ID
	return *d, nil
}

func (f *fakeFunding) Deposit(_ context.Context, user, id string) (funding.Deposit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deposits[id]
	if !ok || d.UserID != user {
		return funding.Deposit{}, errs.E(errs.NotFound, "fake", "no such deposit")
	}
	return *d, nil
}

// settle moves a deposit to a status; a declined one allows a retry.
func (f *fakeFunding) settle(id string, st funding.DepositStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deposits[id]
	d.Status = st
	if st == funding.DepositDeclined {
		b := payments.PaymentFailed("", true)
		b.Reason = psp.DeclineDoNotHonour
		d.Failure = &b
	}
}

func (f *fakeFunding) lastDeposit() funding.Deposit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.deposits[fmt.Sprintf("dep_%d", f.n)]
}

func (f *fakeFunding) WithdrawalOptions(_ context.Context, u funding.Customer, login int64) (funding.WithdrawalOptions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.account(u, login)
	if err != nil {
		return funding.WithdrawalOptions{}, err
	}
	return funding.WithdrawalOptions{Account: a, Methods: f.methods(payments.Withdrawal, a.Currency.Code, u), Cards: f.cards}, nil
}

func (f *fakeFunding) RequestWithdrawal(_ context.Context, req funding.WithdrawalRequest) (funding.Withdrawal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wdReqs = append(f.wdReqs, req)
	if err := f.fail; err != nil {
		f.fail = nil
		return funding.Withdrawal{}, err
	}
	if id, ok := f.wdRequests[req.ID]; ok {
		return *f.withdrawals[id], nil
	}
	a, err := f.account(req.Customer, req.Login)
	if err != nil {
		return funding.Withdrawal{}, err
	}
	m, err := f.catalog.Method(req.MethodID)
	if err != nil {
		return funding.Withdrawal{}, err
	}
	if err := funding.CheckDetails(m.Kind, req.Details); err != nil {
		return funding.Withdrawal{}, err
	}
	if c, _ := req.Amount.Cmp(a.Withdrawable); c > 0 {
		body, _ := payments.InsufficientFunds(a.Withdrawable, req.Amount)
		return funding.Withdrawal{}, &errs.Error{Code: errs.Insufficient, Op: "fake", Message: "insufficient funds",
			Err: &funding.InsufficientFundsError{Available: a.Withdrawable, Requested: req.Amount, Body: body}}
	}
	f.n++
	w := &funding.Withdrawal{ID: fmt.Sprintf("wd_%d", f.n), UserID: req.Customer.UserID, Login: req.Login, MethodID: m.ID, Kind: m.Kind,
		Status: funding.WithdrawalAwaitingApproval, Amount: req.Amount, Net: req.Amount, Destination: "IBAN " + req.Details[funding.DetailIBAN]}
	if f.require2FA {
		w.Status = funding.WithdrawalAwaiting2FA
		w.Code = &funding.CodeStatus{AttemptsLeft: 3, Sent: true}
	}
	f.withdrawals[w.ID] = w
	f.wdRequests[req.ID] = w.ID
	return *w, nil
}

func (f *fakeFunding) ConfirmWithdrawal(_ context.Context, user, id, code string) (funding.Withdrawal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.withdrawals[id]
	switch {
	case !ok || w.UserID != user:
		return funding.Withdrawal{}, errs.E(errs.NotFound, "fake", "no such withdrawal")
	case w.Status != funding.WithdrawalAwaiting2FA:
		return funding.Withdrawal{}, errs.E(errs.Conflict, "fake", "not waiting for a code")
	case code != "424242":
		w.Code.AttemptsLeft--
		return funding.Withdrawal{}, errs.E(errs.Invalid, "fake", "wrong code")
	}
	w.Status, w.Code = funding.WithdrawalAwaitingApproval, nil
	return *w, nil
}

func (f *fakeFunding) Withdrawal(_ context.Context, user, id string) (funding.Withdrawal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.withdrawals[id]
	if !ok || w.UserID != user {
		return funding.Withdrawal{}, errs.E(errs.NotFound, "fake", "no such withdrawal")
	}
	return *w, nil
}
