package compliance

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The fraud rules, in the order Screen applies them.
const (
	// RuleCardCountry holds a paid card deposit when the card was issued in
	// another country than the user's.
	RuleCardCountry = "card_country"
	// RuleDeclinedAttempts holds the next deposit of a user who had Count
	// or more declined or failed deposits within Window.
	RuleDeclinedAttempts = "declined_attempts"
	// RuleNewDestination holds a withdrawal to a destination that no
	// earlier completed withdrawal or deposit of the user used.
	RuleNewDestination = "new_destination"
	// RuleMethodSwitch holds a withdrawal requested within Window of a
	// deposit paid by another payment method.
	RuleMethodSwitch = "method_switch"
	// RuleVelocity holds a deposit or withdrawal when, with it, the user
	// made more than Count of that kind within Window, or more than
	// Amounts[currency] of that kind in that currency within Window.
	RuleVelocity = "velocity"
)

// RuleNames lists the rules in the order Screen applies them.
var RuleNames = []string{RuleCardCountry, RuleDeclinedAttempts, RuleNewDestination, RuleMethodSwitch, RuleVelocity}

// Rule is one fraud rule's settings. Which fields a rule uses:
//
//	velocity           Count (0: no count cap), Window, Amounts (none: no amount cap)
//	new_destination    –
//	method_switch      Window
//	card_country       –
//	declined_attempts  Count (at least 1), Window
type Rule struct {
	Name    string
	Enabled bool
	Count   int
	Window  time.Duration
	// Amounts are per currency code.
	Amounts map[string]money.Amount
	// UpdatedBy and UpdatedAt are empty for a rule that still has its
	// defaults.
	UpdatedBy string
	UpdatedAt time.Time
}

type ruleInfo struct {
	title    string
	template string
	uses     string // "count", "window", "amounts" the rule takes
	defaults Rule
}

var rules = map[string]ruleInfo{
	RuleVelocity: {
		title:    "Velocity",
		template: "Holds a user's deposit or withdrawal when, counting it, the user made more than {count} of that kind within {window}, or more than {amounts} of that kind within {window}.",
		uses:     "count window amounts",
		defaults: Rule{Name: RuleVelocity, Enabled: true, Count: 5, Window: time.Hour, Amounts: map[string]money.Amount{
			"USD": money.New(1_000_000, money.MustCurrency("USD")),
			"EUR": money.New(1_000_000, money.MustCurrency("EUR")),
			"GBP": money.New(1_000_000, money.MustCurrency("GBP")),
		}},
	},
	RuleNewDestination: {
		title:    "First withdrawal to a new destination",
		template: "Holds a withdrawal to a bank account, card or wallet that no earlier completed withdrawal or deposit of the user used.",
		defaults: Rule{Name: RuleNewDestination, Enabled: true},
	},
	RuleMethodSwitch: {
		title:    "Withdrawal soon after a deposit by another method",
		template: "Holds a withdrawal requested within {window} of a deposit the user paid by another payment method.",
		uses:     "window",
		defaults: Rule{Name: RuleMethodSwitch, Enabled: true, Window: 24 * time.Hour},
	},
	RuleCardCountry: {
		title:    "Card country differs from the user's country",
		template: "Holds a card deposit when the card was issued in another country than the user's.",
		defaults: Rule{Name: RuleCardCountry, Enabled: true},
	},
	RuleDeclinedAttempts: {
		title:    "Many declined attempts",
		template: "Holds the next deposit of a user who had {count} or more declined or failed deposits within {window}.",
		uses:     "count window",
		defaults: Rule{Name: RuleDeclinedAttempts, Enabled: true, Count: 3, Window: time.Hour},
	},
}

// DefaultRules returns every rule with its default settings, in the order
// Screen applies them.
func DefaultRules() []Rule {
	out := make([]Rule, 0, len(RuleNames))
	for _, n := range RuleNames {
		out = append(out, cloneRule(rules[n].defaults))
	}
	return out
}

func cloneRule(r Rule) Rule {
	r.Amounts = maps.Clone(r.Amounts)
	return r
}

// Uses lists the parameters the rule takes, of "count", "window" and
// "amounts", for the operator's form.
func (r Rule) Uses() []string { return strings.Fields(rules[r.Name].uses) }

// Title is the rule's name for the operator's screen.
func (r Rule) Title() string { return rules[r.Name].title }

// Template is what the rule does, with the placeholders {count}, {window}
// and {amounts} for its parameters.
func (r Rule) Template() string { return rules[r.Name].template }

// Description is the Template filled with the rule's parameters, for the
// operator's screen.
func (r Rule) Description() string {
	count := "any number"
	if r.Count > 0 {
		count = strconv.Itoa(r.Count)
	}
	amounts := "any amount"
	if len(r.Amounts) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(r.Amounts)) {
			parts = append(parts, formatAmount(r.Amounts[code]))
		}
		amounts = strings.Join(parts, " or ")
	}
	return strings.NewReplacer("{count}", count, "{window}", formatDuration(r.Window), "{amounts}", amounts).Replace(r.Template())
}

// maxWindow bounds a rule's window: the rules look back at most this far.
const maxWindow = 90 * 24 * time.Hour

// checkRule validates r's parameters for its rule. It returns an
// errs.Invalid error naming the problem.
func checkRule(op string, r Rule) error {
	info, ok := rules[r.Name]
	if !ok {
		return errs.Ef(errs.Invalid, op, "there is no fraud rule %q; the rules are %s", r.Name, strings.Join(RuleNames, ", "))
	}
	uses := func(p string) bool { return strings.Contains(info.uses, p) }
	switch {
	case !uses("count") && r.Count != 0:
		return errs.Ef(errs.Invalid, op, "the %s rule takes no count", r.Name)
	case !uses("window") && r.Window != 0:
		return errs.Ef(errs.Invalid, op, "the %s rule takes no window", r.Name)
	case !uses("amounts") && len(r.Amounts) != 0:
		return errs.Ef(errs.Invalid, op, "the %s rule takes no amounts", r.Name)
	case r.Count < 0 || r.Count > 10000:
		return errs.E(errs.Invalid, op, "the count must be between 0 and 10000")
	case uses("window") && (r.Window < time.Minute || r.Window > maxWindow || r.Window%time.Second != 0):
		return errs.Ef(errs.Invalid, op, "the window must be whole seconds between 1 minute and %s", formatDuration(maxWindow))
	case r.Name == RuleDeclinedAttempts && r.Count < 1:
		return errs.E(errs.Invalid, op, "the declined_attempts rule needs a count of at least 1")
	case r.Name == RuleVelocity && r.Count == 0 && len(r.Amounts) == 0:
		return errs.E(errs.Invalid, op, "the velocity rule needs a count, amounts or both")
	}
	for code, a := range r.Amounts {
		if a.Currency().Code != code || a.Sign() <= 0 {
			return errs.Ef(errs.Invalid, op, "the amount for %s must be a positive amount in %s", code, code)
		}
	}
	return nil
}

// Rules returns every fraud rule with its current settings (the defaults
// for a rule never changed), in the order Screen applies them. It returns
// a wrapped database error if they cannot be read.
func (s *Service) Rules(ctx context.Context) ([]Rule, error) {
	rs, err := loadRules(ctx, s.db, "")
	return rs, errs.Wrap("compliance.Rules", err)
}

// Rule returns one fraud rule's settings. It returns errs.NotFound for an
// unknown name and a wrapped database error if it cannot be read.
func (s *Service) Rule(ctx context.Context, name string) (Rule, error) {
	const op = "compliance.Rule"
	if _, ok := rules[name]; !ok {
		return Rule{}, errs.Ef(errs.NotFound, op, "there is no fraud rule %q", name)
	}
	rs, err := loadRules(ctx, s.db, "")
	if err != nil {
		return Rule{}, errs.Wrap(op, err)
	}
	return rs[slices.Index(RuleNames, name)], nil
}

func loadRules(ctx context.Context, q querier, lock string) ([]Rule, error) {
	rows, err := q.Query(ctx, `SELECT name, enabled, count, window_seconds, amounts, updated_by, updated_at FROM compliance_rules`+lock)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := DefaultRules()
	for rows.Next() {
		var r Rule
		var enabled int
		var window, at int64
		var amounts string
		if err := rows.Scan(&r.Name, &enabled, &r.Count, &window, &amounts, &r.UpdatedBy, &at); err != nil {
			return nil, err
		}
		i := slices.Index(RuleNames, r.Name)
		if i < 0 {
			continue
		}
		r.Enabled, r.Window, r.UpdatedAt = enabled != 0, time.Duration(window)*time.Second, sqlstore.FromMicros(at)
		if r.Amounts, err = decodeAmounts(amounts); err != nil {
			return nil, errs.Wrap("compliance.rules: "+r.Name, err)
		}
		out[i] = r
	}
	return out, rows.Err()
}

// encodeAmounts stores amounts as "EUR 10000.00,USD 10000.00".
func encodeAmounts(m map[string]money.Amount) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, code+" "+m[code].Decimal())
	}
	return strings.Join(parts, ",")
}

func decodeAmounts(s string) (map[string]money.Amount, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]money.Amount{}
	for part := range strings.SplitSeq(s, ",") {
		code, dec, _ := strings.Cut(part, " ")
		cur, err := money.LookupCurrency(code)
		if err != nil {
			return nil, err
		}
		a, err := money.Parse(dec, cur)
		if err != nil {
			return nil, err
		}
		out[code] = a
	}
	return out, nil
}

func ruleDetail(prefix string, r Rule) map[string]string {
	d := map[string]string{prefix + "enabled": strconv.FormatBool(r.Enabled)}
	info := rules[r.Name]
	if strings.Contains(info.uses, "count") {
		d[prefix+"count"] = strconv.Itoa(r.Count)
	}
	if strings.Contains(info.uses, "window") {
		d[prefix+"window"] = r.Window.String()
	}
	if strings.Contains(info.uses, "amounts") {
		d[prefix+"amounts"] = encodeAmounts(r.Amounts)
	}
	return d
}

// SetRule stores a fraud rule's settings (enabled or not and its
// parameters) and writes an audit record ("rule.changed", subject
// "rule:<name>") with the new and previous settings, in one transaction.
// Settings equal to the current ones change nothing.
//
// It returns errs.Invalid for an empty actor, an unknown rule, a parameter
// the rule does not take, a window that is not whole seconds between 1
// minute and 90 days, a negative count, declined_attempts without a count,
// velocity without a count or amounts, and an amount that is not positive
// or not in its key's currency; and the audit recorder's errors.
func (s *Service) SetRule(ctx context.Context, actor string, r Rule) error {
	const op = "compliance.SetRule"
	if actor == "" {
		return errs.E(errs.Invalid, op, "an actor is required")
	}
	if err := checkRule(op, r); err != nil {
		return err
	}
	now := s.now()
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		current, err := loadRules(ctx, tx, tx.ForUpdate())
		if err != nil {
			return err
		}
		old := current[slices.Index(RuleNames, r.Name)]
		if old.Enabled == r.Enabled && old.Count == r.Count && old.Window == r.Window && encodeAmounts(old.Amounts) == encodeAmounts(r.Amounts) {
			return nil
		}
		enabled := 0
		if r.Enabled {
			enabled = 1
		}
		if _, err := tx.Exec(ctx, `INSERT INTO compliance_rules (name, enabled, count, window_seconds, amounts, updated_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, count = excluded.count, window_seconds = excluded.window_seconds,
				amounts = excluded.amounts, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			r.Name, enabled, r.Count, int64(r.Window/time.Second), encodeAmounts(r.Amounts), actor, sqlstore.Micros(now)); err != nil {
			return err
		}
		detail := ruleDetail("", r)
		maps.Copy(detail, ruleDetail("previous_", old))
		return s.audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "rule.changed", Subject: "rule:" + r.Name, Detail: detail})
	})
	return errs.Wrap(op, err)
}
