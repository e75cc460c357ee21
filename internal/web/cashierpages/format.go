package cashierpages

import (
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/web"
)

// parseAmount reads what a person typed as an amount of cur: digits in
// Latin or Arabic-Indic script, one decimal separator ('.', ',' or '٫'),
// optional spaces. Grouping separators are refused rather than guessed.
// It returns the errors of money.ParsePositive.
func parseAmount(typed string, cur money.Currency) (money.Amount, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(typed) {
		switch {
		case r >= '٠' && r <= '٩':
			b.WriteRune('0' + (r - '٠'))
		case r == '٫' || r == ',':
			b.WriteRune('.')
		case r == ' ' || r == '\u00a0' || r == '\u202f':
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if strings.Count(s, ".") > 1 {
		return money.Amount{}, errs.E(errs.Invalid, "cashierpages.parseAmount", "more than one decimal separator")
	}
	return money.ParsePositive(s, cur)
}

// display formats an amount for people. In a right-to-left language it is
// wrapped in a first-strong isolate, so that "١٠٠٫٠٠ US$" keeps CLDR's
// order inside Arabic text.
func display(a money.Amount, lang string) string {
	if web.Dir(lang) == "rtl" {
		return "\u2068" + a.Display(lang) + "\u2069"
	}
	return a.Display(lang)
}

// localDigits writes a plain decimal ("2.5") in the language's digits and
// decimal separator.
func localDigits(s, lang string) string {
	switch lang {
	case "de", "es":
		return strings.ReplaceAll(s, ".", ",")
	case "ar":
		var b strings.Builder
		for _, r := range s {
			switch {
			case r >= '0' && r <= '9':
				b.WriteRune('٠' + (r - '0'))
			case r == '.':
				b.WriteRune('٫')
			default:
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return s
}

// percent formats basis points as a percentage: 250 → "2.5 %".
func percent(bps int64, lang string) string {
	s := strconv.FormatInt(bps/100, 10)
	if frac := bps % 100; frac != 0 {
		f := strconv.FormatInt(100+frac, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	}
	return localDigits(s, lang) + "\u00a0%"
}

// feeText describes a method's fee in one currency, e.g. "2.5 % + $0.30".
func feeText(rule payments.FeeRule, cur string, tr web.Translator, lang string) string {
	fixed, hasFixed := rule.Fixed[cur]
	hasFixed = hasFixed && !fixed.IsZero()
	switch {
	case rule.PaidBy == payments.PaidByBroker || (!hasFixed && rule.PercentBps == 0):
		return tr.Get("cashier.fee.none")
	case hasFixed && rule.PercentBps > 0:
		return percent(rule.PercentBps, lang) + " + " + display(fixed, lang)
	case hasFixed:
		return display(fixed, lang)
	default:
		return percent(rule.PercentBps, lang)
	}
}

// limitText describes a method's limits in one currency.
func limitText(l payments.Limit, tr web.Translator, lang string) string {
	switch {
	case !l.Min.IsZero() && !l.Max.IsZero():
		return tr.Get("cashier.limits.range", "Min", display(l.Min, lang), "Max", display(l.Max, lang))
	case !l.Min.IsZero():
		return tr.Get("cashier.limits.min", "Min", display(l.Min, lang))
	case !l.Max.IsZero():
		return tr.Get("cashier.limits.max", "Max", display(l.Max, lang))
	}
	return ""
}

// limitMessage words a *payments.LimitError in the page's language.
func limitMessage(le *payments.LimitError, methodName string, tr web.Translator, lang string) string {
	switch le.Kind {
	case payments.BelowMinimum:
		return tr.Get("cashier.error.below_min", "Method", methodName, "Limit", display(le.Limit, lang))
	case payments.AboveMaximum:
		return tr.Get("cashier.error.above_max", "Method", methodName, "Limit", display(le.Limit, lang))
	default:
		return tr.Get("cashier.error.fee_exceeds", "Fee", display(le.Limit, lang))
	}
}

// rateText shows a conversion's applied rate: "1 EUR = 1.0834 USD".
func rateText(c *payments.Conversion, lang string) string {
	if c == nil {
		return ""
	}
	return "1 " + c.From.Currency().Code + " = " + localDigits(c.Rate.String(), lang) + " " + c.To.Currency().Code
}
