package reconcile_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// books is the real data of the tests: deposits and withdrawals made
// through funding, the sandbox provider and the cTrader simulator.
type books struct {
	aliceDeposit  funding.Deposit    // 100.00 by card, 97.20 credited
	bobDeposit    funding.Deposit    // 50.00 by the Brazilian card, 48.45 credited
	declined      funding.Deposit    // declined card: no push
	bankDeposit   funding.Deposit    // bank transfer still waiting for the money
	aliceWithdraw funding.Withdrawal // 200.00 by bank transfer, 195.00 paid out
}

func (r *rig) makeBooks() books {
	r.t.Helper()
	var b books
	b.aliceDeposit = r.deposit(alice, aliceUSD, "100.00", "4242424242424242")
	b.bobDeposit = r.deposit(bob, bobUSD, "50.00", "4000000760000002")
	b.declined = r.deposit(alice, aliceUSD, "20.00", "4000000000000002")
	d, err := r.fund.StartDeposit(context.Background(), funding.DepositRequest{ID: "form-bank", Customer: bob, Login: bobUSD,
		MethodID: "bank-transfer", Amount: amt("300.00"), Lang: "en"})
	if err != nil {
		r.t.Fatal(err)
	}
	b.bankDeposit = d
	r.clk.Advance(time.Millisecond)
	b.aliceWithdraw = r.withdraw(alice, aliceUSD, "200.00", false)
	for what, got := range map[string]string{
		"alice's deposit": string(b.aliceDeposit.Status), "bob's deposit": string(b.bobDeposit.Status),
		"the declined deposit": string(b.declined.Status), "the withdrawal": string(b.aliceWithdraw.Status),
	} {
		want := "completed"
		if what == "the declined deposit" {
			want = "declined"
		}
		if got != want {
			r.t.Fatalf("%s is %s, want %s", what, got, want)
		}
	}
	return b
}

func TestCleanRunOverRealData(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		r.makeBooks()
		r.advance(20 * time.Minute) // past the settle time

		run := r.reconcile(reconcile.RunOptions{})
		if run.Status != reconcile.Clean || run.Differences != 0 || run.NewCases != 0 || len(run.Detail.Skipped) != 0 {
			t.Fatalf("run %+v, want clean", run)
		}
		// Two accounts, three pushes (two credits, one debit); at the
		// sandbox: two paid deposits, the declined one, the waiting bank
		// transfer and the payout.
		if got, want := run.Summary(), "clean: 2 accounts, 5 payments checked"; got != want {
			t.Errorf("summary %q, want %q", got, want)
		}
		if run.Pushes != 3 || run.ReportLine != 5 {
			t.Errorf("pushes %d, report lines %d; want 3 and 5", run.Pushes, run.ReportLine)
		}
		want := []reconcile.AccountFigures{
			{Login: aliceUSD, Ledger: "-102.80 USD", Pushes: "-102.80 USD", Applied: 2, Platform: "-102.80 USD", Balance: "897.20 USD", Outside: "1000.00 USD"},
			{Login: bobUSD, Ledger: "48.45 USD", Pushes: "48.45 USD", Applied: 1, Platform: "48.45 USD", Balance: "298.45 USD", Outside: "250.00 USD"},
		}
		if diff := cmp.Diff(want, run.Detail.Accounts); diff != "" {
			t.Errorf("account figures (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]reconcile.ProviderFigures{{Name: "sandbox", ReportLines: 5, Payments: 5}}, run.Detail.Providers); diff != "" {
			t.Errorf("provider figures (-want +got):\n%s", diff)
		}
		if cs := r.cases(""); len(cs) != 0 {
			t.Errorf("a clean run opened cases: %+v", cs)
		}
		// The run is recorded, and says so.
		runs, err := r.svc.Runs(ctx, 10)
		if err != nil || len(runs) != 1 {
			t.Fatalf("Runs = %d runs, %v", len(runs), err)
		}
		if diff := cmp.Diff(run, runs[0]); diff != "" {
			t.Errorf("recorded run (-returned +stored):\n%s", diff)
		}
		if got, err := r.svc.GetRun(ctx, run.ID); err != nil || got.Status != reconcile.Clean || got.Summary() != run.Summary() {
			t.Errorf("GetRun = %+v, %v", got, err)
		}
		if _, err := r.svc.GetRun(ctx, "rcn_nope"); !errs.Is(err, errs.NotFound) {
			t.Errorf("GetRun of an unknown run: %v, want ENOTFOUND", err)
		}
		if diff := cmp.Diff([]string{"reconcile.run system"}, r.audit.actions()); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

type caseRow struct {
	Kind             reconcile.Kind
	Subject, Ref     string
	Expected, Actual string
	Status           reconcile.CaseStatus
	Seen             int
}

func rows(cs []reconcile.Case) []caseRow {
	out := make([]caseRow, len(cs))
	for i, c := range cs {
		out[i] = caseRow{c.Kind, c.Subject, c.Ref, c.Expected, c.Actual, c.Status, c.Seen}
	}
	slices.SortFunc(out, func(a, b caseRow) int {
		return strings.Compare(string(a.Kind)+a.Subject+a.Ref, string(b.Kind)+b.Subject+b.Ref)
	})
	return out
}

func evidence(t *testing.T, c reconcile.Case) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Evidence, &m); err != nil {
		t.Fatalf("case %s evidence %s: %v", c.ID, c.Evidence, err)
	}
	return m
}

// field reads a nested evidence field, e.g. field(m, "push", "state").
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func TestPlantedDifferencesBecomeCases(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		b := r.makeBooks()

		// A payment at the provider that the cashier never made.
		stranger, err := r.provider.StartPayment(ctx, psp.PaymentRequest{ID: "pay_stranger", Method: psp.Card, Amount: amt("25.00"),
			ReturnURL: "https://elsewhere.example/return"})
		if err != nil {
			t.Fatal(err)
		}
		r.payCard(stranger.RedirectURL, "4242424242424242")

		// A WITHDRAW the platform refused (a trade lost money meanwhile)...
		bobWithdraw := r.withdraw(bob, bobUSD, "100.00", true)
		if _, err := r.sim.SetPositions(bobUSD, "-500.00", "0"); err != nil {
			t.Fatal(err)
		}
		r.run()
		if p, err := r.push.Get(ctx, bobWithdraw.DebitPushID); err != nil || p.State != "rejected" {
			t.Fatalf("bob's WITHDRAW push: %+v, %v; want rejected", p, err)
		}
		if _, err := r.sim.SetPositions(bobUSD, "0", "0"); err != nil {
			t.Fatal(err)
		}
		// The stranger's payment is too recent to compare yet.
		if run := r.reconcile(reconcile.RunOptions{}); run.Status != reconcile.Clean {
			t.Fatalf("before planting anything: %s %+v", run.Summary(), r.cases(""))
		}

		r.advance(20 * time.Minute)
		// ...that was applied on the platform after all, by someone else.
		if _, err := r.conn.ChangeBalance(ctx, platform.BalanceChange{Login: bobUSD, Type: platform.Withdraw, Amount: amt("100.00"),
			ExternalID: bobWithdraw.DebitPushID, Comment: "retried by hand"}); err != nil {
			t.Fatal(err)
		}
		// The platform lost alice's credit, and reports her debit as 150.00.
		r.history.set(func(h *history) {
			h.hide[b.aliceDeposit.PushID] = true
			h.alter[b.aliceWithdraw.DebitPushID] = amt("-150.00")
		})
		// Someone booked 5.00 onto bob's platform account in the ledger
		// without a push.
		if _, err := r.ledger.CreateAccount(ctx, ledger.AccountSpec{ID: "test:adjustments:USD", Kind: "test", Currency: usd, Normal: ledger.DebitNormal}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ledger.Post(ctx, ledger.Transfer{ID: "manual-1", Debit: "test:adjustments:USD", Credit: r.svc.PlatformAccountID(bobUSD),
			Amount: amt("5.00"), Code: "manual"}); err != nil {
			t.Fatal(err)
		}
		// The provider's records: bob's deposit was declined after all, the
		// payout is gone, and alice's deposit received only 90.00.
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE sandbox_payments SET status = 'declined', decline_code = 'do_not_honour' WHERE object = 'payment' AND reference = ?`, []any{b.bobDeposit.PaymentID}},
			{`DELETE FROM sandbox_events WHERE payment_id IN (SELECT id FROM sandbox_payments WHERE object = 'payout' AND reference = ?)`, []any{b.aliceWithdraw.PaymentID}},
			{`DELETE FROM sandbox_payments WHERE object = 'payout' AND reference = ?`, []any{b.aliceWithdraw.PaymentID}},
			{`UPDATE sandbox_payments SET received_minor = 9000 WHERE object = 'payment' AND reference = ?`, []any{b.aliceDeposit.PaymentID}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}

		run := r.reconcile(reconcile.RunOptions{Actor: "operator:olga"})
		payout, err := r.pay.Get(ctx, b.aliceWithdraw.PaymentID)
		if err != nil {
			t.Fatal(err)
		}
		bobPay, _ := r.pay.Get(ctx, b.bobDeposit.PaymentID)
		alicePay, _ := r.pay.Get(ctx, b.aliceDeposit.PaymentID)
		alice, bob := "8673590", "8673592"
		want := []caseRow{
			{reconcile.KindLedgerVsPlatform, alice, "", "-102.80 USD (ledger platform:ctrader:8673590)", "-150.00 USD (net of the platform's changes with our ids)", "open", 1},
			{reconcile.KindLedgerVsPlatform, bob, "", "53.45 USD (ledger platform:ctrader:8673592)", "-51.55 USD (net of the platform's changes with our ids)", "open", 1},
			{reconcile.KindLedgerVsPushes, bob, "", "53.45 USD (ledger platform:ctrader:8673592)", "48.45 USD (net of the pushes recorded applied)", "open", 1},
			{reconcile.KindPaymentAmount, b.aliceDeposit.PaymentID, alicePay.ProviderRef, "100.00 USD", "90.00 USD", "open", 1},
			{reconcile.KindPaymentMissing, b.aliceWithdraw.PaymentID, payout.ProviderRef, "succeeded 195.00 USD", "absent from the report", "open", 1},
			{reconcile.KindPaymentStatus, b.bobDeposit.PaymentID, bobPay.ProviderRef, "succeeded 50.00 USD", "declined 50.00 USD", "open", 1},
			{reconcile.KindPushAmount, alice, b.aliceWithdraw.DebitPushID, "WITHDRAW 200.00 USD", "WITHDRAW 150.00 USD", "open", 1},
			{reconcile.KindPushMissing, alice, b.aliceDeposit.PushID, "DEPOSIT 97.20 USD on the platform", "no change with externalId " + b.aliceDeposit.PushID, "open", 1},
			{reconcile.KindPushNotApplied, bob, bobWithdraw.DebitPushID, "no change (push rejected)", "WITHDRAW 100.00 USD", "open", 1},
			{reconcile.KindReportUnknown, "pay_stranger", stranger.ProviderRef, "no payment of ours", "payment succeeded 25.00 USD", "open", 1},
		}
		cases := r.cases(reconcile.Open)
		if diff := cmp.Diff(want, rows(cases)); diff != "" {
			t.Fatalf("cases (-want +got):\n%s", diff)
		}
		if run.Status != reconcile.Differences || run.Differences != 10 || run.NewCases != 10 || len(run.Detail.Cases) != 10 {
			t.Errorf("run %s: status %s, %d differences, %d new", run.Summary(), run.Status, run.Differences, run.NewCases)
		}
		if got := run.Summary(); got != "10 differences (10 new): 2 accounts, 6 payments checked" {
			t.Errorf("summary %q", got)
		}

		// Each case carries what each side said.
		byKind := map[reconcile.Kind]reconcile.Case{}
		var aliceAccount reconcile.Case
		for _, c := range cases {
			byKind[c.Kind] = c
			if c.Kind == reconcile.KindLedgerVsPlatform && c.Subject == alice {
				aliceAccount = c
			}
			if c.RunID != run.ID || c.LastRunID != run.ID {
				t.Errorf("case %s: run %s, last run %s; want %s", c.ID, c.RunID, c.LastRunID, run.ID)
			}
		}
		checks := []struct {
			kind reconcile.Kind
			path []string
			want any
		}{
			{reconcile.KindPushMissing, []string{"push", "state"}, "applied"},
			{reconcile.KindPushMissing, []string{"push", "amount"}, "97.20 USD"},
			{reconcile.KindPushNotApplied, []string{"push", "state"}, "rejected"},
			{reconcile.KindLedgerVsPushes, []string{"ledger", "posted"}, "53.45 USD"},
			{reconcile.KindLedgerVsPushes, []string{"pushes", "net"}, "48.45 USD"},
			{reconcile.KindPaymentStatus, []string{"ours", "status"}, "succeeded"},
			{reconcile.KindPaymentStatus, []string{"report", "status"}, "declined"},
			{reconcile.KindPaymentMissing, []string{"report"}, nil},
			{reconcile.KindPaymentAmount, []string{"report", "amount"}, "90.00 USD"},
			{reconcile.KindReportUnknown, []string{"ours"}, nil},
			{reconcile.KindReportUnknown, []string{"report", "providerRef"}, stranger.ProviderRef},
		}
		for _, c := range checks {
			if got := field(evidence(t, byKind[c.kind]), c.path...); got != c.want {
				t.Errorf("%s evidence %v = %v, want %v", c.kind, c.path, got, c.want)
			}
		}
		platformSide, _ := field(evidence(t, byKind[reconcile.KindPushNotApplied]), "platform").([]any)
		if len(platformSide) != 1 || field(platformSide[0].(map[string]any), "delta") != "-100.00 USD" {
			t.Errorf("the platform's side of the change: %v", platformSide)
		}

		// The same differences again: no new case, the open ones seen twice.
		run2 := r.reconcile(reconcile.RunOptions{})
		if run2.NewCases != 0 || run2.Differences != 10 {
			t.Errorf("second run: %s", run2.Summary())
		}
		for _, c := range r.cases(reconcile.Open) {
			if c.Seen != 2 || c.LastRunID != run2.ID || c.RunID != run.ID {
				t.Errorf("case %s after the second run: seen %d, last run %s", c.Kind, c.Seen, c.LastRunID)
			}
		}

		// An operator explains the stranger's payment: the case is resolved,
		// and the unchanged difference does not come back.
		unknown := byKind[reconcile.KindReportUnknown]
		resolved, err := r.svc.Resolve(ctx, unknown.ID, "operator:olga", "a test payment made at the provider's dashboard")
		if err != nil {
			t.Fatal(err)
		}
		if resolved.Status != reconcile.Resolved || resolved.ResolvedBy != "operator:olga" || resolved.ResolvedAt.IsZero() {
			t.Errorf("resolved case %+v", resolved)
		}
		if got, _ := r.svc.Case(ctx, unknown.ID); got.Status != reconcile.Resolved || got.Note != "a test payment made at the provider's dashboard" {
			t.Errorf("stored case %+v", got)
		}
		run3 := r.reconcile(reconcile.RunOptions{})
		if run3.NewCases != 0 || run3.Differences != 9 || !slices.Equal(run3.Detail.Accepted, []string{unknown.ID}) {
			t.Errorf("third run: %s, accepted %v", run3.Summary(), run3.Detail.Accepted)
		}
		if open := r.cases(reconcile.Open); len(open) != 9 {
			t.Errorf("%d open cases, want 9", len(open))
		}

		// The platform finds alice's credit again: her account's case now
		// shows the remaining difference (the debit's amount).
		r.history.set(func(h *history) { delete(h.hide, b.aliceDeposit.PushID) })
		r.reconcile(reconcile.RunOptions{})
		got, err := r.svc.Case(ctx, aliceAccount.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != reconcile.Open || got.Seen != 4 || got.Actual != "-52.80 USD (net of the platform's changes with our ids)" {
			t.Errorf("alice's account case after the credit came back: %s seen %d, %q", got.Status, got.Seen, got.Actual)
		}

		actions := r.audit.actions()
		if n := countPrefix(actions, "reconcile.case_opened operator:olga"); n != 10 {
			t.Errorf("%d case_opened audit records, want 10: %v", n, actions)
		}
		if n := countPrefix(actions, "reconcile.run "); n != 5 {
			t.Errorf("%d run audit records, want 5", n)
		}
		if n := countPrefix(actions, "reconcile.case_resolved operator:olga"); n != 1 {
			t.Errorf("%d case_resolved audit records, want 1", n)
		}

		// Filters.
		if cs, err := r.svc.Cases(ctx, reconcile.CaseFilter{Subject: bob}); err != nil || len(cs) != 3 {
			t.Errorf("bob's cases: %d, %v; want 3", len(cs), err)
		}
		if cs, err := r.svc.Cases(ctx, reconcile.CaseFilter{Kind: reconcile.KindReportUnknown, Status: reconcile.Resolved}); err != nil || len(cs) != 1 {
			t.Errorf("resolved unknown lines: %d, %v; want 1", len(cs), err)
		}
		if cs, err := r.svc.Cases(ctx, reconcile.CaseFilter{Limit: 4}); err != nil || len(cs) != 4 {
			t.Errorf("4 cases: %d, %v", len(cs), err)
		} else if more, err := r.svc.Cases(ctx, reconcile.CaseFilter{BeforeID: cs[3].ID}); err != nil || len(more) != 6 {
			t.Errorf("the page after: %d, %v; want 6", len(more), err)
		}
		if _, err := r.svc.Cases(ctx, reconcile.CaseFilter{Status: "closed"}); !errs.Is(err, errs.Invalid) {
			t.Errorf("an unknown status filter: %v, want EINVALID", err)
		}

		// One account: bob's cases only, and no word of lines nobody owns.
		one := r.reconcile(reconcile.RunOptions{Login: bobUSD})
		if one.Accounts != 1 || one.Payments != 2 || one.Differences != 4 {
			t.Errorf("bob alone: %s (%d differences)", one.Summary(), one.Differences)
		}
	})
}

func countPrefix(xs []string, prefix string) int {
	n := 0
	for _, x := range xs {
		if strings.HasPrefix(x, prefix) {
			n++
		}
	}
	return n
}

func TestADifferenceMustShowTwiceInARow(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		b := r.makeBooks()
		r.advance(20 * time.Minute)
		// The first read misses alice's credit (it was being written), the
		// second sees it.
		r.history.set(func(h *history) {
			h.hideOn = func(call int) bool { return call == 1 }
			h.hide[b.aliceDeposit.PushID] = true
		})
		if run := r.reconcile(reconcile.RunOptions{}); run.Status != reconcile.Clean || len(r.cases("")) != 0 {
			t.Errorf("a difference seen once: %s, cases %+v", run.Summary(), r.cases(""))
		}
		if r.history.calls != 3 {
			t.Errorf("the history was read %d times, want 3 (two accounts, then alice again)", r.history.calls)
		}
		// Reads 4 and 6 are alice's; the credit is missing from both, but her
		// debit's amount differs only in the second: only the credit counts
		// (the next run looks at the debit again).
		r.history.set(func(h *history) {
			h.hideOn = func(call int) bool { return call == 4 || call == 6 }
			h.alterOn = func(call int) bool { return call == 6 }
			h.alter[b.aliceWithdraw.DebitPushID] = amt("-150.00")
		})
		r.reconcile(reconcile.RunOptions{})
		var kinds []reconcile.Kind
		for _, c := range r.cases(reconcile.Open) {
			kinds = append(kinds, c.Kind)
		}
		slices.Sort(kinds)
		if diff := cmp.Diff([]reconcile.Kind{reconcile.KindLedgerVsPlatform, reconcile.KindPushMissing}, kinds); diff != "" {
			t.Errorf("cases (-want +got):\n%s", diff)
		}
	})
}

func TestPlatformWithLookupOnly(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		var hidden string
		r := newRig(t, db, rigOptions{deps: func(r *rig, d *reconcile.Deps) {
			d.History = nil
			d.Platform = lookupHiding{Client: r.conn, hide: "unset"}
		}})
		ctx := context.Background()
		b := r.makeBooks()
		hidden = b.aliceDeposit.PushID
		r.advance(20 * time.Minute)
		if run := r.reconcile(reconcile.RunOptions{}); run.Status != reconcile.Clean {
			t.Fatalf("lookup only, nothing planted: %s %+v", run.Summary(), r.cases(""))
		}

		// Rebuild the service over a platform that lost alice's credit.
		svc, err := reconcile.New(reconcile.Deps{DB: db, Clock: r.clk, Ledger: r.ledger, Pushes: r.push,
			Platform: lookupHiding{Client: r.conn, hide: hidden}, Logger: r.logger}, reconcile.Config{})
		if err != nil {
			t.Fatal(err)
		}
		run, err := svc.Run(ctx, reconcile.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := svc.Cases(ctx, reconcile.CaseFilter{Status: reconcile.Open})
		want := []caseRow{{reconcile.KindPushMissing, "8673590", hidden, "DEPOSIT 97.20 USD on the platform", "no change with externalId " + hidden, "open", 1}}
		if diff := cmp.Diff(want, rows(cs)); diff != "" {
			t.Errorf("cases (-want +got):\n%s", diff)
		}
		if got := field(evidence(t, cs[0]), "platform", "found"); got != false {
			t.Errorf("evidence of the look-up: %v", got)
		}
		if !slices.ContainsFunc(run.Detail.Notes, func(n string) bool { return strings.Contains(n, "looked up on the platform by our id") }) {
			t.Errorf("notes %q do not say pushes were looked up", run.Detail.Notes)
		}
		if run.Detail.Accounts[0].Platform != "" {
			t.Errorf("a platform net without a history: %+v", run.Detail.Accounts[0])
		}
	})
}

func TestPlatformWithoutHistoryOrLookup(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{noHistoryExtension: true})
		r.makeBooks()
		r.advance(20 * time.Minute)
		run := r.reconcile(reconcile.RunOptions{})
		if run.Status != reconcile.Clean {
			t.Fatalf("%s %+v", run.Summary(), r.cases(""))
		}
		wantNotes := []string{
			"the platform offers no balance history: the ledger is not compared with the platform, nor the amounts of pushes, nor changes we have no push for",
			"the platform offers no look-up by our id either: pushes are compared with the ledger only",
		}
		if diff := cmp.Diff(wantNotes, run.Detail.Notes); diff != "" {
			t.Errorf("notes (-want +got):\n%s", diff)
		}
		// The ledger is still compared with our own pushes.
		if got := run.Detail.Accounts[0]; got.Ledger != "-102.80 USD" || got.Pushes != "-102.80 USD" || got.Balance != "897.20 USD" {
			t.Errorf("alice's figures %+v", got)
		}
	})
}

// brokenReporter is a provider whose report cannot be read.
type brokenReporter struct{ psp.Provider }

func (brokenReporter) Report(context.Context, time.Time, time.Time) ([]psp.ReportLine, error) {
	return nil, errs.E(errs.Unavailable, "brokenReporter", "the provider's report server is down")
}

func TestUnansweredPartsMakeARunIncomplete(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{deps: func(r *rig, d *reconcile.Deps) {
			d.Providers = []psp.Provider{brokenReporter{r.provider}}
		}})
		r.makeBooks()
		r.advance(20 * time.Minute)
		r.history.set(func(h *history) { h.fail = errs.E(errs.Unavailable, "history", "cTrader is down") })
		run := r.reconcile(reconcile.RunOptions{})
		if run.Status != reconcile.Incomplete || len(r.cases("")) != 0 {
			t.Fatalf("%s, cases %+v; want incomplete without cases", run.Summary(), r.cases(""))
		}
		if len(run.Detail.Skipped) != 3 || !strings.Contains(run.Detail.Skipped[2], "provider sandbox: the report") {
			t.Errorf("skipped %q", run.Detail.Skipped)
		}
		if got := run.Summary(); got != "incomplete: 2 accounts, 0 payments checked; 3 parts could not be compared" {
			t.Errorf("summary %q", got)
		}
	})
}

func TestResolveRefusals(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		b := r.makeBooks()
		r.advance(20 * time.Minute)
		r.history.set(func(h *history) { h.hide[b.aliceDeposit.PushID] = true })
		r.reconcile(reconcile.RunOptions{})
		open := r.cases(reconcile.Open)
		if len(open) != 2 {
			t.Fatalf("%d cases, want 2 (the push and alice's account)", len(open))
		}
		id := open[0].ID
		tests := []struct {
			name, id, actor, note string
			want                  errs.Code
		}{
			{"no actor", id, " ", "fixed", errs.Invalid},
			{"no note", id, "operator:olga", "", errs.Invalid},
			{"unknown case", "rcc_nope", "operator:olga", "fixed", errs.NotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := r.svc.Resolve(ctx, tc.id, tc.actor, tc.note); errs.CodeOf(err) != tc.want {
					t.Errorf("Resolve = %v, want %s", err, tc.want)
				}
			})
		}
		if _, err := r.svc.Resolve(ctx, id, "staff:stf_1", "re-credited by hand in cBroker"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Resolve(ctx, id, "staff:stf_2", "again"); !errs.Is(err, errs.Conflict) {
			t.Errorf("resolving twice: %v, want ECONFLICT", err)
		}
		if c, _ := r.svc.Case(ctx, id); c.ResolvedBy != "staff:stf_1" {
			t.Errorf("the second resolution changed the case: %+v", c)
		}
		if _, err := r.svc.Case(ctx, "rcc_nope"); !errs.Is(err, errs.NotFound) {
			t.Errorf("Case of an unknown id: %v", err)
		}
	})
}

func TestScheduledRunReenqueuesItselfOnce(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, rigOptions{})
		ctx := context.Background()
		r.makeBooks()
		queued := func() []jobs.Job {
			t.Helper()
			js, err := jobs.List(ctx, db, jobs.Filter{Kind: reconcile.JobKind, State: jobs.Queued})
			if err != nil {
				t.Fatal(err)
			}
			return js
		}
		// 09:00:00.00x now: the first run is due at 10:00, however often
		// start-up schedules it.
		for range 2 {
			slot, err := r.svc.Schedule(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC); !slot.Equal(want) {
				t.Errorf("slot %s, want %s", slot, want)
			}
		}
		if js := queued(); len(js) != 1 || !js[0].RunAt.Equal(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("queued runs %+v, want one at 10:00", js)
		}
		r.clk.Set(time.Date(2026, 5, 4, 10, 0, 1, 0, time.UTC))
		r.run()
		runs, err := r.svc.Runs(ctx, 0)
		if err != nil || len(runs) != 1 || runs[0].Actor != "system" || runs[0].Status != reconcile.Clean {
			t.Fatalf("runs after 10:00: %+v, %v", runs, err)
		}
		js := queued()
		if len(js) != 1 || !js[0].RunAt.Equal(time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC)) {
			t.Fatalf("queued after the run: %+v, want one at 11:00", js)
		}
		// The same run again (a retry after a crash) enqueues nothing more.
		if err := r.svc.JobHandlers()[reconcile.JobKind](ctx, jobs.Job{ID: "job_retry", Kind: reconcile.JobKind}); err != nil {
			t.Fatal(err)
		}
		if js := queued(); len(js) != 1 {
			t.Errorf("%d queued runs after a repeated run, want 1", len(js))
		}
		if runs, _ := r.svc.Runs(ctx, 0); len(runs) != 2 {
			t.Errorf("%d runs, want 2", len(runs))
		}
	})
}
