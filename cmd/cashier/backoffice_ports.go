package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/reconcile"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/staff"
	backoffice "github.com/opencashier/cashier/internal/web/backoffice"
)

// The back office's screens and admin API talk to the services through
// the ports of internal/web/backoffice. The adapters below map the real
// services' types to the ports' field by field; the services' errors pass
// through unchanged (they already carry the codes the ports document).

// --- staff ---

// staffPort adapts *staff.Service to backoffice.Staff.
func staffPort(s *staff.Service) backoffice.Staff { return staffAdapter{s} }

type staffAdapter struct{ s *staff.Service }

func (a staffAdapter) BeginLogin(ctx context.Context, email, password string) (backoffice.PendingLogin, error) {
	p, err := a.s.BeginLogin(ctx, email, password)
	if err != nil {
		return backoffice.PendingLogin{}, err
	}
	out := backoffice.PendingLogin{Token: p.Token, ExpiresAt: p.ExpiresAt}
	if p.NeedsEnrolment && p.Enrolment != nil {
		out.Enrol = &backoffice.Enrolment{Secret: p.Enrolment.Secret, URI: p.Enrolment.URI, QRPNG: p.Enrolment.QRPNG}
	}
	return out, nil
}

func (a staffAdapter) CompleteLogin(ctx context.Context, pendingToken, code string) (backoffice.Session, error) {
	s, err := a.s.CompleteLogin(ctx, pendingToken, code)
	if err != nil {
		return backoffice.Session{}, err
	}
	return sessionOf(s), nil
}

func (a staffAdapter) Session(ctx context.Context, token string) (backoffice.Session, error) {
	s, err := a.s.Session(ctx, token)
	if err != nil {
		return backoffice.Session{}, err
	}
	return sessionOf(s), nil
}

func (a staffAdapter) Logout(ctx context.Context, token string) error { return a.s.Logout(ctx, token) }

// Authorize rebuilds the staff session from the port's and asks
// staff.Authorize, so the roles' permissions are decided in one place.
func (a staffAdapter) Authorize(s backoffice.Session, p backoffice.Permission) error {
	return staff.Authorize(staff.Session{Token: s.Token, CSRF: s.CSRF, ExpiresAt: s.ExpiresAt, Member: staffMemberOf(s.Member)},
		staff.Permission(p))
}

func (a staffAdapter) Members(ctx context.Context) ([]backoffice.Member, error) {
	ms, err := a.s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberOf(m))
	}
	return out, nil
}

func (a staffAdapter) AddMember(ctx context.Context, n backoffice.NewMember) (backoffice.Member, error) {
	m, err := a.s.Add(ctx, staff.NewMember{Email: n.Email, Name: n.Name, Role: staff.Role(n.Role), Password: n.Password, Actor: n.Actor})
	if err != nil {
		return backoffice.Member{}, err
	}
	return memberOf(m), nil
}

func (a staffAdapter) SetRole(ctx context.Context, actor, memberID, role string) error {
	_, err := a.s.SetRole(ctx, actor, memberID, staff.Role(role))
	return err
}

func (a staffAdapter) Disable(ctx context.Context, actor, memberID string) error {
	_, err := a.s.Disable(ctx, actor, memberID)
	return err
}

func (a staffAdapter) Enable(ctx context.Context, actor, memberID string) error {
	_, err := a.s.Enable(ctx, actor, memberID)
	return err
}

func (a staffAdapter) ResetTOTP(ctx context.Context, actor, memberID string) error {
	_, err := a.s.ResetTOTP(ctx, actor, memberID)
	return err
}

func sessionOf(s staff.Session) backoffice.Session {
	return backoffice.Session{Token: s.Token, CSRF: s.CSRF, Member: memberOf(s.Member), ExpiresAt: s.ExpiresAt}
}

func memberOf(m staff.Member) backoffice.Member {
	return backoffice.Member{ID: m.ID, Email: m.Email, Name: m.Name, Role: string(m.Role), Status: string(m.Status),
		TOTPEnrolled: m.TOTPEnrolled, LockedUntil: m.LockedUntil, CreatedAt: m.CreatedAt, LastLoginAt: m.LastLoginAt}
}

func staffMemberOf(m backoffice.Member) staff.Member {
	return staff.Member{ID: m.ID, Email: m.Email, Name: m.Name, Role: staff.Role(m.Role), Status: staff.Status(m.Status),
		TOTPEnrolled: m.TOTPEnrolled, LockedUntil: m.LockedUntil, CreatedAt: m.CreatedAt, LastLoginAt: m.LastLoginAt}
}

// --- compliance ---

// compliancePort adapts *compliance.Service to backoffice.Compliance. KYC
// changes made through it are the staff's (compliance.SourceStaff).
func compliancePort(c *compliance.Service) backoffice.Compliance { return complianceAdapter{c} }

type complianceAdapter struct{ c *compliance.Service }

func (a complianceAdapter) Profile(ctx context.Context, userID string) (backoffice.KYCProfile, error) {
	p, err := a.c.Profile(ctx, userID)
	if err != nil {
		return backoffice.KYCProfile{}, err
	}
	return backoffice.KYCProfile{UserID: p.UserID, Level: p.Level, Country: p.Country, Source: p.Source, Reference: p.Reference,
		UpdatedBy: p.UpdatedBy, UpdatedAt: p.UpdatedAt, Stored: p.Stored}, nil
}

func (a complianceAdapter) KYCHistory(ctx context.Context, userID string) ([]backoffice.KYCChange, error) {
	hs, err := a.c.KYCHistory(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.KYCChange, 0, len(hs))
	for _, h := range hs {
		out = append(out, backoffice.KYCChange{Level: h.Level, Country: h.Country, Source: h.Source, Reference: h.Reference,
			PreviousLevel: h.PreviousLevel, PreviousCountry: h.PreviousCountry, Actor: h.Actor, At: h.At})
	}
	return out, nil
}

func (a complianceAdapter) SetKYC(ctx context.Context, actor, userID string, u backoffice.KYCUpdate) error {
	return a.c.SetKYC(ctx, actor, userID, compliance.Profile{Level: u.Level, Country: u.Country,
		Source: compliance.SourceStaff, Reference: u.Reference})
}

func (a complianceAdapter) Holds(ctx context.Context, open bool) ([]backoffice.Hold, error) {
	hs, err := a.c.Holds(ctx, open)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.Hold, 0, len(hs))
	for _, h := range hs {
		out = append(out, holdOf(h))
	}
	return out, nil
}

func (a complianceAdapter) Hold(ctx context.Context, txnID string) (backoffice.Hold, error) {
	h, err := a.c.Hold(ctx, txnID)
	if err != nil {
		return backoffice.Hold{}, err
	}
	return holdOf(h), nil
}

func (a complianceAdapter) Limits(ctx context.Context) ([]backoffice.Limit, error) {
	ls, err := a.c.Limits(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.Limit, 0, len(ls))
	for _, l := range ls {
		out = append(out, backoffice.Limit{LimitKey: backoffice.LimitKey(l.LimitKey), PerDay: l.PerDay, PerMonth: l.PerMonth,
			CountPerDay: l.CountPerDay, CountPerMonth: l.CountPerMonth, UpdatedBy: l.UpdatedBy, UpdatedAt: l.UpdatedAt})
	}
	return out, nil
}

func (a complianceAdapter) SetLimit(ctx context.Context, actor string, l backoffice.Limit) error {
	return a.c.SetLimit(ctx, actor, compliance.Limit{LimitKey: compliance.LimitKey(l.LimitKey), PerDay: l.PerDay, PerMonth: l.PerMonth,
		CountPerDay: l.CountPerDay, CountPerMonth: l.CountPerMonth})
}

func (a complianceAdapter) Rules(ctx context.Context) ([]backoffice.Rule, error) {
	rs, err := a.c.Rules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, backoffice.Rule{Name: r.Name, Title: r.Title(), Description: r.Description(), Enabled: r.Enabled,
			Uses: r.Uses(), Count: r.Count, Window: r.Window, Amounts: r.Amounts, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt})
	}
	return out, nil
}

// SetRule stores the settings of the port's rule; its Title, Description,
// Uses and Updated fields are the service's to say and are not read.
func (a complianceAdapter) SetRule(ctx context.Context, actor string, r backoffice.Rule) error {
	return a.c.SetRule(ctx, actor, compliance.Rule{Name: r.Name, Enabled: r.Enabled, Count: r.Count, Window: r.Window, Amounts: r.Amounts})
}

func holdOf(h compliance.Hold) backoffice.Hold {
	return backoffice.Hold{TxnID: h.TxnID, UserID: h.UserID, Kind: h.Kind, Rule: h.Rule, Explanation: h.Explanation,
		Login: h.Login, MethodID: h.MethodID, Amount: h.Amount, State: h.State, CreatedAt: h.CreatedAt,
		ResolvedAt: h.ResolvedAt, Resolution: h.Resolution, ResolvedBy: h.ResolvedBy}
}

// --- reports ---

// reportsPort adapts *reports.Service to backoffice.Reports.
func reportsPort(r *reports.Service) backoffice.Reports { return reportsAdapter{r} }

type reportsAdapter struct{ r *reports.Service }

func (a reportsAdapter) Search(ctx context.Context, f backoffice.TxFilter) (backoffice.TxPage, error) {
	p, err := a.r.Search(ctx, filterOf(f))
	if err != nil {
		return backoffice.TxPage{}, err
	}
	out := backoffice.TxPage{Rows: make([]backoffice.TxRow, 0, len(p.Rows)), Next: p.Next}
	for _, r := range p.Rows {
		out.Rows = append(out.Rows, rowOf(r))
	}
	return out, nil
}

func (a reportsAdapter) WriteCSV(ctx context.Context, w io.Writer, f backoffice.TxFilter) error {
	return a.r.WriteCSV(ctx, w, filterOf(f))
}

func (a reportsAdapter) Timeline(ctx context.Context, id string) (backoffice.TxDetail, error) {
	t, err := a.r.Timeline(ctx, id)
	if err != nil {
		return backoffice.TxDetail{}, err
	}
	out := backoffice.TxDetail{Row: rowOf(t.Row), PaymentID: t.PaymentID, PushIDs: t.PushIDs,
		Timeline: make([]backoffice.TimelineEvent, 0, len(t.Entries))}
	for _, e := range t.Entries {
		out.Timeline = append(out.Timeline, backoffice.TimelineEvent{At: e.At, Source: string(e.Source), What: e.What, Detail: e.Detail, Actor: e.Actor})
	}
	return out, nil
}

func (a reportsAdapter) Dashboard(ctx context.Context, from, to time.Time) (backoffice.Dashboard, error) {
	d, err := a.r.Dashboard(ctx, reports.DashboardQuery{From: from, To: to})
	if err != nil {
		return backoffice.Dashboard{}, err
	}
	return dashboardOf(d)
}

func filterOf(f backoffice.TxFilter) reports.Filter {
	return reports.Filter{UserID: f.UserID, Email: f.Email, Login: f.Login, Kind: reports.Kind(f.Kind), Status: f.Status,
		MethodID: f.MethodID, From: f.From, To: f.To, MinAmount: f.MinAmount, MaxAmount: f.MaxAmount, Currency: f.Currency,
		Limit: f.Limit, Cursor: f.Cursor}
}

func rowOf(r reports.Row) backoffice.TxRow {
	return backoffice.TxRow{ID: r.ID, Kind: string(r.Kind), UserID: r.UserID, Email: r.Email, Login: r.Login, MethodID: r.MethodID,
		Provider: r.Provider, State: r.State, Flag: r.Flag, Amount: r.Amount, Fee: r.Fee, Credit: r.Credit,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// dashboardOf turns the reports' dashboard into the screens' figures and
// charts:
//
//   - figures: deposits and withdrawals completed (counts, and the exact
//     sums per account currency), withdrawals decided with the median and
//     90th-percentile wait for approval, declined payments, and the
//     funnel's conversion from screen to credit;
//   - charts: "per_day" (counts per day), "per_day_<CUR>" (sums per day in
//     each currency), "decline_reasons" and "funnel", each with the SVG
//     internal/reports draws and the numbers behind it as text.
//
// It returns an errs.Internal error for a currency the money package does
// not know or sums that overflow.
func dashboardOf(d reports.Dashboard) (backoffice.Dashboard, error) {
	const op = "cashier: back-office dashboard"
	out := backoffice.Dashboard{From: d.From, To: d.To}

	type totals struct{ deposits, withdrawals money.Amount }
	sums := make(map[string]*totals, len(d.Currencies))
	for _, code := range d.Currencies {
		cur, err := money.LookupCurrency(code)
		if err != nil {
			return backoffice.Dashboard{}, errs.Ef(errs.Internal, op, "the dashboard's currency %q is unknown", code)
		}
		sums[code] = &totals{money.Zero(cur), money.Zero(cur)}
	}
	var deposits, withdrawals int64
	for _, day := range d.Days {
		for _, t := range day.Totals {
			deposits += t.Deposits.Count
			withdrawals += t.Withdrawals.Count
			s, ok := sums[t.Currency]
			if !ok {
				return backoffice.Dashboard{}, errs.Ef(errs.Internal, op, "day %s has figures in %q, not among the dashboard's currencies", day.Date.Format(time.DateOnly), t.Currency)
			}
			var err error
			if s.deposits, err = addTally(s.deposits, t.Deposits); err != nil {
				return backoffice.Dashboard{}, errs.Wrap(op, err)
			}
			if s.withdrawals, err = addTally(s.withdrawals, t.Withdrawals); err != nil {
				return backoffice.Dashboard{}, errs.Wrap(op, err)
			}
		}
	}
	fig := func(name, label, value string) {
		out.Figures = append(out.Figures, backoffice.Figure{Name: name, Label: label, Value: value})
	}
	fig("deposits_count", "Deposits completed", strconv.FormatInt(deposits, 10))
	for _, code := range d.Currencies {
		fig("deposits_sum_"+strings.ToLower(code), "Deposits credited in "+code, sums[code].deposits.String())
	}
	fig("withdrawals_count", "Withdrawals completed", strconv.FormatInt(withdrawals, 10))
	for _, code := range d.Currencies {
		fig("withdrawals_sum_"+strings.ToLower(code), "Withdrawals paid from "+code+" accounts", sums[code].withdrawals.String())
	}
	ap := d.Approvals
	fig("approvals_decided", "Withdrawals decided by an operator", strconv.FormatInt(ap.Decided, 10))
	median, p90 := "none decided", "none decided"
	if ap.Decided > 0 {
		median, p90 = durationText(ap.Median), durationText(ap.P90)
	}
	fig("approval_median", "Median wait for approval", median)
	fig("approval_p90", "90th percentile wait for approval", p90)
	var declined int64
	for _, x := range d.Declines {
		declined += x.Count
	}
	fig("declines_count", "Payments declined or failed", strconv.FormatInt(declined, 10))
	conversion := "no screen opened"
	if n := len(d.Funnel.Steps); n > 0 && d.Funnel.Steps[0].Count > 0 {
		conversion = reports.FormatBps(d.Funnel.Steps[n-1].FromFirstBps)
	}
	fig("funnel_conversion", "Cashier screens opened to deposits credited", conversion)

	counts := d.CountsChart()
	out.Charts = append(out.Charts, backoffice.Chart{ID: "per_day", Title: counts.Title, SVG: counts.SVG(), Series: countSeries(counts)})
	for _, code := range d.Currencies {
		c := d.AmountsChart(code)
		dep := backoffice.Series{Name: "Deposits " + code}
		wd := backoffice.Series{Name: "Withdrawals " + code}
		for _, day := range d.Days {
			t := reports.DayTotals{}
			for _, x := range day.Totals {
				if x.Currency == code {
					t = x
				}
			}
			label := day.Date.Format(time.DateOnly)
			dep.Points = append(dep.Points, backoffice.Point{Label: label, Value: decimalIn(t.Deposits.Sum, sums[code].deposits)})
			wd.Points = append(wd.Points, backoffice.Point{Label: label, Value: decimalIn(t.Withdrawals.Sum, sums[code].withdrawals)})
		}
		out.Charts = append(out.Charts, backoffice.Chart{ID: "per_day_" + strings.ToLower(code), Title: c.Title, SVG: c.SVG(),
			Series: []backoffice.Series{dep, wd}})
	}
	declines := d.DeclinesChart()
	out.Charts = append(out.Charts, backoffice.Chart{ID: "decline_reasons", Title: declines.Title, SVG: declines.SVG(), Series: countSeries(declines)})

	steps := backoffice.Series{Name: "Count"}
	conv := backoffice.Series{Name: "Conversion from the first step (%)"}
	for _, s := range d.Funnel.Steps {
		steps.Points = append(steps.Points, backoffice.Point{Label: s.Name, Value: strconv.FormatInt(s.Count, 10)})
		conv.Points = append(conv.Points, backoffice.Point{Label: s.Name, Value: bpsDecimal(s.FromFirstBps)})
	}
	out.Charts = append(out.Charts, backoffice.Chart{ID: "funnel", Title: "Deposit funnel", SVG: d.FunnelChart(),
		Series: []backoffice.Series{steps, conv}})
	return out, nil
}

// addTally adds a day's tally to a running sum; a tally of nothing may
// carry no currency.
func addTally(sum money.Amount, t reports.Tally) (money.Amount, error) {
	if t.Sum.Currency().Code == "" {
		return sum, nil
	}
	return sum.Add(t.Sum)
}

// decimalIn writes a as an exact decimal with the digits of like's
// currency (a day without activity has an Amount without currency).
func decimalIn(a, like money.Amount) string {
	if a.Currency().Code == "" {
		return money.Zero(like.Currency()).Decimal()
	}
	return a.Decimal()
}

// countSeries turns a bar chart's series of counts into the port's.
func countSeries(c reports.BarChart) []backoffice.Series {
	out := make([]backoffice.Series, 0, len(c.Series))
	for _, s := range c.Series {
		bs := backoffice.Series{Name: s.Name}
		for i, cat := range c.Categories {
			var v int64
			if i < len(s.Values) {
				v = s.Values[i]
			}
			bs.Points = append(bs.Points, backoffice.Point{Label: cat, Value: strconv.FormatInt(v, 10)})
		}
		out = append(out, bs)
	}
	return out
}

// bpsDecimal writes basis points as a percentage, exactly: 1234 is
// "12.34".
func bpsDecimal(b int64) string {
	sign := ""
	if b < 0 {
		sign, b = "-", -b
	}
	return fmt.Sprintf("%s%d.%02d", sign, b/100, b%100)
}

// durationText writes a wait as people read it, to the second: "45 s",
// "12 min", "1 h 5 min", "2 h 0 min 30 s".
func durationText(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	h, m, sec := s/3600, s%3600/60, s%60
	var parts []string
	if h > 0 {
		parts = append(parts, strconv.FormatInt(h, 10)+" h")
	}
	if m > 0 || h > 0 && sec > 0 {
		parts = append(parts, strconv.FormatInt(m, 10)+" min")
	}
	if sec > 0 || len(parts) == 0 {
		parts = append(parts, strconv.FormatInt(sec, 10)+" s")
	}
	return strings.Join(parts, " ")
}

// --- reconciliation ---

// reconcilePort adapts *reconcile.Service to backoffice.Reconcile. Its
// runs compare everything (every trading account and provider).
func reconcilePort(r *reconcile.Service) backoffice.Reconcile { return reconcileAdapter{r} }

type reconcileAdapter struct{ r *reconcile.Service }

func (a reconcileAdapter) Runs(ctx context.Context, limit int) ([]backoffice.ReconRun, error) {
	rs, err := a.r.Runs(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.ReconRun, 0, len(rs))
	for _, r := range rs {
		out = append(out, runOf(r))
	}
	return out, nil
}

func (a reconcileAdapter) Cases(ctx context.Context, open bool, limit int) ([]backoffice.ReconCase, error) {
	f := reconcile.CaseFilter{Status: reconcile.Resolved, Limit: limit}
	if open {
		f.Status = reconcile.Open
	}
	cs, err := a.r.Cases(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.ReconCase, 0, len(cs))
	for _, c := range cs {
		out = append(out, caseOf(c))
	}
	return out, nil
}

func (a reconcileAdapter) Resolve(ctx context.Context, caseID, actor, note string) (backoffice.ReconCase, error) {
	c, err := a.r.Resolve(ctx, caseID, actor, note)
	if err != nil {
		return backoffice.ReconCase{}, err
	}
	return caseOf(c), nil
}

func (a reconcileAdapter) Run(ctx context.Context, actor string) (backoffice.ReconRun, error) {
	r, err := a.r.Run(ctx, reconcile.RunOptions{Actor: actor})
	if err != nil {
		return backoffice.ReconRun{}, err
	}
	return runOf(r), nil
}

func runOf(r reconcile.Run) backoffice.ReconRun {
	return backoffice.ReconRun{ID: r.ID, Actor: r.Actor, Status: string(r.Status), Summary: r.Summary(), Accounts: r.Accounts,
		Payments: r.Payments, Differences: r.Differences, NewCases: r.NewCases, Notes: r.Detail.Notes, Skipped: r.Detail.Skipped,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
}

func caseOf(c reconcile.Case) backoffice.ReconCase {
	return backoffice.ReconCase{ID: c.ID, RunID: c.RunID, Seen: c.Seen, Kind: string(c.Kind), Subject: c.Subject, Ref: c.Ref,
		Expected: c.Expected, Actual: c.Actual, Evidence: []byte(c.Evidence), Status: string(c.Status), ResolvedBy: c.ResolvedBy,
		Note: c.Note, OpenedAt: c.OpenedAt, ResolvedAt: c.ResolvedAt}
}

// --- audit ---

// auditPort adapts *audit.Log to backoffice.Audit. Verify checks the
// whole chain without an anchor.
func auditPort(l *audit.Log) backoffice.Audit { return auditAdapter{l} }

type auditAdapter struct{ l *audit.Log }

func (a auditAdapter) Search(ctx context.Context, q backoffice.AuditQuery) ([]backoffice.AuditEntry, error) {
	es, err := a.l.Search(ctx, audit.Query{Actor: q.Actor, Action: q.Action, Subject: q.Subject, Text: q.Text,
		From: q.From, To: q.To, BeforeSeq: q.BeforeSeq, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]backoffice.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, backoffice.AuditEntry{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject,
			Detail: e.Detail, Hash: e.Hash})
	}
	return out, nil
}

func (a auditAdapter) Verify(ctx context.Context) (backoffice.AuditCheck, error) {
	r, err := a.l.Verify(ctx, audit.VerifyOptions{})
	if err != nil {
		return backoffice.AuditCheck{}, err
	}
	out := backoffice.AuditCheck{Checked: r.Checked, HeadSeq: r.Head.Seq, HeadHash: r.Head.Hash, MoreProblems: r.MoreProblems}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, backoffice.AuditProblem{Seq: p.Seq, Kind: string(p.Kind), Detail: p.Detail})
	}
	return out, nil
}
