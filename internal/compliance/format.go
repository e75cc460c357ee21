package compliance

import (
	"fmt"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/money"
)

// formatAmount writes an amount for the messages customers and operators
// read: the exact decimal with thousands separated by commas and the
// currency code, e.g. "5,000.00 USD".
func formatAmount(a money.Amount) string {
	d := a.Decimal()
	sign := ""
	if strings.HasPrefix(d, "-") {
		sign, d = "-", d[1:]
	}
	whole, frac, hasFrac := strings.Cut(d, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := sign + b.String()
	if hasFrac {
		out += "." + frac
	}
	return out + " " + a.Currency().Code
}

// formatDuration writes a rule's window for people: "1 hour", "30
// minutes", "2 days".
func formatDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	case d%time.Second == 0:
		return unit(int64(d/time.Second), "second")
	}
	return d.String()
}

// maskDestination shortens a destination key for the operator's screen:
// the kind prefix, the first four and the last four characters
// ("iban:DE89…3000"); short keys are kept whole.
func maskDestination(key string) string {
	prefix, value, ok := strings.Cut(key, ":")
	if !ok {
		prefix, value = "", key
	} else {
		prefix += ":"
	}
	r := []rune(value)
	if len(r) <= 10 {
		return key
	}
	return prefix + string(r[:4]) + "…" + string(r[len(r)-4:])
}

// ordinal writes 1st, 2nd, 3rd, 4th, 11th, 21st.
func ordinal(n int64) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// plural writes "1 deposit" or "3 deposits".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
