package money

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// nbsp separates a currency symbol from the number, as CLDR does, so that
// the two never break onto different lines.
const nbsp = "\u00a0"

// symbolPlacement is where a language writes the currency symbol, after
// CLDR's standard currency pattern for the language.
type symbolPlacement struct {
	after bool // "1.234,50 €" rather than "€1,234.50"
	space bool // a space between symbol and number ("€ 1.234,50" in nl)
}

// placements lists the CLDR standard currency patterns of the languages a
// broker is likely to serve. Keys are a base language or language-REGION;
// the region entry wins. Languages not listed use "¤#,##0.00" (en).
var placements = map[string]symbolPlacement{
	// #,##0.00 ¤
	"de": {after: true, space: true}, "fr": {after: true, space: true}, "es": {after: true, space: true},
	"it": {after: true, space: true}, "pt-PT": {after: true, space: true}, "ru": {after: true, space: true},
	"uk": {after: true, space: true}, "be": {after: true, space: true}, "pl": {after: true, space: true},
	"cs": {after: true, space: true}, "sk": {after: true, space: true}, "sl": {after: true, space: true},
	"hr": {after: true, space: true}, "sr": {after: true, space: true}, "bs": {after: true, space: true},
	"bg": {after: true, space: true}, "ro": {after: true, space: true}, "hu": {after: true, space: true},
	"fi": {after: true, space: true}, "sv": {after: true, space: true}, "da": {after: true, space: true},
	"nb": {after: true, space: true}, "no": {after: true, space: true}, "nn": {after: true, space: true},
	"is": {after: true, space: true}, "lt": {after: true, space: true}, "lv": {after: true, space: true},
	"et": {after: true, space: true}, "el": {after: true, space: true}, "ca": {after: true, space: true},
	"kk": {after: true, space: true}, "az": {after: true, space: true}, "ka": {after: true, space: true},
	"hy": {after: true, space: true}, "vi": {after: true, space: true}, "ar": {after: true, space: true},
	"he": {after: true, space: true}, "mk": {after: true, space: true}, "sq": {after: true, space: true},
	// ¤ #,##0.00
	"nl": {space: true}, "pt": {space: true}, "de-AT": {space: true}, "de-CH": {space: true},
	"de-LI": {space: true}, "it-CH": {space: true}, "fr-CH": {after: true, space: true},
	// ¤#,##0.00: the Spanish of the Americas
	"es-419": {}, "es-MX": {}, "es-US": {}, "es-CO": {}, "es-CL": {}, "es-PE": {}, "es-AR": {space: true},
}

func placementFor(tag language.Tag) symbolPlacement {
	base, _ := tag.Base()
	region, conf := tag.Region()
	if conf == language.Exact {
		if p, ok := placements[base.String()+"-"+region.String()]; ok {
			return p
		}
	}
	if p, ok := placements[base.String()]; ok {
		return p
	}
	return symbolPlacement{}
}

// locale holds what Display needs from a language, computed once.
type locale struct {
	tag       language.Tag
	printer   *message.Printer
	decimal   string // decimal separator, "." or ","
	minus     string // minus sign with any bidi marks
	placement symbolPlacement
}

var locales sync.Map // language tag string → *locale

// localeFor returns the locale of lang reduced to its language and region,
// so that the cache stays small whatever tags callers pass.
func localeFor(lang string) *locale {
	tag := language.English
	if parsed, err := language.Parse(lang); err == nil && lang != "" {
		base, _ := parsed.Base()
		tag, _ = language.Compose(base)
		if region, conf := parsed.Region(); conf == language.Exact {
			tag, _ = language.Compose(base, region)
		}
	}
	key := tag.String()
	if l, ok := locales.Load(key); ok {
		return l.(*locale)
	}
	p := message.NewPrinter(tag)
	zero := p.Sprint(number.Decimal(0))
	zeroPointZero := p.Sprint(number.Decimal(0, number.Scale(1)))
	one := p.Sprint(number.Decimal(1))
	l := &locale{
		tag:       tag,
		printer:   p,
		decimal:   strings.TrimSuffix(strings.TrimPrefix(zeroPointZero, zero), zero),
		minus:     strings.TrimSuffix(p.Sprint(number.Decimal(-1)), one),
		placement: placementFor(tag),
	}
	if l.decimal == "" {
		l.decimal = "."
	}
	if l.minus == "" {
		l.minus = "-"
	}
	actual, _ := locales.LoadOrStore(key, l)
	return actual.(*locale)
}

// Display formats the amount for people in the language lang (a BCP 47
// tag such as "en", "de" or "pt-BR"): the currency symbol from CLDR
// (golang.org/x/text/currency) placed as the language places it, grouping
// and decimal separator and digits of the language, and exactly the
// currency's decimals, e.g. "$1,234.50" in en and "1.234,50 €" in de. The
// space between a symbol and the number is a no-break space (U+00A0). A
// registered asset is shown with its code ("BTC 0.00100000" in en). An
// unknown or empty lang formats as English. Display works on the minor units
// as integers; nothing passes through a float.
func (a Amount) Display(lang string) string {
	if !a.cur.valid() {
		return a.String()
	}
	l := localeFor(lang)

	mag := uint64(a.minor)
	if a.minor < 0 {
		mag = -mag
	}
	div := uint64(pow10(a.cur.Digits))
	var num strings.Builder
	num.WriteString(l.printer.Sprint(number.Decimal(mag / div)))
	if a.cur.Digits > 0 {
		num.WriteString(l.decimal)
		num.WriteString(l.printer.Sprint(number.Decimal(mag%div, number.MinIntegerDigits(a.cur.Digits), number.NoSeparator())))
	}

	sym := a.cur.Code
	if IsISO(a.cur) {
		if u, err := currency.ParseISO(a.cur.Code); err == nil {
			sym = l.printer.Sprint(currency.Symbol(u))
		}
	}
	var out strings.Builder
	if a.minor < 0 {
		out.WriteString(l.minus)
	}
	if sym == "" {
		out.WriteString(num.String())
		return out.String()
	}
	if l.placement.after {
		out.WriteString(num.String())
		out.WriteString(nbsp)
		out.WriteString(sym)
		return out.String()
	}
	out.WriteString(sym)
	// CLDR's currency spacing: a symbol that ends in a letter ("CHF") is
	// kept apart from the digits even where the pattern has no space.
	last, _ := utf8.DecodeLastRuneInString(sym)
	if l.placement.space || unicode.IsLetter(last) {
		out.WriteString(nbsp)
	}
	out.WriteString(num.String())
	return out.String()
}
