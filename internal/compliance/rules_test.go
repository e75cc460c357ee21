package compliance_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

const iban = "iban:DE89370400440532013000"

// fraudCase is one scenario: what the user did before (setup) and the
// transaction that is screened (act), which returns its id and verdict.
type fraudCase struct {
	name  string
	setup func(r *rig, u string)
	act   func(r *rig, u string) (string, funding.Verdict, error)
	// rule is the rule that must hold the transaction; empty for a near
	// miss that must pass.
	rule  string
	facts []string
}

func depositAct(method string, amount string) func(r *rig, u string) (string, funding.Verdict, error) {
	return func(r *rig, u string) (string, funding.Verdict, error) {
		id := u + "_dep_act"
		v, err := r.requestDeposit(u, id, method, amt(r.t, amount, usd))
		return id, v, err
	}
}

func paidAct(cardCountry string) func(r *rig, u string) (string, funding.Verdict, error) {
	return func(r *rig, u string) (string, funding.Verdict, error) {
		id := u + "_dep_act"
		v, err := r.requestDeposit(u, id, "card", amt(r.t, "100.00", usd))
		if err != nil || v.Hold {
			return id, v, fmt.Errorf("held or refused at request: %+v, %v", v, err)
		}
		return id, r.payDeposit(id, cardCountry, ""), nil
	}
}

func withdrawalAct(method, destination string) func(r *rig, u string) (string, funding.Verdict, error) {
	return func(r *rig, u string) (string, funding.Verdict, error) {
		id := u + "_wd_act"
		v, err := r.requestWithdrawal(u, id, method, amt(r.t, "50.00", usd), destination)
		return id, v, err
	}
}

// deposits starts n deposits of amount, every step apart, then lets step
// pass once more.
func deposits(n int, amount string, step time.Duration) func(r *rig, u string) {
	return func(r *rig, u string) {
		for i := range n {
			if _, err := r.requestDeposit(u, fmt.Sprintf("%s_dep_%d", u, i), "card", amt(r.t, amount, usd)); err != nil {
				r.t.Fatal(err)
			}
			r.clk.Advance(step)
		}
	}
}

// declines has n deposits declined, every step apart, then lets step
// pass once more.
func declines(n int, step time.Duration) func(r *rig, u string) {
	return func(r *rig, u string) {
		for i := range n {
			id := fmt.Sprintf("%s_declined_%d", u, i)
			if _, err := r.requestDeposit(u, id, "card", amt(r.t, "20.00", usd)); err != nil {
				r.t.Fatal(err)
			}
			r.move(id, "declined", "")
			r.clk.Advance(step)
		}
	}
}

// knownDestinationThenDeposit: a completed withdrawal by bank transfer to
// the IBAN three days ago, then a card deposit paid, then wait.
func knownDestinationThenDeposit(depositMethod string, wait time.Duration) func(r *rig, u string) {
	return func(r *rig, u string) {
		r.withdraw(u, u+"_wd_old", "bank-transfer", amt(r.t, "10.00", usd), iban)
		r.clk.Advance(72 * time.Hour)
		r.deposit(u, u+"_dep_card", depositMethod, amt(r.t, "500.00", usd))
		r.clk.Advance(wait)
	}
}

func fraudCases() []fraudCase {
	none := func(*rig, string) {}
	return []fraudCase{
		{name: "velocity: the 6th deposit within an hour", setup: deposits(5, "10.00", 10*time.Minute), act: depositAct("card", "10.00"),
			rule: compliance.RuleVelocity, facts: []string{"6th deposit within 1 hour", "the rule allows 5"}},
		{name: "velocity near miss: the first deposit just left the hour", setup: deposits(5, "10.00", 12*time.Minute), act: depositAct("card", "10.00")},
		{name: "velocity: more than the amount within an hour", setup: deposits(1, "6000.00", time.Minute), act: depositAct("card", "4000.01"),
			rule: compliance.RuleVelocity, facts: []string{"4,000.01 USD", "come to 10,000.01 USD (2 deposits)", "allows 10,000.00 USD"}},
		{name: "velocity near miss: exactly the amount", setup: deposits(1, "6000.00", time.Minute), act: depositAct("card", "4000.00")},

		{name: "new destination: first withdrawal to an IBAN", setup: none, act: withdrawalAct("bank-transfer", iban),
			rule: compliance.RuleNewDestination, facts: []string{"first withdrawal to iban:DE89…3000", "no other destination"}},
		{name: "new destination: an earlier failed withdrawal does not count", setup: func(r *rig, u string) {
			if _, err := r.requestWithdrawal(u, u+"_wd_failed", "bank-transfer", amt(r.t, "10.00", usd), iban); err != nil {
				r.t.Fatal(err)
			}
			r.move(u+"_wd_failed", "failed", "")
			r.withdraw(u, u+"_wd_other", "bank-transfer", amt(r.t, "10.00", usd), "iban:GB33BUKB20201555555555")
		}, act: withdrawalAct("bank-transfer", iban),
			rule: compliance.RuleNewDestination, facts: []string{"iban:DE89…3000", "used 1 other destination"}},
		{name: "new destination near miss: an earlier completed withdrawal used it", setup: func(r *rig, u string) {
			r.withdraw(u, u+"_wd_old", "bank-transfer", amt(r.t, "10.00", usd), iban)
		}, act: withdrawalAct("bank-transfer", iban)},
		{name: "new destination near miss: the card paid a deposit", setup: func(r *rig, u string) {
			id := u + "_dep_card"
			if _, err := r.requestDeposit(u, id, "card", amt(r.t, "100.00", usd)); err != nil {
				r.t.Fatal(err)
			}
			r.payDeposit(id, "DE", "card:tok_visa_4242")
			r.move(id, "crediting", "")
			r.move(id, "completed", "")
		}, act: withdrawalAct("card", "card:tok_visa_4242")},

		{name: "method switch: bank withdrawal two hours after a card deposit", setup: knownDestinationThenDeposit("card", 2*time.Hour),
			act: withdrawalAct("bank-transfer", iban), rule: compliance.RuleMethodSwitch,
			facts: []string{"requested 2 hours after a deposit of 500.00 USD", "paid by card", "within 24 hours"}},
		{name: "method switch near miss: the deposit is older than the window", setup: knownDestinationThenDeposit("card", 24*time.Hour+time.Minute),
			act: withdrawalAct("bank-transfer", iban)},
		{name: "method switch near miss: the same method", setup: knownDestinationThenDeposit("bank-transfer", 2*time.Hour),
			act: withdrawalAct("bank-transfer", iban)},

		{name: "card country: a card from another country", setup: none, act: paidAct("NG"),
			rule: compliance.RuleCardCountry, facts: []string{"paid 100.00 USD", "issued in NG", "country is DE"}},
		{name: "card country near miss: the user's country", setup: none, act: paidAct("de")},
		{name: "card country near miss: country not reported", setup: none, act: paidAct("")},

		{name: "declined attempts: three declines, then a deposit", setup: declines(3, 5*time.Minute), act: depositAct("card", "20.00"),
			rule: compliance.RuleDeclinedAttempts, facts: []string{"3 deposits declined or failed within 1 hour", "after 3 or more"}},
		{name: "declined attempts: a deposit started before the declines is held when paid", setup: func(r *rig, u string) {
			if _, err := r.requestDeposit(u, u+"_dep_early", "card", amt(r.t, "20.00", usd)); err != nil {
				r.t.Fatal(err)
			}
			declines(3, time.Minute)(r, u)
		}, act: func(r *rig, u string) (string, funding.Verdict, error) {
			return u + "_dep_early", r.payDeposit(u+"_dep_early", "", ""), nil
		}, rule: compliance.RuleDeclinedAttempts, facts: []string{"3 deposits declined"}},
		{name: "declined attempts near miss: two declines", setup: declines(2, 5*time.Minute), act: depositAct("card", "20.00")},
		{name: "declined attempts near miss: the first decline left the window", setup: declines(3, 20*time.Minute), act: depositAct("card", "20.00")},
	}
}

func TestFraudRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 2, DefaultCountry: "DE", WithdrawalKYCLevel: 1})
		for i, tc := range fraudCases() {
			t.Run(tc.name, func(t *testing.T) {
				r.t = t
				u := fmt.Sprintf("usr_f%02d", i)
				tc.setup(r, u)
				id, v, err := tc.act(r, u)
				if err != nil {
					t.Fatal(err)
				}
				if tc.rule == "" {
					if v.Hold {
						t.Fatalf("held by %s: %s", v.Rule, v.Explanation)
					}
					if _, err := r.svc.Hold(ctx, id); !errs.Is(err, errs.NotFound) {
						t.Errorf("a hold was recorded for a transaction that passed: %v", err)
					}
					return
				}
				t.Logf("%s: %s", v.Rule, v.Explanation)
				if !v.Hold || v.Rule != tc.rule {
					t.Fatalf("verdict %+v, want a hold by %s", v, tc.rule)
				}
				for _, f := range tc.facts {
					if !strings.Contains(v.Explanation, f) {
						t.Errorf("explanation %q does not say %q", v.Explanation, f)
					}
				}
				h, err := r.svc.Hold(ctx, id)
				if err != nil {
					t.Fatalf("the hold was not recorded: %v", err)
				}
				if h.Rule != tc.rule || h.Explanation != v.Explanation || h.UserID != u || !cmp.Equal(h.Rules, []string{tc.rule}) {
					t.Errorf("recorded hold %+v does not match the verdict %+v", h, v)
				}
			})
		}
	}, compliance.Schema)
}

// A disabled rule holds nothing: each triggering case again, with its rule
// switched off.
func TestDisabledRulesDoNotHold(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{DefaultKYCLevel: 2, DefaultCountry: "DE", WithdrawalKYCLevel: 1})
		for i, tc := range fraudCases() {
			if tc.rule == "" {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				r.t = t
				rule, err := r.svc.Rule(ctx, tc.rule)
				if err != nil {
					t.Fatal(err)
				}
				rule.Enabled = false
				if err := r.svc.SetRule(ctx, "staff:stf_1", rule); err != nil {
					t.Fatal(err)
				}
				defer func() {
					rule.Enabled = true
					if err := r.svc.SetRule(ctx, "staff:stf_1", rule); err != nil {
						t.Fatal(err)
					}
				}()
				u := fmt.Sprintf("usr_d%02d", i)
				tc.setup(r, u)
				_, v, err := tc.act(r, u)
				if err != nil {
					t.Fatal(err)
				}
				if v.Hold {
					t.Errorf("the disabled %s rule (or another) held it: %+v", tc.rule, v)
				}
			})
		}
	}, compliance.Schema)
}

func TestRuleSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, compliance.Options{})
		got, err := r.svc.Rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(compliance.DefaultRules(), got); diff != "" {
			t.Errorf("rules before any change (-want +got):\n%s", diff)
		}
		for _, rule := range got {
			if rule.Title() == "" || strings.Contains(rule.Description(), "{") {
				t.Errorf("rule %s: title %q, description %q", rule.Name, rule.Title(), rule.Description())
			}
		}
		uses := map[string][]string{}
		for _, rule := range got {
			uses[rule.Name] = rule.Uses()
		}
		wantUses := map[string][]string{"card_country": {}, "declined_attempts": {"count", "window"}, "method_switch": {"window"},
			"new_destination": {}, "velocity": {"count", "window", "amounts"}}
		if diff := cmp.Diff(wantUses, uses, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("parameters the rules take (-want +got):\n%s", diff)
		}
		if d := got[len(got)-1].Description(); !strings.Contains(d, "more than 5 of that kind within 1 hour") || !strings.Contains(d, "10,000.00 USD") {
			t.Errorf("velocity's description %q does not show its parameters", d)
		}

		v := compliance.Rule{Name: compliance.RuleVelocity, Enabled: true, Count: 10, Window: 30 * time.Minute,
			Amounts: map[string]money.Amount{"EUR": amt(t, "2500.00", eur)}}
		if err := r.svc.SetRule(ctx, "staff:stf_3", v); err != nil {
			t.Fatal(err)
		}
		// The same settings again change nothing.
		if err := r.svc.SetRule(ctx, "staff:stf_3", v); err != nil {
			t.Fatal(err)
		}
		stored, err := r.svc.Rule(ctx, compliance.RuleVelocity)
		if err != nil {
			t.Fatal(err)
		}
		v.UpdatedBy, v.UpdatedAt = "staff:stf_3", r.clk.Now()
		if diff := cmp.Diff(v, stored); diff != "" {
			t.Errorf("stored rule (-want +got):\n%s", diff)
		}
		if d := stored.Description(); !strings.Contains(d, "more than 10 of that kind within 30 minutes, or more than 2,500.00 EUR") {
			t.Errorf("description %q", d)
		}
		wantAudit := []audit.Record{{Actor: "staff:stf_3", Action: "rule.changed", Subject: "rule:velocity", Detail: map[string]string{
			"enabled": "true", "count": "10", "window": "30m0s", "amounts": "EUR 2500.00",
			"previous_enabled": "true", "previous_count": "5", "previous_window": "1h0m0s", "previous_amounts": "EUR 10000.00,GBP 10000.00,USD 10000.00",
		}}}
		if diff := cmp.Diff(wantAudit, r.audit.all()); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
		if _, err := r.svc.Rule(ctx, "astrology"); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown rule: %v", err)
		}

		for _, tc := range []struct {
			name  string
			actor string
			rule  compliance.Rule
			want  string
		}{
			{"no actor", "", compliance.Rule{Name: compliance.RuleCardCountry}, "actor"},
			{"unknown rule", "s", compliance.Rule{Name: "astrology"}, "no fraud rule"},
			{"a count where none is taken", "s", compliance.Rule{Name: compliance.RuleCardCountry, Count: 1}, "takes no count"},
			{"a window where none is taken", "s", compliance.Rule{Name: compliance.RuleNewDestination, Window: time.Hour}, "takes no window"},
			{"amounts where none are taken", "s", compliance.Rule{Name: compliance.RuleMethodSwitch, Window: time.Hour,
				Amounts: map[string]money.Amount{"USD": amt(t, "1.00", usd)}}, "takes no amounts"},
			{"window too short", "s", compliance.Rule{Name: compliance.RuleMethodSwitch, Window: time.Second}, "between 1 minute"},
			{"window too long", "s", compliance.Rule{Name: compliance.RuleMethodSwitch, Window: 91 * 24 * time.Hour}, "90 days"},
			{"window not whole seconds", "s", compliance.Rule{Name: compliance.RuleMethodSwitch, Window: time.Hour + time.Millisecond}, "whole seconds"},
			{"declines without a count", "s", compliance.Rule{Name: compliance.RuleDeclinedAttempts, Window: time.Hour}, "at least 1"},
			{"velocity without caps", "s", compliance.Rule{Name: compliance.RuleVelocity, Window: time.Hour}, "a count, amounts or both"},
			{"velocity with a negative count", "s", compliance.Rule{Name: compliance.RuleVelocity, Window: time.Hour, Count: -1}, "between 0 and 10000"},
			{"amount under another currency", "s", compliance.Rule{Name: compliance.RuleVelocity, Window: time.Hour,
				Amounts: map[string]money.Amount{"USD": amt(t, "1.00", eur)}}, "positive amount in USD"},
			{"zero amount", "s", compliance.Rule{Name: compliance.RuleVelocity, Window: time.Hour,
				Amounts: map[string]money.Amount{"USD": money.Zero(usd)}}, "positive amount in USD"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, r.svc.SetRule(ctx, tc.actor, tc.rule), errs.Invalid, tc.want)
			})
		}
	}, compliance.Schema)
}
