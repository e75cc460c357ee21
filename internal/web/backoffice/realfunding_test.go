package backoffice_test

// The queues over the real funding stack: funding (through FundingOf), the
// ledger, the balance push with the cTrader client against an in-process
// simulator, payments with the sandbox provider on 127.0.0.1, and the job
// runner, on a fake clock. Staff, reports and the rest stay fakes; the
// transaction page's status comes from funding itself (fundingReports).

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

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
	bo "github.com/opencashier/cashier/internal/web/backoffice"
	bt "github.com/opencashier/cashier/internal/web/backoffice/backofficetest"
)

// realSchemas are the schemas of the real funding stack.
var realSchemas = []sqlstore.Schema{ledger.Schema, push.Schema, payments.Schema, sandbox.Schema, funding.Schema, jobs.Schema}

const (
	aliceLogin = int64(8673590)
	bobLogin   = int64(8673592)
)

var (
	alice = funding.Customer{UserID: "usr_alice", Country: "DE", KYCLevel: 2, Lang: "en", Email: "alice@example.com"}
	bob   = funding.Customer{UserID: "usr_bob", Country: "GB", KYCLevel: 2, Lang: "en", Email: "bob@example.com"}
)

// directory is funding's AccountDirectory over the fixtures' accounts.
type directory map[int64]identity.Account

func (d directory) AccountOf(_ context.Context, userID string, login int64) (identity.Account, error) {
	a, ok := d[login]
	switch {
	case !ok:
		return identity.Account{}, errs.Ef(errs.NotFound, "directory", "trading account %d not found", login)
	case a.UserID != userID:
		return identity.Account{}, errs.Ef(errs.Forbidden, "directory", "trading account %d belongs to someone else", login)
	}
	return a, nil
}

// realStack is funding and its services on one database.
type realStack struct {
	t      testing.TB
	fund   *funding.Service
	push   *push.Service
	pay    *payments.Service
	runner *jobs.Runner
}

// newRealStack builds the stack on db with the site's clock: withdrawals
// above 100 USD wait for approval, above 1000 USD for two approvers.
func newRealStack(t testing.TB, s *site, db *sqlstore.DB) *realStack {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	simSrv, err := ctradersim.Start(ctx, ctradersim.Config{Clock: s.clk, Seed: ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}},
		Traders: []ctradersim.TraderSeed{
			{Login: aliceLogin, Currency: "USD", Balance: "5000.00", Password: "pw"},
			{Login: bobLogin, Currency: "USD", Balance: "5000.00", Password: "pw"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = simSrv.Close() })
	conn, err := ctrader.New(ctrader.Config{BaseURL: simSrv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sb, err := sandbox.NewServer(db, sandbox.Options{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookURL: srv.URL + "/psp/sandbox/webhook",
		WebhookSecret: "whsec_test", Clock: s.clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sandbox.NewClient(sandbox.ClientOptions{BaseURL: srv.URL + sandbox.Prefix, APIKey: "sk_test", WebhookSecret: "whsec_test", Clock: s.clk})
	if err != nil {
		t.Fatal(err)
	}
	providers, err := psp.NewRegistry(client)
	if err != nil {
		t.Fatal(err)
	}
	obs := &funding.PaymentObserver{}
	st := &realStack{t: t}
	if st.pay, err = payments.NewService(db, payments.Options{Providers: providers, Methods: payments.DefaultCatalog(), Observer: obs, Clock: s.clk, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	sb.Routes(mux.Handle)
	st.pay.Routes(mux.Handle)
	st.push = push.New(db, conn, push.Options{Clock: s.clk, SendTimeout: 5 * time.Second, LookupMargin: 10 * time.Second, RetryAfter: time.Minute, Logger: logger})
	dir := directory{
		aliceLogin: {Login: aliceLogin, Currency: "USD", Kind: identity.KindTrading, UserID: alice.UserID},
		bobLogin:   {Login: bobLogin, Currency: "USD", Kind: identity.KindTrading, UserID: bob.UserID},
	}
	st.fund, err = funding.New(funding.Deps{DB: db, Clock: s.clk, Ledger: ledger.New(db, s.clk), Push: st.push, Payments: st.pay, Platform: conn,
		Accounts: dir, Observer: obs, Logger: logger, Screener: newDestinations{}}, funding.Config{
		AutoApproveWithdrawalsUpTo: map[string]money.Amount{"USD": money.New(10000, usd)},
		FourEyesAbove:              map[string]money.Amount{"USD": money.New(100000, usd)},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.runner = jobs.NewRunner(db, jobs.Options{Clock: s.clk, Workers: 1, HeartbeatInterval: -1, Logger: logger, BackoffBase: time.Second, BackoffMax: time.Second})
	st.push.Register(st.runner)
	for _, hs := range []map[string]jobs.Handler{st.pay.JobHandlers(), sb.JobHandlers()} {
		for kind, h := range hs {
			st.runner.Handle(kind, h)
		}
	}
	st.fund.RegisterJobs(st.runner)
	return st
}

// newDestinations holds withdrawals to Bob's IBAN as the compliance rule
// "first withdrawal to a new destination" would, so that the queue shows
// a hold with its explanation.
type newDestinations struct{}

func (newDestinations) Screen(_ context.Context, _ *sqlstore.Tx, c funding.Check) (funding.Verdict, error) {
	if c.Kind == funding.KindWithdrawal && c.Stage == funding.StageRequest && c.Customer.UserID == bob.UserID {
		return funding.Verdict{Hold: true, Rule: "new_destination",
			Explanation: "First withdrawal to IBAN GB33 … 5555: no earlier withdrawal or deposit of the user used it."}, nil
	}
	return funding.Verdict{}, nil
}

// run runs every job that is due, until none is left.
func (st *realStack) run() {
	st.t.Helper()
	for range 500 {
		n, err := st.runner.RunOnce(context.Background())
		if err != nil {
			st.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	st.t.Fatal("jobs never ran dry")
}

// withdraw asks for a bank-transfer withdrawal and runs the jobs until it
// waits for approval.
func (st *realStack) withdraw(c funding.Customer, login int64, amount string) funding.Withdrawal {
	st.t.Helper()
	a, err := money.Parse(amount, usd)
	if err != nil {
		st.t.Fatal(err)
	}
	w, err := st.fund.RequestWithdrawal(context.Background(), funding.WithdrawalRequest{ID: "req-" + amount + "-" + strconv.FormatInt(login, 10),
		Customer: c, Login: login, MethodID: "bank-transfer", Amount: a,
		Details: map[string]string{funding.DetailIBAN: "GB33BUKB20201555555555", funding.DetailHolderName: "Alice Archer"}})
	if err != nil {
		st.t.Fatal(err)
	}
	st.run()
	if w, err = st.fund.GetWithdrawal(context.Background(), w.ID); err != nil || w.Status != funding.WithdrawalAwaitingApproval {
		st.t.Fatalf("withdrawal %s is %s (%v), want awaiting approval", w.ID, w.Status, err)
	}
	return w
}

// fundingReports answers the transaction pages from funding: the status
// and history of a withdrawal as funding stores them.
type fundingReports struct {
	*bt.Reports
	fund *funding.Service
}

func (r fundingReports) Timeline(ctx context.Context, id string) (bo.TxDetail, error) {
	w, err := r.fund.GetWithdrawal(ctx, id)
	if err != nil {
		return bo.TxDetail{}, err
	}
	h, err := r.fund.WithdrawalHistory(ctx, w.UserID, id)
	if err != nil {
		return bo.TxDetail{}, err
	}
	d := bo.TxDetail{Row: bo.TxRow{ID: w.ID, Kind: "withdrawal", UserID: w.UserID, Login: w.Login, MethodID: w.MethodID, State: string(w.State),
		Amount: w.Amount, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}, PaymentID: w.PaymentID}
	for _, c := range h {
		d.Timeline = append(d.Timeline, bo.TimelineEvent{At: c.At, Source: "funding", What: c.From + " → " + c.To, Detail: c.Reason + " " + c.Detail, Actor: c.Actor})
	}
	return d, nil
}

// withRealFunding puts the real stack, on db, behind the site's queues
// and transaction pages.
func withRealFunding(st **realStack, db *sqlstore.DB) func(*site, *bo.Deps, *bo.Options) {
	return func(s *site, d *bo.Deps, _ *bo.Options) {
		*st = newRealStack(s.t, s, db)
		d.Funding, d.Pushes, d.Payments = bo.FundingOf((*st).fund), (*st).push, (*st).pay
		d.Reports = fundingReports{Reports: s.rep, fund: (*st).fund}
	}
}

// Four-eyes over the real funding service, on both databases: two
// withdrawals wait for approval; the small one needs one approver, the
// large one two different people. The queue says who approved first; the
// first approver trying again is refused with funding's message; the
// second approval sends the payout on its way.
func TestFourEyesWithRealFunding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		var st *realStack
		s := newSite(t, withRealFunding(&st, db))
		small := st.withdraw(alice, aliceLogin, "150.00")
		large := st.withdraw(bob, bobLogin, "1500.00")
		first, second := s.as(financeID), s.as(finance2ID)

		q := first.get("/backoffice/queues/withdrawals")
		for _, want := range []string{`id="row-` + small.ID + `"`, `id="row-` + large.ID + `"`, "$1,500.00", "IBAN GB33 … 5555", "Needs two approvers.", "held: new destination", "no earlier withdrawal or deposit of the user used it"} {
			if !strings.Contains(q.body, want) {
				t.Errorf("the queue lacks %q\n%s", want, excerpt(q.body))
			}
		}
		if p := first.post("/backoffice/queues/withdrawals/"+small.ID+"/approve", nil); p.status != http.StatusSeeOther {
			t.Fatalf("approve the small one: %d\n%s", p.status, excerpt(p.body))
		}
		if p := first.post("/backoffice/queues/withdrawals/"+large.ID+"/approve", nil); p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=first_approval") {
			t.Fatalf("first approval: %d to %q", p.status, p.location())
		}
		if q := second.get("/backoffice/queues/withdrawals"); !strings.Contains(q.body, "First approval by Finance Person (finance@broker.test), needs a second approver.") ||
			strings.Contains(q.body, `id="row-`+small.ID+`"`) {
			t.Errorf("after the first approvals:\n%s", excerpt(q.body))
		}
		again := first.post("/backoffice/queues/withdrawals/"+large.ID+"/approve", nil)
		if again.status != http.StatusForbidden || !strings.Contains(again.body, "the second approver must be another person") {
			t.Errorf("the first approver again: %d\n%s", again.status, excerpt(again.body))
		}
		if w, _ := st.fund.GetWithdrawal(ctx, large.ID); w.Status != funding.WithdrawalAwaitingApproval {
			t.Fatalf("after the refused second approval: %s", w.Status)
		}
		if p := second.post("/backoffice/queues/withdrawals/"+large.ID+"/approve", nil); p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=approved") {
			t.Fatalf("second approval: %d to %q\n%s", p.status, p.location(), excerpt(p.body))
		}
		for _, id := range []string{small.ID, large.ID} {
			w, err := st.fund.GetWithdrawal(ctx, id)
			if err != nil || w.Status != funding.WithdrawalApproved {
				t.Errorf("%s: %s, %v; want approved", id, w.Status, err)
			}
		}
		w, _ := st.fund.GetWithdrawal(ctx, large.ID)
		if w.FirstApprovedBy != "staff:"+financeID || w.DecidedBy != "staff:"+finance2ID {
			t.Errorf("approvers recorded: first %q, decided %q", w.FirstApprovedBy, w.DecidedBy)
		}
		detail := second.get("/backoffice/transactions/" + large.ID)
		if !strings.Contains(detail.body, `id="status">approved`) || !strings.Contains(detail.body, "first_approval") {
			t.Errorf("the transaction page:\n%s", excerpt(detail.body))
		}
		// A rejection needs a reason and returns the money.
		rej := st.withdraw(alice, aliceLogin, "120.00")
		if p := first.post("/backoffice/queues/withdrawals/"+rej.ID+"/reject", url.Values{"reason": {"holder name differs from the account"}}); p.status != http.StatusSeeOther {
			t.Fatalf("reject: %d\n%s", p.status, excerpt(p.body))
		}
		if w, _ := st.fund.GetWithdrawal(ctx, rej.ID); w.State != funding.WithdrawalRejected || w.Reason != "holder name differs from the account" {
			t.Errorf("rejected: %s %q", w.State, w.Reason)
		}
	}, realSchemas...)
}
