package main

import (
	"context"
	"encoding/json"
	"html/template"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/staff"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	backoffice "github.com/opencashier/cashier/internal/web/backoffice"
)

// wantCode fails the test unless err carries the code.
func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, errs.CodeOf(err), code)
	}
}

func TestBackofficePorts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		clk := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
		trail := audit.New(db, clk)
		t.Run("staff", func(t *testing.T) { testStaffPort(t, db, clk, trail) })
		t.Run("compliance", func(t *testing.T) { testCompliancePort(t, db, clk, trail) })
		t.Run("reconcile", func(t *testing.T) { testReconcilePort(t, db, clk, trail) })
		t.Run("reports", func(t *testing.T) { testReportsPort(t, db, clk) })
		// Last: the other adapters' changes are in the trail too.
		t.Run("audit", func(t *testing.T) { testAuditPort(t, db, trail) })
	}, schemas()...)
}

// login signs a member in through the port, enrolling their authenticator
// with a code computed from the secret the port shows.
func login(t *testing.T, st backoffice.Staff, clk *clock.Fake, email, password string) backoffice.Session {
	t.Helper()
	ctx := context.Background()
	p, err := st.BeginLogin(ctx, email, password)
	if err != nil {
		t.Fatalf("BeginLogin %s: %v", email, err)
	}
	if p.Enrol == nil || p.Enrol.Secret == "" || !strings.HasPrefix(p.Enrol.URI, "otpauth://totp/") || len(p.Enrol.QRPNG) == 0 {
		t.Fatalf("BeginLogin %s: first login without an enrolment to show: %+v", email, p.Enrol)
	}
	if !p.ExpiresAt.After(clk.Now()) || p.Token == "" {
		t.Errorf("BeginLogin %s: pending token %q expires %v, now %v", email, p.Token, p.ExpiresAt, clk.Now())
	}
	code, err := totp.GenerateCode(p.Enrol.Secret, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.CompleteLogin(ctx, p.Token, code)
	if err != nil {
		t.Fatalf("CompleteLogin %s: %v", email, err)
	}
	return s
}

func testStaffPort(t *testing.T, db *sqlstore.DB, clk *clock.Fake, trail *audit.Log) {
	ctx := context.Background()
	st := staffPort(staff.New(db, clk, staff.Options{Audit: trail}))
	const annPass, vicPass = "ann's long password", "vic's long password"
	ann, err := st.AddMember(ctx, backoffice.NewMember{Email: "ann@example.com", Name: "Ann Admin", Role: "admin", Password: annPass, Actor: "operator:test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ann.ID, "stf_") || ann.Role != "admin" || ann.Status != "active" || ann.TOTPEnrolled || !ann.CreatedAt.Equal(clk.Now()) {
		t.Errorf("added member = %+v", ann)
	}
	if _, err := st.AddMember(ctx, backoffice.NewMember{Email: "bo@example.com", Name: "Bo", Role: "boss", Password: vicPass, Actor: "operator:test"}); err == nil {
		t.Error("a member with the role boss was added")
	} else {
		wantCode(t, "unknown role", err, errs.Invalid)
	}

	annS := login(t, st, clk, "ann@example.com", annPass)
	if annS.Token == "" || annS.CSRF == "" || annS.Member.ID != ann.ID || annS.Member.Role != "admin" || !annS.Member.TOTPEnrolled ||
		!annS.ExpiresAt.After(clk.Now()) {
		t.Errorf("session after login = %+v", annS)
	}
	annActor := "staff:" + ann.ID
	vic, err := st.AddMember(ctx, backoffice.NewMember{Email: "vic@example.com", Name: "Vic Viewer", Role: "viewer", Password: vicPass, Actor: annActor})
	if err != nil {
		t.Fatal(err)
	}
	vicS := login(t, st, clk, "vic@example.com", vicPass)

	for _, c := range []struct {
		name string
		s    backoffice.Session
		p    backoffice.Permission
		want errs.Code // "" for allowed
	}{
		{"admin manages staff", annS, backoffice.PermStaffManage, ""},
		{"viewer views", vicS, backoffice.PermView, ""},
		{"viewer may not decide withdrawals", vicS, backoffice.PermWithdrawalsDecide, errs.Forbidden},
		{"viewer may not read the audit trail", vicS, backoffice.PermAuditView, errs.Forbidden},
		{"nobody signed in", backoffice.Session{}, backoffice.PermView, errs.Unauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := st.Authorize(c.s, c.p)
			if c.want == "" {
				if err != nil {
					t.Errorf("Authorize: %v", err)
				}
				return
			}
			wantCode(t, "Authorize", err, c.want)
		})
	}

	_, err = st.BeginLogin(ctx, "vic@example.com", "not vic's password")
	wantCode(t, "wrong password", err, errs.Unauthorized)
	_, err = st.CompleteLogin(ctx, "no-such-pending-login", "123456")
	wantCode(t, "unknown pending login", err, errs.Unauthorized)

	// A new role is in force at the member's next request.
	if err := st.SetRole(ctx, annActor, vic.ID, "finance"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Session(ctx, vicS.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.Member.Role != "finance" || st.Authorize(got, backoffice.PermWithdrawalsDecide) != nil {
		t.Errorf("after SetRole finance: session member %+v", got.Member)
	}
	wantCode(t, "SetRole by a viewer", st.SetRole(ctx, "staff:"+vic.ID, ann.ID, "viewer"), errs.Forbidden)
	wantCode(t, "SetRole of nobody", st.SetRole(ctx, annActor, "stf_nobody", "viewer"), errs.NotFound)

	if err := st.Disable(ctx, annActor, vic.ID); err != nil {
		t.Fatal(err)
	}
	_, err = st.Session(ctx, vicS.Token)
	wantCode(t, "session of a disabled member", err, errs.Unauthorized)
	members, err := st.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range members {
		roles = append(roles, m.Email+" "+m.Role+" "+m.Status)
	}
	if diff := cmp.Diff([]string{"ann@example.com admin active", "vic@example.com finance disabled"}, roles); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	if err := st.Enable(ctx, annActor, vic.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.ResetTOTP(ctx, annActor, vic.ID); err != nil {
		t.Fatal(err)
	}
	login(t, st, clk, "vic@example.com", vicPass) // enrols again

	if err := st.Logout(ctx, annS.Token); err != nil {
		t.Fatal(err)
	}
	_, err = st.Session(ctx, annS.Token)
	wantCode(t, "session after logout", err, errs.Unauthorized)
}

func testCompliancePort(t *testing.T, db *sqlstore.DB, clk *clock.Fake, trail *audit.Log) {
	ctx := context.Background()
	svc, err := compliance.New(db, compliance.Options{Clock: clk, Audit: trail, DefaultCountry: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	c := compliancePort(svc)
	const user, actor = "usr_kyc", "staff:stf_carla"
	p, err := c.Profile(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(backoffice.KYCProfile{UserID: user, Level: 0, Country: "DE"}, p); diff != "" {
		t.Errorf("Profile of a user never set (-want +got):\n%s", diff)
	}
	if err := c.SetKYC(ctx, actor, user, backoffice.KYCUpdate{Level: 2, Country: "gb", Reference: "case 77"}); err != nil {
		t.Fatal(err)
	}
	p, err = c.Profile(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	want := backoffice.KYCProfile{UserID: user, Level: 2, Country: "GB", Source: "staff", Reference: "case 77", UpdatedBy: actor, UpdatedAt: clk.Now(), Stored: true}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Profile after SetKYC (-want +got):\n%s", diff)
	}
	hist, err := c.KYCHistory(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	wantHist := []backoffice.KYCChange{{Level: 2, Country: "GB", Source: "staff", Reference: "case 77", PreviousLevel: -1, Actor: actor, At: clk.Now()}}
	if diff := cmp.Diff(wantHist, hist); diff != "" {
		t.Errorf("KYCHistory (-want +got):\n%s", diff)
	}
	wantCode(t, "SetKYC level 9", c.SetKYC(ctx, actor, user, backoffice.KYCUpdate{Level: 9, Country: "GB"}), errs.Invalid)

	rules, err := c.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
		if r.Title == "" || r.Description == "" || strings.Contains(r.Description, "{") {
			t.Errorf("rule %s: title %q, description %q", r.Name, r.Title, r.Description)
		}
	}
	if diff := cmp.Diff(compliance.RuleNames, names); diff != "" {
		t.Errorf("Rules (-want +got):\n%s", diff)
	}
	velocity := rules[len(rules)-1]
	if diff := cmp.Diff([]string{"count", "window", "amounts"}, velocity.Uses); diff != "" {
		t.Errorf("velocity's parameters (-want +got):\n%s", diff)
	}
	velocity.Count, velocity.Window = 9, 2*time.Hour
	if err := c.SetRule(ctx, actor, velocity); err != nil {
		t.Fatal(err)
	}
	rules, err = c.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := rules[len(rules)-1]; v.Count != 9 || v.Window != 2*time.Hour || v.UpdatedBy != actor || !strings.Contains(v.Description, "9") {
		t.Errorf("velocity after SetRule: %+v", v)
	}

	usd := money.MustCurrency("USD")
	l := backoffice.Limit{LimitKey: backoffice.LimitKey{Direction: "deposit", Method: backoffice.AnyMethod, Currency: "USD", KYCLevel: 1},
		PerDay: money.New(100000, usd), CountPerDay: 5}
	if err := c.SetLimit(ctx, actor, l); err != nil {
		t.Fatal(err)
	}
	limits, err := c.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.PerMonth, l.UpdatedBy, l.UpdatedAt = money.Zero(usd), actor, clk.Now()
	if diff := cmp.Diff([]backoffice.Limit{l}, limits, cmp.Comparer(money.Amount.Equal)); diff != "" {
		t.Errorf("Limits (-want +got):\n%s", diff)
	}
	wantCode(t, "SetLimit without a cap", c.SetLimit(ctx, actor, backoffice.Limit{LimitKey: l.LimitKey}), errs.Invalid)

	holds, err := c.Holds(ctx, true)
	if err != nil || len(holds) != 0 {
		t.Errorf("Holds on a database without transactions: %v, %v", holds, err)
	}
	_, err = c.Hold(ctx, "dep_none")
	wantCode(t, "Hold of a transaction no rule held", err, errs.NotFound)
}

func testReconcilePort(t *testing.T, db *sqlstore.DB, clk *clock.Fake, trail *audit.Log) {
	ctx := context.Background()
	books := ledger.New(db, clk)
	svc, err := reconcile.New(reconcile.Deps{DB: db, Clock: clk, Ledger: books, Pushes: push.New(db, offlinePlatform{}, push.Options{}),
		Audit: trail, Logger: slog.New(slog.DiscardHandler)},
		reconcile.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := reconcilePort(svc)
	const actor = "staff:stf_fin"
	run, err := rec.Run(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.ID, "rcn_") || run.Status != "clean" || run.Actor != actor || !strings.HasPrefix(run.Summary, "clean") ||
		run.Differences != 0 || len(run.Skipped) != 0 || run.StartedAt.IsZero() {
		t.Errorf("a run over nothing = %+v", run)
	}

	// 5.00 booked onto a trading account's platform account without a push.
	usd := money.MustCurrency("USD")
	for _, a := range []ledger.AccountSpec{
		{ID: svc.PlatformAccountID(8673590), Kind: "platform", Currency: usd, Normal: ledger.CreditNormal},
		{ID: "test:adjustments:USD", Kind: "test", Currency: usd, Normal: ledger.DebitNormal},
	} {
		if _, err := books.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := books.Post(ctx, ledger.Transfer{ID: "manual-1", Debit: "test:adjustments:USD", Credit: svc.PlatformAccountID(8673590),
		Amount: money.New(500, usd), Code: "manual"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	second, err := rec.Run(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != "differences" || second.Differences != 1 || second.NewCases != 1 || second.Accounts != 1 {
		t.Errorf("a run with a difference = %+v", second)
	}
	runs, err := rec.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != second.ID || runs[1].ID != run.ID {
		t.Errorf("Runs = %+v, want the second run then the first", runs)
	}

	open, err := rec.Cases(ctx, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 {
		t.Fatalf("open cases = %+v, want one", open)
	}
	c := open[0]
	if c.Kind != "ledger_vs_pushes" || c.Subject != "8673590" || c.RunID != second.ID || c.Status != "open" || c.Seen != 1 ||
		!strings.Contains(c.Expected, "5.00 USD") || !json.Valid(c.Evidence) || !strings.HasPrefix(string(c.Evidence), "{") {
		t.Errorf("the open case = %+v (evidence %s)", c, c.Evidence)
	}
	resolved, err := rec.Cases(ctx, false, 10)
	if err != nil || len(resolved) != 0 {
		t.Errorf("resolved cases before any resolution: %+v, %v", resolved, err)
	}
	_, err = rec.Resolve(ctx, c.ID, actor, "")
	wantCode(t, "Resolve without a note", err, errs.Invalid)
	done, err := rec.Resolve(ctx, c.ID, actor, "booked by hand, see ticket 9")
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != "resolved" || done.ResolvedBy != actor || done.Note != "booked by hand, see ticket 9" || !done.ResolvedAt.Equal(clk.Now()) {
		t.Errorf("resolved case = %+v", done)
	}
	_, err = rec.Resolve(ctx, c.ID, actor, "again")
	wantCode(t, "Resolve twice", err, errs.Conflict)
	resolved, err = rec.Cases(ctx, false, 10)
	if err != nil || len(resolved) != 1 || resolved[0].ID != c.ID {
		t.Errorf("resolved cases = %+v, %v", resolved, err)
	}
}

func testReportsPort(t *testing.T, db *sqlstore.DB, clk *clock.Fake) {
	ctx := context.Background()
	svc, err := reports.New(db)
	if err != nil {
		t.Fatal(err)
	}
	r := reportsPort(svc)
	page, err := r.Search(ctx, backoffice.TxFilter{Kind: "deposit"})
	if err != nil || len(page.Rows) != 0 || page.Next != "" {
		t.Errorf("Search on an empty database: %+v, %v", page, err)
	}
	_, err = r.Search(ctx, backoffice.TxFilter{Kind: "transfer"})
	wantCode(t, "Search of an unknown kind", err, errs.Invalid)
	var csv strings.Builder
	if err := r.WriteCSV(ctx, &csv, backoffice.TxFilter{}); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(reports.CSVHeader, ",") + "\r\n"; csv.String() != want {
		t.Errorf("CSV of nothing = %q, want the header %q", csv.String(), want)
	}
	_, err = r.Timeline(ctx, "dep_none")
	wantCode(t, "Timeline of an unknown id", err, errs.NotFound)

	day := clk.Now().Truncate(24 * time.Hour)
	d, err := r.Dashboard(ctx, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	figures := map[string]string{}
	for _, f := range d.Figures {
		figures[f.Name] = f.Value
	}
	for name, want := range map[string]string{"deposits_count": "0", "withdrawals_count": "0", "approval_median": "none decided", "funnel_conversion": "no screen opened"} {
		if figures[name] != want {
			t.Errorf("figure %s = %q, want %q", name, figures[name], want)
		}
	}
	var ids []string
	for _, c := range d.Charts {
		ids = append(ids, c.ID)
		if !strings.HasPrefix(string(c.SVG), "<svg") || c.Title == "" {
			t.Errorf("chart %s: title %q, SVG %.40q", c.ID, c.Title, c.SVG)
		}
	}
	if diff := cmp.Diff([]string{"per_day", "decline_reasons", "funnel"}, ids); diff != "" {
		t.Errorf("charts of an empty day (-want +got):\n%s", diff)
	}
	wantPerDay := []backoffice.Series{{Name: "Deposits", Points: []backoffice.Point{{Label: day.Format(time.DateOnly), Value: "0"}}},
		{Name: "Withdrawals", Points: []backoffice.Point{{Label: day.Format(time.DateOnly), Value: "0"}}}}
	if diff := cmp.Diff(wantPerDay, d.Charts[0].Series); diff != "" {
		t.Errorf("per_day numbers (-want +got):\n%s", diff)
	}
	_, err = r.Dashboard(ctx, day, day)
	wantCode(t, "Dashboard of an empty period", err, errs.Invalid)
}

func testAuditPort(t *testing.T, db *sqlstore.DB, trail *audit.Log) {
	ctx := context.Background()
	a := auditPort(trail)
	e, err := trail.Record(ctx, audit.Record{Actor: "staff:stf_ann", Action: "withdrawal.approved", Subject: "wd_1",
		Detail: map[string]string{"amount": "250.00", "currency": "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []backoffice.AuditEntry{{Seq: e.Seq, At: e.At, Actor: "staff:stf_ann", Action: "withdrawal.approved", Subject: "wd_1",
		Detail: map[string]string{"amount": "250.00", "currency": "EUR"}, Hash: e.Hash}}
	for _, q := range []backoffice.AuditQuery{
		{Subject: "wd_1"},
		{Action: "withdrawal.", Text: "250.00"},
		{Actor: "staff:stf_ann", From: e.At, To: e.At.Add(time.Second)},
	} {
		got, err := a.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Search %+v (-want +got):\n%s", q, diff)
		}
	}
	older, err := a.Search(ctx, backoffice.AuditQuery{BeforeSeq: e.Seq, Limit: 1})
	if err != nil || len(older) != 1 || older[0].Seq != e.Seq-1 {
		t.Errorf("the entry before %d: %+v, %v (the staff, compliance and reconcile changes are recorded before it)", e.Seq, older, err)
	}
	_, err = a.Search(ctx, backoffice.AuditQuery{Limit: audit.MaxSearchLimit + 1})
	wantCode(t, "Search with a limit too high", err, errs.Invalid)

	check, err := a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !check.OK() || check.Checked != e.Seq || check.HeadSeq != e.Seq || check.HeadHash != e.Hash {
		t.Errorf("Verify of an intact trail = %+v, want %d entries up to %d:%s", check, e.Seq, e.Seq, e.Hash)
	}

	// An edited entry is reported with its seq.
	if _, err := db.Exec(ctx, `UPDATE audit_entries SET detail = ? WHERE seq = ?`, `{"amount":"25000.00","currency":"EUR"}`, e.Seq); err != nil {
		t.Fatal(err)
	}
	check, err = a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if check.OK() || len(check.Problems) != 1 || check.Problems[0].Seq != e.Seq || check.Problems[0].Kind != "edited" || check.Problems[0].Detail == "" {
		t.Errorf("Verify of an edited trail = %+v", check)
	}
}

// TestBackofficePortsDashboard checks the figures and numbers the
// dashboard shows for a period with activity in two currencies.
func TestBackofficePortsDashboard(t *testing.T) {
	usd, jpy := money.MustCurrency("USD"), money.MustCurrency("JPY")
	d1 := time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	tally := func(n int64, a money.Amount) reports.Tally { return reports.Tally{Count: n, Sum: a} }
	in := reports.Dashboard{From: d1, To: d2.AddDate(0, 0, 1), Currencies: []string{"JPY", "USD"},
		Days: []reports.Day{
			{Date: d1, Totals: []reports.DayTotals{
				{Currency: "JPY", Deposits: tally(1, money.New(5000, jpy))},
				{Currency: "USD", Deposits: tally(2, money.New(29160, usd)), Withdrawals: tally(1, money.New(10000, usd))},
			}},
			{Date: d2, Totals: []reports.DayTotals{
				{Currency: "JPY"},
				{Currency: "USD", Deposits: tally(1, money.New(5, usd))},
			}},
		},
		Approvals: reports.ApprovalTimes{Decided: 3, Approved: 2, Rejected: 1, Median: 12 * time.Minute, P90: 65*time.Minute + 30*time.Second},
		Declines:  []reports.DeclineCount{{Direction: "deposit", Code: "do_not_honour", Count: 4}, {Direction: "withdrawal", Code: "unspecified", Count: 1}},
		Funnel: reports.Funnel{Steps: []reports.FunnelStep{
			{Name: reports.StepScreenOpened, Count: 8, FromPreviousBps: 10000, FromFirstBps: 10000},
			{Name: reports.StepMethodChosen, Count: 6, FromPreviousBps: 7500, FromFirstBps: 7500},
			{Name: reports.StepPaid, Count: 4, FromPreviousBps: 6667, FromFirstBps: 5000},
			{Name: reports.StepCredited, Count: 3, FromPreviousBps: 7500, FromFirstBps: 3750},
		}},
	}
	got, err := dashboardOf(in)
	if err != nil {
		t.Fatal(err)
	}
	wantFigures := []backoffice.Figure{
		{Name: "deposits_count", Label: "Deposits completed", Value: "4"},
		{Name: "deposits_sum_jpy", Label: "Deposits credited in JPY", Value: "5000 JPY"},
		{Name: "deposits_sum_usd", Label: "Deposits credited in USD", Value: "291.65 USD"},
		{Name: "withdrawals_count", Label: "Withdrawals completed", Value: "1"},
		{Name: "withdrawals_sum_jpy", Label: "Withdrawals paid from JPY accounts", Value: "0 JPY"},
		{Name: "withdrawals_sum_usd", Label: "Withdrawals paid from USD accounts", Value: "100.00 USD"},
		{Name: "approvals_decided", Label: "Withdrawals decided by an operator", Value: "3"},
		{Name: "approval_median", Label: "Median wait for approval", Value: "12 min"},
		{Name: "approval_p90", Label: "90th percentile wait for approval", Value: "1 h 5 min 30 s"},
		{Name: "declines_count", Label: "Payments declined or failed", Value: "5"},
		{Name: "funnel_conversion", Label: "Cashier screens opened to deposits credited", Value: "37.50 %"},
	}
	if diff := cmp.Diff(wantFigures, got.Figures); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}

	charts := map[string]backoffice.Chart{}
	var ids []string
	for _, c := range got.Charts {
		charts[c.ID] = c
		ids = append(ids, c.ID)
	}
	if diff := cmp.Diff([]string{"per_day", "per_day_jpy", "per_day_usd", "decline_reasons", "funnel"}, ids); diff != "" {
		t.Errorf("charts (-want +got):\n%s", diff)
	}
	pts := func(vals ...string) []backoffice.Point {
		var out []backoffice.Point
		for i := 0; i < len(vals); i += 2 {
			out = append(out, backoffice.Point{Label: vals[i], Value: vals[i+1]})
		}
		return out
	}
	for _, c := range []struct {
		id   string
		want []backoffice.Series
		svg  template.HTML // a fragment of the picture
	}{
		{"per_day", []backoffice.Series{{Name: "Deposits", Points: pts("2026-05-03", "3", "2026-05-04", "1")},
			{Name: "Withdrawals", Points: pts("2026-05-03", "1", "2026-05-04", "0")}}, "Completed deposits and withdrawals per day"},
		{"per_day_usd", []backoffice.Series{{Name: "Deposits USD", Points: pts("2026-05-03", "291.60", "2026-05-04", "0.05")},
			{Name: "Withdrawals USD", Points: pts("2026-05-03", "100.00", "2026-05-04", "0.00")}}, "291.60 USD"},
		{"per_day_jpy", []backoffice.Series{{Name: "Deposits JPY", Points: pts("2026-05-03", "5000", "2026-05-04", "0")},
			{Name: "Withdrawals JPY", Points: pts("2026-05-03", "0", "2026-05-04", "0")}}, "5000 JPY"},
		{"decline_reasons", []backoffice.Series{{Name: "Payments", Points: pts("deposit do_not_honour", "4", "withdrawal unspecified", "1")}}, "do_not_honour"},
		{"funnel", []backoffice.Series{
			{Name: "Count", Points: pts("screen opened", "8", "method chosen", "6", "paid", "4", "credited", "3")},
			{Name: "Conversion from the first step (%)", Points: pts("screen opened", "100.00", "method chosen", "75.00", "paid", "50.00", "credited", "37.50")}},
			"credited"},
	} {
		ch := charts[c.id]
		if diff := cmp.Diff(c.want, ch.Series); diff != "" {
			t.Errorf("chart %s numbers (-want +got):\n%s", c.id, diff)
		}
		if !strings.HasPrefix(string(ch.SVG), "<svg") || !strings.Contains(string(ch.SVG), string(c.svg)) {
			t.Errorf("chart %s SVG lacks %q:\n%s", c.id, c.svg, ch.SVG)
		}
	}

	// Nothing decided, no screen opened: the figures say so rather than 0.
	got, err = dashboardOf(reports.Dashboard{From: d1, To: d2, Days: []reports.Day{{Date: d1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.Figures {
		if f.Name == "approval_median" && f.Value != "none decided" || f.Name == "funnel_conversion" && f.Value != "no screen opened" {
			t.Errorf("figure %s of an idle day = %q", f.Name, f.Value)
		}
	}
}

func TestBackofficePortsDurationText(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0 s"},
		{45 * time.Second, "45 s"},
		{12 * time.Minute, "12 min"},
		{12*time.Minute + 30*time.Second, "12 min 30 s"},
		{time.Hour, "1 h"},
		{time.Hour + 5*time.Minute, "1 h 5 min"},
		{2*time.Hour + 30*time.Second, "2 h 0 min 30 s"},
		{1499 * time.Millisecond, "1 s"},
	} {
		if got := durationText(c.in); got != c.want {
			t.Errorf("durationText(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
