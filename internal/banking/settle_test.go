package banking_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/psp/sandbox"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const (
	annLogin = int64(7000001)
	annID    = "usr_ann"
)

// directory is the user's trading accounts, for banking and funding.
type directory map[int64]identity.Account

func (d directory) Accounts(_ context.Context, userID string) ([]identity.Account, error) {
	var out []identity.Account
	for _, a := range d {
		if a.UserID == userID {
			out = append(out, a)
		}
	}
	return out, nil
}

func (d directory) AccountOf(_ context.Context, userID string, login int64) (identity.Account, error) {
	a, ok := d[login]
	if !ok || a.UserID != userID {
		return identity.Account{}, errs.Ef(errs.NotFound, "directory", "trading account %d not found", login)
	}
	return a, nil
}

// rail keeps the micro-deposits it was asked to send.
type rail struct{ sent map[string]money.Amount }

func (r *rail) SendMicroDeposit(_ context.Context, m banking.MicroDeposit) error {
	r.sent[m.ID] = m.Amount
	return nil
}

// plenty lets any withdrawal through banking's own check.
type plenty struct{}

func (plenty) Withdrawable(_ context.Context, _ string, _ int64, cur money.Currency) (money.Amount, error) {
	return money.New(1_000_000_00, cur), nil
}

type settleRig struct {
	t      *testing.T
	db     *sqlstore.DB
	sim    *ctradersim.Sim
	runner *jobs.Runner
	bank   *banking.Service
	fund   *funding.Service
	rail   *rail
}

func newSettleRig(t *testing.T, db *sqlstore.DB) *settleRig {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	simSrv, err := ctradersim.Start(ctx, ctradersim.Config{Clock: clk, Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders:  []ctradersim.TraderSeed{{Login: annLogin, Currency: "USD", Balance: "1000.00", Password: "pw"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = simSrv.Close() })
	conn, err := ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The sandbox provider pays withdrawals out by bank transfer.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	sb, err := sandbox.NewServer(db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: "whsec_test", Clock: clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookSecret: "whsec_test", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	pay, err := payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs, Clock: clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	pay.Routes(mux.Handle)
	pu := push.New(db, conn, push.Options{Clock: clk, SendTimeout: 5 * time.Second, Logger: logger})
	dir := directory{annLogin: {Login: annLogin, Currency: "USD", Kind: identity.KindTrading, UserID: annID}}
	fund, err := funding.New(funding.Deps{DB: db, Clock: clk, Ledger: ledger.New(db, clk), Push: pu, Payments: pay, Platform: conn,
		Accounts: dir, Observer: obs, Logger: logger}, funding.Config{AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(10000, money.MustCurrency("USD"))}})
	if err != nil {
		t.Fatal(err)
	}
	r := &settleRig{t: t, db: db, sim: simSrv.Sim(), fund: fund, rail: &rail{sent: map[string]money.Amount{}}}
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: clk, Workers: 1, HeartbeatInterval: -1, Logger: logger})
	pu.Register(r.runner)
	fund.RegisterJobs(r.runner)
	for _, hs := range []map[string]jobs.Handler{pay.JobHandlers(), sb.JobHandlers()} {
		for kind, h := range hs {
			r.runner.Handle(kind, h)
		}
	}
	r.bank, err = banking.New(banking.Options{DB: db, Accounts: dir, Balances: plenty{}, Rail: r.rail, Funds: fund, Clock: clk, Logger: logger,
		Customers: func(_ context.Context, userID string) (funding.Customer, error) {
			return funding.Customer{UserID: userID, Country: "DE", KYCLevel: 2, Lang: "en", Email: "ann@example.com"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs every job that is due, until none is left.
func (r *settleRig) run() {
	r.t.Helper()
	for range 200 {
		n, err := r.runner.RunOnce(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	r.t.Fatal("jobs never ran dry")
}

func (r *settleRig) transfer(typ banking.TransferType, amount, bankID string) banking.Transfer {
	r.t.Helper()
	tr, err := r.bank.CashTransfer(context.Background(), banking.TransferRequest{UserID: annID, Type: typ, Amount: amount, BankID: bankID})
	if err != nil {
		r.t.Fatalf("CashTransfer %s %s: %v", typ, amount, err)
	}
	return tr
}

func (r *settleRig) simBalance() string {
	r.t.Helper()
	tr, err := r.sim.Trader(annLogin)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr.Balance.Decimal()
}

// TestCashTransfersMoveMoneyOnce runs cash transfers through funding on
// both databases against the simulator and the sandbox's bank rail: a
// DEPOSIT settled SUCCESS reaches the trading account once (a second
// settlement is refused), a FAILED one books nothing; a WITHDRAWAL is held,
// debited on the platform and paid out, and SyncWithdrawals makes it
// SUCCESS (it cannot be settled by hand); one funding refuses fails at once.
// The simulator's balance equals the opening balance plus what the ledger
// moved, with the ledger's invariants intact.
func TestCashTransfersMoveMoneyOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newSettleRig(t, db)
		ctx := context.Background()
		b, err := r.bank.LinkBank(ctx, annID, banking.NewBank{BankName: "Chase", HolderName: "Ann Archer", IBAN: "DE89 3704 0044 0532 0130 00"})
		if err != nil {
			t.Fatal(err)
		}
		amounts := [2]string{r.rail.sent[b.ID+":1"].Decimal(), r.rail.sent[b.ID+":2"].Decimal()}
		if b, err = r.bank.VerifyBank(ctx, annID, b.ID, amounts); err != nil || b.Status != banking.BankProcessed {
			t.Fatalf("verify: %s, %v", b.Status, err)
		}

		ok := r.transfer(banking.Deposit, "50.00", b.ID)
		if _, err := r.bank.Settle(ctx, ok.OrderID, true, ""); err != nil {
			t.Fatalf("settle the deposit: %v", err)
		}
		if _, err := r.bank.Settle(ctx, ok.OrderID, true, ""); !errs.Is(err, errs.Conflict) {
			t.Errorf("settling it again: %v, want a conflict", err)
		}
		failed := r.transfer(banking.Deposit, "70.00", b.ID)
		if got, err := r.bank.Settle(ctx, failed.OrderID, false, "returned by the bank"); err != nil || got.Status != banking.Failed {
			t.Fatalf("fail a deposit: %s, %v", got.Status, err)
		}
		// A withdrawal is a funding withdrawal to the bank: held, debited
		// on the platform, paid out by the bank rail; its status follows.
		wd := r.transfer(banking.Withdrawal, "60.00", b.ID)
		for _, ok := range []bool{true, false} {
			if _, err := r.bank.Settle(ctx, wd.OrderID, ok, ""); !errs.Is(err, errs.Conflict) {
				t.Errorf("settling a withdrawal by hand (%v): %v, want a conflict", ok, err)
			}
		}
		if _, err := r.bank.CashTransfer(ctx, banking.TransferRequest{UserID: annID, Type: banking.Withdrawal, Amount: "5000.00",
			BankID: b.ID}); !errs.Is(err, errs.Insufficient) || errs.MessageOf(err) != banking.MsgInsufficient {
			t.Errorf("a withdrawal of more than the account holds: %v, want %q", err, banking.MsgInsufficient)
		}
		r.run()
		if n, err := r.bank.SyncWithdrawals(ctx); err != nil || n != 1 {
			t.Errorf("SyncWithdrawals = %d, %v; want the one paid withdrawal finished", n, err)
		}
		if got, err := r.bank.Transaction(ctx, annID, wd.OrderID); err != nil || got.Status != banking.Success {
			t.Errorf("the paid withdrawal is %s (%v), want SUCCESS", got.Status, err)
		}
		page, err := r.bank.Transactions(ctx, annID, banking.Query{Limit: 10, Status: banking.Failed, Type: banking.Withdrawal})
		if err != nil || page.Total != 1 || page.Results[0].Amount.Decimal() != "5000.00" {
			t.Errorf("failed withdrawals = %+v, %v; want the refused 5000.00", page.Results, err)
		}

		// One an operator rejects gives the money back and FAILS.
		big := r.transfer(banking.Withdrawal, "150.00", b.ID)
		r.run()
		if got := r.simBalance(); got != "840.00" {
			t.Errorf("platform balance %s while 150.00 awaits approval, want 840.00", got)
		}
		w, err := r.fund.WithdrawalByRequest(ctx, annID, "bank:"+big.OrderID)
		if err != nil || w.Status != funding.WithdrawalAwaitingApproval {
			t.Fatalf("the large withdrawal: %s, %v; want awaiting approval", w.Status, err)
		}
		if _, err := r.fund.RejectWithdrawal(ctx, w.ID, "tester", "not this time"); err != nil {
			t.Fatal(err)
		}
		r.run()
		if n, err := r.bank.SyncWithdrawals(ctx); err != nil || n != 1 {
			t.Errorf("SyncWithdrawals after the rejection = %d, %v", n, err)
		}
		if got, _ := r.bank.Transaction(ctx, annID, big.OrderID); got.Status != banking.Failed {
			t.Errorf("the rejected withdrawal is %s, want FAILED", got.Status)
		}

		if got := r.simBalance(); got != "990.00" {
			t.Errorf("platform balance %s, want 990.00 (a deposit of 50.00, a withdrawal of 60.00)", got)
		}
		rep, err := ledger.Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Errorf("ledger.Verify:\n%s", rep)
		}
		led := ledger.New(db, nil)
		platformAcct, err := led.Balance(ctx, "platform:ctrader:7000001")
		if err != nil {
			t.Fatal(err)
		}
		if platformAcct.Posted.String() != "-10.00 USD" || platformAcct.PendingIn.Sign() != 0 || platformAcct.PendingOut.Sign() != 0 {
			t.Errorf("the ledger moved %+v onto the trading account, want -10.00 USD posted", platformAcct)
		}
		if got, _ := r.bank.Transaction(ctx, annID, ok.OrderID); got.Status != banking.Success {
			t.Errorf("the settled deposit is %s, want SUCCESS", got.Status)
		}
	}, ledger.Schema, jobs.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, banking.Schema)
}
