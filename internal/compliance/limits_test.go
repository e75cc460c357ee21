package compliance_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// noRules turns every fraud rule off, so that a test sees only limits.
func noRules(t *testing.T, r *rig) {
	t.Helper()
	for _, rule := range compliance.DefaultRules() {
		rule.Enabled = false
		if err := r.svc.SetRule(ctx, "operator:test", rule); err != nil {
			t.Fatal(err)
		}
	}
}

func key(dir, method, cur string, level int) compliance.LimitKey {
	return compliance.LimitKey{Direction: dir, Method: method, Currency: cur, KYCLevel: level}
}

func TestDailyAndMonthlyLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 1})
		noRules(t, r)
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindDeposit, compliance.AnyMethod, "USD", 1),
			PerDay: amt(t, "5000.00", usd), PerMonth: amt(t, "8000.00", usd)})
		u := "usr_limits"

		// Day 1: 3,800.00 then the boundary.
		r.deposit(u, "dep_1", "card", amt(t, "3800.00", usd))
		_, err := r.requestDeposit(u, "dep_2", "card", amt(t, "1200.01", usd))
		wantCode(t, err, errs.Insufficient, "This deposit would exceed your daily limit of 5,000.00 USD; 1,200.00 USD left today.")
		if _, err := r.requestDeposit(u, "dep_3", "card", amt(t, "1200.00", usd)); err != nil {
			t.Fatalf("a deposit up to the daily limit exactly: %v", err)
		}
		_, err = r.requestDeposit(u, "dep_4", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Insufficient, "daily limit of 5,000.00 USD; 0.00 USD left today")
		// Other currencies are not counted against a USD limit.
		if _, err := r.requestDeposit(u, "dep_5", "card", amt(t, "9000.00", eur)); err != nil {
			t.Errorf("a EUR deposit against a USD limit: %v", err)
		}

		// Just before midnight it is still the same day; after it, a new one.
		r.clk.Set(time.Date(2026, 11, 17, 23, 59, 59, 0, time.UTC))
		_, err = r.requestDeposit(u, "dep_6", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Insufficient, "left today")
		r.clk.Set(time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC))
		r.deposit(u, "dep_7", "card", amt(t, "3000.00", usd))

		// The month now holds 8,000.00: the monthly limit is reached.
		_, err = r.requestDeposit(u, "dep_8", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Insufficient, "This deposit would exceed your monthly limit of 8,000.00 USD; 0.00 USD left this month.")

		// A deposit that fails gives its share back.
		r.move("dep_3", "failed", "")
		_, err = r.requestDeposit(u, "dep_9", "card", amt(t, "1200.01", usd))
		wantCode(t, err, errs.Insufficient, "1,200.00 USD left this month")
		if _, err := r.requestDeposit(u, "dep_10", "card", amt(t, "1200.00", usd)); err != nil {
			t.Fatalf("a deposit up to the monthly limit exactly: %v", err)
		}

		// A new month starts afresh.
		r.clk.Set(time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC))
		_, err = r.requestDeposit(u, "dep_11", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Insufficient, "monthly limit")
		r.clk.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		if _, err := r.requestDeposit(u, "dep_12", "card", amt(t, "5000.00", usd)); err != nil {
			t.Errorf("the first deposit of a new month: %v", err)
		}
	}, compliance.Schema)
}

func TestLimitsInALocation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		berlin, err := time.LoadLocation("Europe/Berlin")
		if err != nil {
			t.Skip("no time zone data:", err)
		}
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 1, Location: berlin})
		noRules(t, r)
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindDeposit, compliance.AnyMethod, "USD", 0), PerDay: amt(t, "100.00", usd)})
		// 22:30 UTC is 23:30 in Berlin; 23:00 UTC is midnight there.
		r.clk.Set(time.Date(2026, 11, 17, 22, 30, 0, 0, time.UTC))
		r.deposit("usr_b", "dep_1", "card", amt(t, "100.00", usd))
		_, err = r.requestDeposit("usr_b", "dep_2", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Insufficient, "left today")
		r.clk.Set(time.Date(2026, 11, 17, 23, 0, 0, 0, time.UTC))
		if _, err := r.requestDeposit("usr_b", "dep_3", "card", amt(t, "100.00", usd)); err != nil {
			t.Errorf("after midnight in Berlin: %v", err)
		}
	}, compliance.Schema)
}

func TestLimitsByMethodLevelAndCount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 1, Methods: payments.DefaultCatalog()})
		noRules(t, r)
		method := payments.DefaultCatalog().Methods()[0]
		other := payments.DefaultCatalog().Methods()[1]
		// Level 1: 1,000.00 a day by the method, 1,500.00 a day by any
		// method, at most 2 withdrawals a day. Level 3: 10,000.00 by any.
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindWithdrawal, method.ID, "USD", 1), PerDay: amt(t, "1000.00", usd)})
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindWithdrawal, compliance.AnyMethod, "USD", 1), PerDay: amt(t, "1500.00", usd), CountPerDay: 2})
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindWithdrawal, compliance.AnyMethod, "USD", 3), PerDay: amt(t, "10000.00", usd)})

		u := "usr_m"
		if _, err := r.requestWithdrawal(u, "wd_1", method.ID, amt(t, "900.00", usd), "d1"); err != nil {
			t.Fatal(err)
		}
		_, err := r.requestWithdrawal(u, "wd_2", method.ID, amt(t, "100.01", usd), "d1")
		wantCode(t, err, errs.Insufficient, "This withdrawal would exceed your daily limit for "+method.Name("en")+" of 1,000.00 USD; 100.00 USD left today.")
		// Another method is bound only by the any-method limit.
		_, err = r.requestWithdrawal(u, "wd_3", other.ID, amt(t, "600.01", usd), "d1")
		wantCode(t, err, errs.Insufficient, "daily limit of 1,500.00 USD; 600.00 USD left today")
		if _, err := r.requestWithdrawal(u, "wd_4", other.ID, amt(t, "50.00", usd), "d1"); err != nil {
			t.Fatal(err)
		}
		_, err = r.requestWithdrawal(u, "wd_5", other.ID, amt(t, "1.00", usd), "d1")
		wantCode(t, err, errs.Insufficient, "This withdrawal would exceed your daily limit of 2 withdrawals; try again tomorrow.")
		// A rejected withdrawal no longer counts.
		r.move("wd_4", "rejected", "staff:stf_1")
		if _, err := r.requestWithdrawal(u, "wd_6", other.ID, amt(t, "1.00", usd), "d1"); err != nil {
			t.Errorf("after a rejection: %v", err)
		}

		// Level 2 has no limits of its own: level 1's apply. Level 3 has its own.
		r.setKYC(u, 2, "DE")
		_, err = r.requestWithdrawal(u, "wd_7", method.ID, amt(t, "100.01", usd), "d1")
		wantCode(t, err, errs.Insufficient, "1,000.00 USD")
		r.setKYC(u, 3, "DE")
		if _, err := r.requestWithdrawal(u, "wd_8", method.ID, amt(t, "5000.00", usd), "d1"); err != nil {
			t.Errorf("level 3's own limit: %v", err)
		}
		// Level 0 has no limit at all.
		if _, err := r.requestWithdrawal("usr_zero", "wd_9", method.ID, amt(t, "1.00", usd), "d1"); err != nil {
			t.Fatal(err)
		}
	}, compliance.Schema)
}

// Two requests of one user at the same time cannot both fit under a limit
// that has room for one: the user's screenings run one after the other.
func TestConcurrentRequestsShareALimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 1})
		noRules(t, r)
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindDeposit, compliance.AnyMethod, "USD", 0), PerDay: amt(t, "100.00", usd)})
		var wg sync.WaitGroup
		results := make([]error, 4)
		a := amt(t, "60.00", usd)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := &txn{kind: funding.KindDeposit, id: "dep_c" + string(rune('a'+i)), user: "usr_c", method: "card", amount: a}
				c := funding.Check{Kind: x.kind, Stage: funding.StageRequest, ID: x.id, Customer: funding.Customer{UserID: x.user},
					MethodID: x.method, Amount: x.amount, At: r.clk.Now()}
				results[i] = r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
					if _, err := r.svc.Screen(ctx, tx, c); err != nil {
						return err
					}
					return r.svc.OnFundingEvent(ctx, tx, funding.Event{Kind: x.kind, ID: x.id, UserID: x.user, MethodID: x.method,
						Amount: x.amount, To: "created", At: r.clk.Now()})
				})
			}()
		}
		wg.Wait()
		var ok, refused int
		for _, err := range results {
			switch errs.CodeOf(err) {
			case "":
				ok++
			case errs.Insufficient:
				refused++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || refused != 3 {
			t.Errorf("%d allowed and %d refused, want 1 and 3", ok, refused)
		}
	}, compliance.Schema)
}

func TestLimitSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{Methods: payments.DefaultCatalog()})
		method := payments.DefaultCatalog().Methods()[0].ID
		k := key(funding.KindDeposit, method, "USD", 1)
		r.setLimit(compliance.Limit{LimitKey: k, PerDay: amt(t, "100.00", usd), CountPerMonth: 10})
		r.clk.Advance(time.Minute)
		r.setLimit(compliance.Limit{LimitKey: k, PerDay: amt(t, "200.00", usd), PerMonth: amt(t, "1000.00", usd)})
		r.setLimit(compliance.Limit{LimitKey: key(funding.KindWithdrawal, compliance.AnyMethod, "EUR", 0), CountPerDay: 3})

		got, err := r.svc.Limits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []compliance.Limit{
			{LimitKey: k, PerDay: amt(t, "200.00", usd), PerMonth: amt(t, "1000.00", usd), UpdatedBy: "staff:stf_1", UpdatedAt: r.clk.Now()},
			{LimitKey: key(funding.KindWithdrawal, compliance.AnyMethod, "EUR", 0), PerDay: money.Zero(eur), PerMonth: money.Zero(eur), CountPerDay: 3,
				UpdatedBy: "staff:stf_1", UpdatedAt: r.clk.Now()},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limits (-want +got):\n%s", diff)
		}

		if err := r.svc.DeleteLimit(ctx, "staff:stf_2", k); err != nil {
			t.Fatal(err)
		}
		wantCode(t, r.svc.DeleteLimit(ctx, "staff:stf_2", k), errs.NotFound, "no limit")
		if got, _ := r.svc.Limits(ctx); len(got) != 1 {
			t.Errorf("after the delete: %+v", got)
		}

		subject := "limit:deposit/" + method + "/USD/level 1"
		wantAudit := []audit.Record{
			{Actor: "staff:stf_1", Action: "limit.changed", Subject: subject, Detail: map[string]string{
				"per_day": "100.00", "per_month": "0.00", "count_per_day": "0", "count_per_month": "10"}},
			{Actor: "staff:stf_1", Action: "limit.changed", Subject: subject, Detail: map[string]string{
				"per_day": "200.00", "per_month": "1000.00", "count_per_day": "0", "count_per_month": "0",
				"previous_per_day": "100.00", "previous_per_month": "0.00", "previous_count_per_day": "0", "previous_count_per_month": "10"}},
			{Actor: "staff:stf_1", Action: "limit.changed", Subject: "limit:withdrawal/*/EUR/level 0", Detail: map[string]string{
				"per_day": "0.00", "per_month": "0.00", "count_per_day": "3", "count_per_month": "0"}},
			{Actor: "staff:stf_2", Action: "limit.changed", Subject: subject, Detail: map[string]string{"deleted": "true",
				"previous_per_day": "200.00", "previous_per_month": "1000.00", "previous_count_per_day": "0", "previous_count_per_month": "0"}},
		}
		if diff := cmp.Diff(wantAudit, r.audit.all()); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}

		for _, tc := range []struct {
			name  string
			actor string
			l     compliance.Limit
			want  string
		}{
			{"no actor", "", compliance.Limit{LimitKey: k, CountPerDay: 1}, "actor"},
			{"unknown direction", "s", compliance.Limit{LimitKey: key("refund", "*", "USD", 0), CountPerDay: 1}, "direction"},
			{"no method", "s", compliance.Limit{LimitKey: key("deposit", "", "USD", 0), CountPerDay: 1}, "method"},
			{"unconfigured method", "s", compliance.Limit{LimitKey: key("deposit", "pigeon", "USD", 0), CountPerDay: 1}, `"pigeon" is not configured`},
			{"unknown currency", "s", compliance.Limit{LimitKey: key("deposit", "*", "XYZ", 0), CountPerDay: 1}, "XYZ"},
			{"level above the top", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 4), CountPerDay: 1}, "between 0 and 3"},
			{"amount in another currency", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0), PerDay: amt(t, "1.00", eur)}, "must be in USD"},
			{"negative amount", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0), PerDay: amt(t, "-1.00", usd)}, "negative"},
			{"negative count", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0), CountPerDay: -1}, "negative"},
			{"month below day", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0), PerDay: amt(t, "2.00", usd), PerMonth: amt(t, "1.00", usd)}, "monthly amount"},
			{"month count below day count", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0), CountPerDay: 5, CountPerMonth: 4}, "monthly count"},
			{"no cap at all", "s", compliance.Limit{LimitKey: key("deposit", "*", "USD", 0)}, "at least one cap"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, r.svc.SetLimit(ctx, tc.actor, tc.l), errs.Invalid, tc.want)
			})
		}
	}, compliance.Schema)
}
