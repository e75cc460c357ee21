package reports_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// expectedDays adds up, from what the services returned while driving,
// the completed deposits (credited) and withdrawals (taken from the
// account) per UTC day and account currency.
func expectedDays(t *testing.T, s story, from time.Time, days int, currencies []string) []reports.Day {
	t.Helper()
	type key struct {
		day time.Time
		cur string
	}
	totals := map[key]*reports.DayTotals{}
	get := func(at time.Time, cur money.Currency) *reports.DayTotals {
		k := key{at.UTC().Truncate(24 * time.Hour), cur.Code}
		if totals[k] == nil {
			totals[k] = &reports.DayTotals{Currency: cur.Code, Deposits: reports.Tally{Sum: money.Zero(cur)}, Withdrawals: reports.Tally{Sum: money.Zero(cur)}}
		}
		return totals[k]
	}
	add := func(tally *reports.Tally, a money.Amount) {
		sum, err := tally.Sum.Add(a)
		if err != nil {
			t.Fatal(err)
		}
		tally.Count++
		tally.Sum = sum
	}
	for _, d := range s.deposits {
		if d.State == funding.DepositCompleted {
			add(&get(d.FinalAt, d.Credit.Currency()).Deposits, d.Credit)
		}
	}
	for _, w := range s.withdrawals {
		if w.State == funding.WithdrawalCompleted {
			add(&get(w.FinalAt, w.Amount.Currency()).Withdrawals, w.Amount)
		}
	}
	var out []reports.Day
	for i := range days {
		day := from.AddDate(0, 0, i)
		entry := reports.Day{Date: day}
		for _, c := range currencies {
			cur := money.MustCurrency(c)
			if tt := totals[key{day, c}]; tt != nil {
				entry.Totals = append(entry.Totals, *tt)
			} else {
				entry.Totals = append(entry.Totals, reports.DayTotals{Currency: c, Deposits: reports.Tally{Sum: money.Zero(cur)}, Withdrawals: reports.Tally{Sum: money.Zero(cur)}})
			}
		}
		out = append(out, entry)
	}
	return out
}

// approvalWait is how long a withdrawal waited in awaiting_approval, from
// funding's own history.
func approvalWait(t *testing.T, r *rig, s story, name string) time.Duration {
	t.Helper()
	w := s.withdrawals[name]
	h, err := r.fund.WithdrawalHistory(context.Background(), w.UserID, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	var since time.Time
	for _, c := range h {
		switch {
		case c.To == "awaiting_approval" && since.IsZero():
			since = c.At
		case c.From == "awaiting_approval" && (c.To == "approved" || c.To == "rejected"):
			return c.At.Sub(since)
		}
	}
	t.Fatalf("%s was never decided", name)
	return 0
}

func TestDashboardAddsUpWhatWasDriven(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()
		got, err := r.rep.Dashboard(ctx, reports.DashboardQuery{From: s.day1, To: s.day2.AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"EUR", "USD"}, got.Currencies); diff != "" {
			t.Errorf("currencies (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(expectedDays(t, s, s.day1, 2, got.Currencies), got.Days); diff != "" {
			t.Errorf("days (-want +got):\n%s", diff)
		}
		// The figures themselves, for a reader: 97.20 + 28.95 USD and
		// 97.20 EUR credited on day 1; 300.00 + 50.00 USD withdrawn on day 2.
		if d1, d2 := got.Days[0].Totals[1], got.Days[1].Totals[1]; d1.Deposits.Sum.String() != "126.15 USD" || d2.Withdrawals.Sum.String() != "350.00 USD" {
			t.Errorf("USD deposits on day 1 %s, withdrawals on day 2 %s; want 126.15 USD and 350.00 USD", d1.Deposits.Sum, d2.Withdrawals.Sum)
		}

		waits := []time.Duration{approvalWait(t, r, s, "aliceWd"), approvalWait(t, r, s, "bobWd")}
		slices.Sort(waits)
		// With two waits the nearest-rank median is the shorter, the 90th
		// percentile the longer.
		want := reports.ApprovalTimes{Decided: 2, Approved: 1, Rejected: 1, Median: waits[0], P90: waits[1]}
		if diff := cmp.Diff(want, got.Approvals); diff != "" {
			t.Errorf("approval times (-want +got):\n%s", diff)
		}
		if waits[0] < 30*time.Minute || waits[1] < 2*time.Hour {
			t.Errorf("waits %v; bob's rejection came after 30 minutes and alice's approval after 2 hours", waits)
		}

		if diff := cmp.Diff([]reports.DeclineCount{{Direction: "deposit", Code: psp.DeclineDoNotHonour, Count: 1}}, got.Declines); diff != "" {
			t.Errorf("declines (-want +got):\n%s", diff)
		}

		// 7 screens (one for each deposit, bob leaving, alice withdrawing), 5
		// deposits started, 3 paid, 3 credited.
		wantFunnel := reports.Funnel{Steps: []reports.FunnelStep{
			{Name: reports.StepScreenOpened, Count: int64(s.screens), FromPreviousBps: 10000, FromFirstBps: 10000},
			{Name: reports.StepMethodChosen, Count: 5, FromPreviousBps: 5 * 10000 / int64(s.screens), FromFirstBps: 5 * 10000 / int64(s.screens)},
			{Name: reports.StepPaid, Count: 3, FromPreviousBps: 6000, FromFirstBps: 3 * 10000 / int64(s.screens)},
			{Name: reports.StepCredited, Count: 3, FromPreviousBps: 10000, FromFirstBps: 3 * 10000 / int64(s.screens)},
		}}
		if s.screens != 7 {
			t.Errorf("drive opened %d screens, the funnel below expects 7", s.screens)
		}
		if diff := cmp.Diff(wantFunnel, got.Funnel); diff != "" {
			t.Errorf("funnel (-want +got):\n%s", diff)
		}
	})
}

func TestDashboardOfOneDayAndOneCurrency(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()

		day1, err := r.rep.Dashboard(ctx, reports.DashboardQuery{From: s.day1, To: s.day2})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(expectedDays(t, s, s.day1, 1, []string{"EUR", "USD"}), day1.Days); diff != "" {
			t.Errorf("day 1 (-want +got):\n%s", diff)
		}
		if day1.Approvals != (reports.ApprovalTimes{}) {
			t.Errorf("approvals on day 1: %+v, want none", day1.Approvals)
		}
		if got := funnelCounts(day1.Funnel); !slices.Equal(got, []int64{5, 4, 3, 3}) {
			t.Errorf("day 1 funnel %v, want 5 screens, 4 deposits, 3 paid, 3 credited", got)
		}

		eurOnly, err := r.rep.Dashboard(ctx, reports.DashboardQuery{From: s.day1, To: s.day2.AddDate(0, 0, 1), Currency: "eur"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(expectedDays(t, s, s.day1, 2, []string{"EUR"}), eurOnly.Days); diff != "" {
			t.Errorf("EUR days (-want +got):\n%s", diff)
		}
		if eurOnly.Approvals.Decided != 0 || len(eurOnly.Declines) != 0 {
			t.Errorf("EUR approvals %+v, declines %+v; all withdrawals and declines were in USD", eurOnly.Approvals, eurOnly.Declines)
		}
		if got := funnelCounts(eurOnly.Funnel); !slices.Equal(got, []int64{1, 1, 1, 1}) {
			t.Errorf("EUR funnel %v, want the one EUR screen and deposit", got)
		}

		quiet, err := r.rep.Dashboard(ctx, reports.DashboardQuery{From: s.day1.AddDate(0, 0, -3), To: s.day1, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		if len(quiet.Days) != 3 || quiet.Days[2].Totals[0].Deposits.Sum.String() != "0.00 USD" || quiet.Funnel.Steps[1].FromPreviousBps != 0 {
			t.Errorf("a quiet period: %+v", quiet)
		}
	})
}

func TestDashboardRefusesBadPeriods(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			name string
			q    reports.DashboardQuery
			want string
		}{
			{"no start", reports.DashboardQuery{To: day}, "needs a start and an end"},
			{"no end", reports.DashboardQuery{From: day}, "needs a start and an end"},
			{"end before start", reports.DashboardQuery{From: day, To: day.Add(-time.Second)}, "must be after its start"},
			{"too long", reports.DashboardQuery{From: day, To: day.AddDate(0, 0, reports.MaxDashboardDays+1)}, "longer than 366 days"},
			{"unknown currency", reports.DashboardQuery{From: day, To: day.AddDate(0, 0, 1), Currency: "ZZZ"}, `currency "ZZZ" is not known`},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := r.rep.Dashboard(context.Background(), c.q); !isInvalid(err, c.want) {
					t.Errorf("Dashboard: %v; want EINVALID with %q", err, c.want)
				}
			})
		}
	})
}

func funnelCounts(f reports.Funnel) []int64 {
	var out []int64
	for _, s := range f.Steps {
		out = append(out, s.Count)
	}
	return out
}
