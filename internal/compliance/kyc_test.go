package compliance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/compliance/cashierprofiles"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web/cashierpages"
)

func TestKYCProfiles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 0, DefaultCountry: "GB"})

		p, err := r.svc.Profile(ctx, "usr_anna")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(compliance.Profile{UserID: "usr_anna", Level: 0, Country: "GB"}, p); diff != "" {
			t.Errorf("profile without a stored one (-want +got):\n%s", diff)
		}

		if err := r.svc.SetKYC(ctx, "broker:kyc-api", "usr_anna", compliance.Profile{Level: 2, Country: "de", Source: compliance.SourceAPI, Reference: "case-17"}); err != nil {
			t.Fatal(err)
		}
		first := r.clk.Now()
		r.clk.Advance(time.Hour)
		// The same profile again changes nothing and writes no record.
		if err := r.svc.SetKYC(ctx, "broker:kyc-api", "usr_anna", compliance.Profile{Level: 2, Country: "DE", Source: compliance.SourceAPI, Reference: "case-17"}); err != nil {
			t.Fatal(err)
		}
		if err := r.svc.SetKYC(ctx, "staff:stf_9", "usr_anna", compliance.Profile{Level: 1, Country: "AT", Source: compliance.SourceStaff}); err != nil {
			t.Fatal(err)
		}
		p, err = r.svc.Profile(ctx, "usr_anna")
		if err != nil {
			t.Fatal(err)
		}
		want := compliance.Profile{UserID: "usr_anna", Level: 1, Country: "AT", Source: compliance.SourceStaff, UpdatedBy: "staff:stf_9", UpdatedAt: r.clk.Now(), Stored: true}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("profile (-want +got):\n%s", diff)
		}

		hist, err := r.svc.KYCHistory(ctx, "usr_anna")
		if err != nil {
			t.Fatal(err)
		}
		wantHist := []compliance.KYCChange{
			{UserID: "usr_anna", Level: 2, Country: "DE", Source: compliance.SourceAPI, Reference: "case-17", PreviousLevel: -1, Actor: "broker:kyc-api", At: first},
			{UserID: "usr_anna", Level: 1, Country: "AT", Source: compliance.SourceStaff, PreviousLevel: 2, PreviousCountry: "DE", Actor: "staff:stf_9", At: r.clk.Now()},
		}
		if diff := cmp.Diff(wantHist, hist); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		wantAudit := []audit.Record{
			{Actor: "broker:kyc-api", Action: "kyc.changed", Subject: "user:usr_anna", Detail: map[string]string{"level": "2", "country": "DE", "source": "api", "reference": "case-17"}},
			{Actor: "staff:stf_9", Action: "kyc.changed", Subject: "user:usr_anna", Detail: map[string]string{"level": "1", "country": "AT", "source": "staff", "reference": "",
				"previous_level": "2", "previous_country": "DE"}},
		}
		if diff := cmp.Diff(wantAudit, r.audit.all()); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}

		// The screens see the country and level through the adapter.
		var port cashierpages.Profiles = cashierprofiles.New(r.svc)
		sp, err := port.Profile(ctx, "usr_anna")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cashierpages.Profile{Country: "AT", KYCLevel: 1}, sp); diff != "" {
			t.Errorf("screens' profile (-want +got):\n%s", diff)
		}
		sp, err = port.Profile(ctx, "usr_nobody")
		if err != nil || sp != (cashierpages.Profile{Country: "GB", KYCLevel: 0}) {
			t.Errorf("screens' default profile = %+v, %v", sp, err)
		}
	}, compliance.Schema)
}

func TestSetKYCRefusesBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{})
		ok := compliance.Profile{Level: 1, Country: "DE", Source: compliance.SourceStaff}
		for _, tc := range []struct {
			name, actor, user string
			edit              func(*compliance.Profile)
			want              string
		}{
			{"no actor", "", "usr_a", func(*compliance.Profile) {}, "actor"},
			{"empty user", "staff:1", "", func(*compliance.Profile) {}, "user id"},
			{"user with a space", "staff:1", "usr a", func(*compliance.Profile) {}, "user id"},
			{"negative level", "staff:1", "usr_a", func(p *compliance.Profile) { p.Level = -1 }, "between 0 and 3"},
			{"level above the top", "staff:1", "usr_a", func(p *compliance.Profile) { p.Level = 4 }, "between 0 and 3"},
			{"three-letter country", "staff:1", "usr_a", func(p *compliance.Profile) { p.Country = "DEU" }, "alpha-2"},
			{"unknown source", "staff:1", "usr_a", func(p *compliance.Profile) { p.Source = "crm" }, `"staff" or "api"`},
			{"long reference", "staff:1", "usr_a", func(p *compliance.Profile) { p.Reference = strings.Repeat("x", 201) }, "at most 200"},
			{"control character in reference", "staff:1", "usr_a", func(p *compliance.Profile) { p.Reference = "a\x00b" }, "printable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := ok
				tc.edit(&p)
				wantCode(t, r.svc.SetKYC(ctx, tc.actor, tc.user, p), errs.Invalid, tc.want)
			})
		}
		if got := r.audit.all(); len(got) != 0 {
			t.Errorf("refused changes wrote audit records: %+v", got)
		}
		if p, err := r.svc.Profile(ctx, "usr_a"); err != nil || p.Stored {
			t.Errorf("a refused change stored a profile: %+v, %v", p, err)
		}
	}, compliance.Schema)
}

func TestKYCGate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{
			VerifiedLevel: 1, WithdrawalKYCLevel: 2,
			UnverifiedDepositAllowance: map[string]money.Amount{"USD": amt(t, "2000.00", usd)},
		})

		// An unverified user deposits up to the allowance, in total.
		r.deposit("usr_u", "dep_1", "card", amt(t, "1500.00", usd))
		_, err := r.requestDeposit("usr_u", "dep_2", "card", amt(t, "500.01", usd))
		wantCode(t, err, errs.Forbidden, "Verify your identity", "up to 2,000.00 USD in total", "500.00 USD is left")
		// A declined deposit does not use the allowance; one in flight does.
		if _, err := r.requestDeposit("usr_u", "dep_3", "card", amt(t, "400.00", usd)); err != nil {
			t.Fatal(err)
		}
		r.move("dep_3", "declined", "")
		if _, err := r.requestDeposit("usr_u", "dep_4", "card", amt(t, "300.00", usd)); err != nil {
			t.Fatal(err)
		}
		_, err = r.requestDeposit("usr_u", "dep_5", "card", amt(t, "200.01", usd))
		wantCode(t, err, errs.Forbidden, "200.00 USD is left")
		// Equal to what is left is allowed; then nothing is left.
		if _, err := r.requestDeposit("usr_u", "dep_6", "card", amt(t, "200.00", usd)); err != nil {
			t.Fatalf("a deposit equal to the rest of the allowance: %v", err)
		}
		_, err = r.requestDeposit("usr_u", "dep_7", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Forbidden, "nothing is left")
		// The allowance is lifetime: a new month does not renew it.
		r.clk.Advance(40 * 24 * time.Hour)
		_, err = r.requestDeposit("usr_u", "dep_8", "card", amt(t, "0.01", usd))
		wantCode(t, err, errs.Forbidden, "Verify your identity")
		// A currency without an allowance needs verification.
		_, err = r.requestDeposit("usr_u", "dep_9", "card", amt(t, "1.00", eur))
		wantCode(t, err, errs.Forbidden, "Verify your identity to deposit in EUR")

		// Withdrawals need level 2.
		_, err = r.requestWithdrawal("usr_u", "wd_1", "card", amt(t, "10.00", usd), "card:tok_1")
		wantCode(t, err, errs.Forbidden, "Verify your identity to withdraw", "level 2", "at level 0")
		r.setKYC("usr_u", 1, "DE")
		_, err = r.requestWithdrawal("usr_u", "wd_1", "card", amt(t, "10.00", usd), "card:tok_1")
		wantCode(t, err, errs.Forbidden, "level 2", "at level 1")

		// Verified, the user deposits beyond the allowance and withdraws.
		r.setKYC("usr_u", 2, "DE")
		if _, err := r.requestDeposit("usr_u", "dep_10", "card", amt(t, "5000.00", usd)); err != nil {
			t.Errorf("a verified user's deposit: %v", err)
		}
		if _, err := r.requestWithdrawal("usr_u", "wd_1", "card", amt(t, "10.00", usd), "card:tok_1"); err != nil {
			t.Errorf("a verified user's withdrawal: %v", err)
		}
	}, compliance.Schema)
}

func TestNewRefusesBadOptions(t *testing.T) {
	db := new(sqlstore.DB)
	{
		for _, tc := range []struct {
			name string
			db   *sqlstore.DB
			opt  compliance.Options
		}{
			{"no database", nil, compliance.Options{}},
			{"level above the top", db, compliance.Options{WithdrawalKYCLevel: 4}},
			{"negative default level", db, compliance.Options{DefaultKYCLevel: -1}},
			{"lower-case country", db, compliance.Options{DefaultCountry: "de"}},
			{"allowance in another currency", db, compliance.Options{UnverifiedDepositAllowance: map[string]money.Amount{"EUR": money.New(100, usd)}}},
			{"negative allowance", db, compliance.Options{UnverifiedDepositAllowance: map[string]money.Amount{"USD": money.New(-1, usd)}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := compliance.New(tc.db, tc.opt); !errs.Is(err, errs.Invalid) {
					t.Errorf("New = %v, want an invalid-options error", err)
				}
			})
		}
	}
}

// A change whose audit record cannot be written is not made.
func TestChangesRollBackWithoutAnAuditRecord(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		failing := audit.RecorderFunc(func(ctx context.Context, tx *sqlstore.Tx, r audit.Record) error {
			return errs.E(errs.Unavailable, "audit", "the trail is down")
		})
		svc, err := compliance.New(db, compliance.Options{Audit: failing})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, svc.SetKYC(ctx, "staff:1", "usr_a", compliance.Profile{Level: 2, Source: compliance.SourceStaff}), errs.Unavailable)
		if p, err := svc.Profile(ctx, "usr_a"); err != nil || p.Stored {
			t.Errorf("profile stored without its audit record: %+v, %v", p, err)
		}
		if h, err := svc.KYCHistory(ctx, "usr_a"); err != nil || len(h) != 0 {
			t.Errorf("history written without an audit record: %+v, %v", h, err)
		}
		wantCode(t, svc.SetLimit(ctx, "staff:1", compliance.Limit{LimitKey: key(funding.KindDeposit, "*", "USD", 0), CountPerDay: 1}), errs.Unavailable)
		if ls, err := svc.Limits(ctx); err != nil || len(ls) != 0 {
			t.Errorf("limit stored without its audit record: %+v, %v", ls, err)
		}
		wantCode(t, svc.SetRule(ctx, "staff:1", compliance.Rule{Name: compliance.RuleCardCountry}), errs.Unavailable)
		if r, err := svc.Rule(ctx, compliance.RuleCardCountry); err != nil || !r.Enabled {
			t.Errorf("rule changed without its audit record: %+v, %v", r, err)
		}
	}, compliance.Schema)
}
