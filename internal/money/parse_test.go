package money

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

var (
	jpy  = MustCurrency("JPY")
	usd  = MustCurrency("USD")
	eur  = MustCurrency("EUR")
	kwd  = MustCurrency("KWD")
	btc  = MustCurrency("BTC")
	usdt = MustCurrency("USDT")
)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		cur   Currency
		minor int64
	}{
		{"JPY zero", "0", jpy, 0},
		{"JPY whole", "1000", jpy, 1000},
		{"JPY negative", "-5", jpy, -5},
		{"JPY zero decimals written", "1000.00", jpy, 1000},
		{"JPY leading zeros", "007", jpy, 7},
		{"JPY minus zero", "-0", jpy, 0},
		{"JPY max", "9223372036854775807", jpy, math.MaxInt64},
		{"JPY min", "-9223372036854775807", jpy, -math.MaxInt64},

		{"USD cents", "12.34", usd, 1234},
		{"USD one decimal", "12.3", usd, 1230},
		{"USD whole negative", "-5", usd, -500},
		{"USD half", "0.5", usd, 50},
		{"USD five cents", "0.05", usd, 5},
		{"USD minus five cents", "-0.05", usd, -5},
		{"USD trailing zero beyond cents", "12.300", usd, 1230},
		{"USD many trailing zeros", "1.00000000000000000000000", usd, 100},
		{"USD zero with decimals", "0.00", usd, 0},
		{"USD minus zero with decimals", "-0.00", usd, 0},
		{"USD max", "92233720368547758.07", usd, math.MaxInt64},
		{"USD min", "-92233720368547758.07", usd, -math.MaxInt64},
		{"USD max with leading zeros", "000092233720368547758.07", usd, math.MaxInt64},

		{"KWD fils", "1.234", kwd, 1234},
		{"KWD one fils", "0.001", kwd, 1},
		{"KWD negative", "-12.5", kwd, -12500},
		{"KWD max", "9223372036854775.807", kwd, math.MaxInt64},

		{"BTC satoshi", "0.00000001", btc, 1},
		{"BTC supply", "21000000", btc, 2_100_000_000_000_000},
		{"BTC one and a half", "1.5", btc, 150_000_000},
		{"BTC max", "92233720368.54775807", btc, math.MaxInt64},
		{"BTC min", "-92233720368.54775807", btc, -math.MaxInt64},
		{"USDT micro", "0.000001", usdt, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in, tc.cur)
			if err != nil {
				t.Fatalf("Parse(%q, %s): %v", tc.in, tc.cur, err)
			}
			if diff := cmp.Diff(New(tc.minor, tc.cur), got); diff != "" {
				t.Errorf("Parse(%q, %s) (-want +got):\n%s", tc.in, tc.cur, diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		cur  Currency
		msg  string
	}{
		{"empty", "", usd, "amount is empty"},
		{"leading space", " 12.34", usd, `amount " 12.34" contains spaces`},
		{"trailing space", "12.34 ", usd, "contains spaces"},
		{"inner space", "12 345", usd, "contains spaces"},
		{"no-break space grouping", "1\u00a0000", usd, "contains spaces"},
		{"tab", "\t1", usd, "contains spaces"},
		{"newline", "1\n", usd, "contains spaces"},
		{"plus", "+5", usd, `amount "+5" has a plus sign; write it without one`},
		{"thousands comma", "1,000.00", usd, `amount "1,000.00" contains a separator`},
		{"decimal comma", "12,50", eur, "contains a separator"},
		{"underscore", "1_000", jpy, "contains a separator"},
		{"apostrophe", "1'000", jpy, "contains a separator"},
		{"exponent", "1e2", usd, `amount "1e2" has an exponent; write it as a plain decimal`},
		{"capital exponent", "1E2", jpy, "has an exponent"},
		{"negative exponent", "1.5e-3", btc, "has an exponent"},
		{"signed exponent", "-2e+5", usd, "has an exponent"},
		{"NaN", "NaN", usd, `amount "NaN" is not a decimal number`},
		{"Inf", "Inf", usd, "is not a decimal number"},
		{"minus Inf", "-Inf", usd, "is not a decimal number"},
		{"Infinity", "Infinity", usd, "is not a decimal number"},
		{"letters", "abc", usd, "is not a decimal number"},
		{"bare minus", "-", usd, "is not a decimal number"},
		{"double minus", "--5", usd, "is not a decimal number"},
		{"trailing minus", "5-", usd, "is not a decimal number"},
		{"hex", "0x10", jpy, "is not a decimal number"},
		{"Arabic-Indic digits", "١٢", jpy, "is not a decimal number"},
		{"two points", "1.2.3", usd, "is not a decimal number"},
		{"dollar sign", "$5", usd, "is not a decimal number"},
		{"code suffix", "5USD", usd, "is not a decimal number"},
		{"leading point", ".5", usd, `amount ".5" needs a digit before the decimal point`},
		{"negative leading point", "-.5", usd, "needs a digit before the decimal point"},
		{"bare point", ".", usd, "is not a decimal number"},
		{"trailing point", "5.", usd, `amount "5." needs a digit after the decimal point`},
		{"negative trailing point", "-5.", usd, "needs a digit after the decimal point"},
		{"USD three decimals", "1.234", usd, "amount 1.234 has more decimals than USD allows (2)"},
		{"USD digit after zeros", "1.2301", usd, "more decimals than USD allows (2)"},
		{"USD negative three decimals", "-0.001", usd, "amount -0.001 has more decimals than USD allows (2)"},
		{"JPY any decimal", "1.5", jpy, "amount 1.5 has more decimals than JPY allows (0)"},
		{"KWD four decimals", "1.2345", kwd, "more decimals than KWD allows (3)"},
		{"BTC nine decimals", "0.000000001", btc, "more decimals than BTC allows (8)"},
		{"USD one past max", "92233720368547758.08", usd, "amount 92233720368547758.08 is too large for USD"},
		{"USD min int64 excluded", "-92233720368547758.08", usd, "is too large for USD"},
		{"JPY one past max", "9223372036854775808", jpy, "too large for JPY"},
		{"JPY way past max", "99999999999999999999999", jpy, "too large for JPY"},
		{"BTC one past max", "92233720368.54775808", btc, "too large for BTC"},
		{"BTC past max by scale", "92233720369", btc, "too large for BTC"},
		{"long input is cut in the message", strings.Repeat("9", 100), usd, strings.Repeat("9", 40) + "… is too large"},
		{"long junk is cut in the message", strings.Repeat("x", 100), usd, `"` + strings.Repeat("x", 40) + `"… is not`},
		{"no currency", "1", Currency{}, "currency is not set"},
		{"too many digits", "1", Currency{Code: "XYZ", Digits: 9}, "at most 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in, tc.cur)
			wantCode(t, err, errs.Invalid, tc.msg)
			if got != (Amount{}) {
				t.Errorf("Parse returned %v with its error", got)
			}
			var e *errs.Error
			if !errors.As(err, &e) || e.Op != "money.Parse" {
				t.Errorf("error %v does not name money.Parse", err)
			}
		})
	}
}

func TestParsePositive(t *testing.T) {
	got, err := ParsePositive("12.34", usd)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(New(1234, usd), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	rejects := []struct {
		name, in, msg string
	}{
		{"negative", "-5", `amount "-5" must be a positive number without a sign`},
		{"minus zero", "-0", "without a sign"},
		{"plus", "+5", "has a plus sign"},
		{"zero", "0", "amount must be greater than zero"},
		{"zero with decimals", "0.00", "greater than zero"},
		{"excess decimals", "0.001", "more decimals than USD allows (2)"},
		{"empty", "", "amount is empty"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePositive(tc.in, usd)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}

// decodeNumber decodes a JSON document the way the HTTP layer does and
// returns its "amount" field.
func decodeNumber(t *testing.T, doc string) json.Number {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var body struct {
		Amount json.Number `json:"amount"`
	}
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	return body.Amount
}

func TestParseNumber(t *testing.T) {
	accepts := []struct {
		name  string
		doc   string
		cur   Currency
		minor int64
	}{
		{"integer", `{"amount": 100}`, usd, 10000},
		{"decimal", `{"amount": 100.5}`, usd, 10050},
		{"negative", `{"amount": -0.05}`, usd, -5},
		{"minus zero", `{"amount": -0.0}`, usd, 0},
		{"satoshi", `{"amount": 0.00000001}`, btc, 1},
		{"float-looking but exact", `{"amount": 0.30}`, usd, 30},
		{"fils", `{"amount": 1.005}`, kwd, 1005},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNumber(decodeNumber(t, tc.doc), tc.cur)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(New(tc.minor, tc.cur), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	rejects := []struct {
		name string
		doc  string
		cur  Currency
		msg  string
	}{
		{"exponent", `{"amount": 1e2}`, usd, `amount "1e2" has an exponent`},
		{"negative exponent", `{"amount": 5E-1}`, usd, "has an exponent"},
		{"excess decimals", `{"amount": 1.005}`, usd, "amount 1.005 has more decimals than USD allows (2)"},
		{"too large", `{"amount": 92233720368547758.08}`, usd, "too large for USD"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNumber(decodeNumber(t, tc.doc), tc.cur)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
	t.Run("hand-built json.Number gets the same rules", func(t *testing.T) {
		_, err := ParseNumber(json.Number(" 1"), usd)
		wantCode(t, err, errs.Invalid, "contains spaces")
	})
}

// The client withdrawal API of seed 002 sends a bare number and a numeric
// currency code.
func TestParseSeed002WithdrawalBody(t *testing.T) {
	doc := `{"accountId": 4488, "methodId": 2, "amount": 100.25, "currencyCode": 978}`
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.UseNumber()
	var body struct {
		Amount       json.Number `json:"amount"`
		CurrencyCode int         `json:"currencyCode"`
	}
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	cur, err := CurrencyByNumeric(body.CurrencyCode)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseNumber(body.Amount, cur)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "100.25 EUR" {
		t.Errorf("got %v, want 100.25 EUR", got)
	}
}

func TestFromScaled(t *testing.T) {
	accepts := []struct {
		name  string
		units int64
		scale int
		cur   Currency
		want  string
	}{
		{"cTrader balance, same digits", 234512, 2, usd, "2345.12 USD"},
		{"more platform digits, exact", 234500, 2, jpy, "2345 JPY"},
		{"fewer platform digits", 5, 0, btc, "5.00000000 BTC"},
		{"trailing zeros beyond cents", 12300, 4, usd, "1.23 USD"},
		{"negative", -150, 2, usd, "-1.50 USD"},
		{"max", math.MaxInt64, 2, usd, "92233720368547758.07 USD"},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromScaled(tc.units, tc.scale, tc.cur)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
	rejects := []struct {
		name  string
		units int64
		scale int
		cur   Currency
		msg   string
	}{
		{"would round", 234512, 2, jpy, "2345.12 has more decimals than JPY allows (0)"},
		{"would round cents", 12345, 4, usd, "1.2345 has more decimals than USD allows (2)"},
		{"scale too big", 1, 19, usd, "scale 19 must be between 0 and 18"},
		{"negative scale", 1, -1, usd, "between 0 and 18"},
		{"too large after scaling", math.MaxInt64, 0, usd, "is too large for USD"},
		{"min int64", math.MinInt64, 0, jpy, "out of range"},
		{"min int64 scaled down", math.MinInt64, 1, jpy, "more decimals"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromScaled(tc.units, tc.scale, tc.cur)
			wantCode(t, err, errs.Invalid, tc.msg)
		})
	}
}
