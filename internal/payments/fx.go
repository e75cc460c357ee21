package payments

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// ConvertRounding is how a converted amount is rounded to the target
// currency's minor unit: half to even, without bias. The broker's FX margin
// is the explicit spread, never the rounding.
const ConvertRounding = money.RoundHalfEven

// InverseRounding is how a rate found only the other way round (USD/EUR
// from EUR/USD) is inverted: half to even, to money.MaxRateDecimals (12)
// decimals. The inverted rate is the one recorded with the payment.
const InverseRounding = money.RoundHalfEven

// RateSource gives mid-market exchange rates.
//
// Rate returns how many units of to one unit of from buys. It returns an
// errs.NotFound error when the source has no rate for exactly that pair (it
// does not invert; Converter does), and other errors when the source itself
// fails.
type RateSource interface {
	Rate(ctx context.Context, from, to money.Currency) (money.Rate, error)
}

// StaticRates is a fixed table of rates, typically read from a JSON file
// with LoadStaticRates.
type StaticRates map[string]money.Rate // key "EUR/USD"

// pairKey is the key of a rate from one currency to another.
func pairKey(from, to string) string { return from + "/" + to }

// Rate implements RateSource.
func (s StaticRates) Rate(_ context.Context, from, to money.Currency) (money.Rate, error) {
	r, ok := s[pairKey(from.Code, to.Code)]
	if !ok {
		return money.Rate{}, errs.Ef(errs.NotFound, "payments.StaticRates.Rate", "no static rate for %s/%s", from.Code, to.Code)
	}
	return r, nil
}

type ratesFile struct {
	Rates map[string]string `json:"rates"`
}

// LoadStaticRates reads a rates file: {"rates": {"EUR/USD": "1.0835",
// "USD/JPY": "151.237"}}. A pair "A/B" with rate r means one A buys r B.
// It returns an errs.Invalid error for malformed JSON, a key that is not two
// known currency codes joined by '/', a pair of a currency with itself, and
// a rate ParseRate rejects.
func LoadStaticRates(r io.Reader) (StaticRates, error) {
	const op = "payments.LoadStaticRates"
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var f ratesFile
	if err := dec.Decode(&f); err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Op: op, Message: "rates file is not valid: " + err.Error(), Err: err}
	}
	out := StaticRates{}
	for key, text := range f.Rates {
		from, to, err := ParsePair(key)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		rate, err := money.ParseRate(text)
		if err != nil {
			return nil, errs.Ef(errs.Invalid, op, "rate %s: %s", key, errs.MessageOf(err))
		}
		out[pairKey(from.Code, to.Code)] = rate
	}
	return out, nil
}

//go:embed demo_rates.json
var demoRates []byte

// DemoRates returns the built-in demonstration rates for the currencies of
// the default methods (EUR, GBP, JPY, KWD, USDT and BTC against USD, and EUR
// against GBP, JPY and KWD). They are fixed illustrative values, not market
// data: the demo uses them; production names a rates file or sets rates
// with the fx command.
func DemoRates() StaticRates {
	r, err := LoadStaticRates(bytes.NewReader(demoRates))
	if err != nil {
		panic("payments: embedded demo_rates.json: " + err.Error())
	}
	return r
}

// LoadStaticRatesFile is LoadStaticRates on a file; an empty path gives an
// empty table. It returns the errors of LoadStaticRates and an errs.Invalid
// error when the file cannot be read.
func LoadStaticRatesFile(path string) (StaticRates, error) {
	if path == "" {
		return StaticRates{}, nil
	}
	f, err := os.Open(path) // #nosec G304 -- the rates file the operator configures
	if err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Op: "payments.LoadStaticRatesFile", Message: "cannot read rates file " + path, Err: err}
	}
	defer f.Close()
	s, err := LoadStaticRates(f)
	return s, errs.Wrap("payments.LoadStaticRatesFile: "+path, err)
}

// ParsePair reads "EUR/USD" as the currencies EUR and USD. It returns an
// errs.Invalid error for anything else, including a currency paired with
// itself.
func ParsePair(s string) (from, to money.Currency, err error) {
	const op = "payments.ParsePair"
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return from, to, errs.Ef(errs.Invalid, op, "currency pair %q must look like EUR/USD", s)
	}
	if from, err = money.LookupCurrency(a); err != nil {
		return from, to, errs.Ef(errs.Invalid, op, "currency pair %q: %s", s, errs.MessageOf(err))
	}
	if to, err = money.LookupCurrency(b); err != nil {
		return from, to, errs.Ef(errs.Invalid, op, "currency pair %q: %s", s, errs.MessageOf(err))
	}
	if from == to {
		return from, to, errs.Ef(errs.Invalid, op, "currency pair %q converts a currency into itself", s)
	}
	return from, to, nil
}

// Sources chains rate sources: Rate asks each in turn and returns the first
// rate found. Errors other than errs.NotFound stop the search.
type Sources []RateSource

// Rate implements RateSource.
func (ss Sources) Rate(ctx context.Context, from, to money.Currency) (money.Rate, error) {
	for _, s := range ss {
		r, err := s.Rate(ctx, from, to)
		if err == nil {
			return r, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return money.Rate{}, err
		}
	}
	return money.Rate{}, errs.Ef(errs.NotFound, "payments.Sources.Rate", "no exchange rate for %s/%s", from.Code, to.Code)
}

// Conversion records how an amount was converted: both amounts, the mid
// rate, the spread and the rate actually applied. Anyone can check it:
// To = round_half_even(From × Rate) in To's minor units, and
// Rate = MidRate × (1 − SpreadBps/10000).
type Conversion struct {
	From    money.Amount
	To      money.Amount
	MidRate money.Rate
	// Inverted says MidRate was derived from the opposite pair (To/From)
	// by inversion rounded half-even to 12 decimals.
	Inverted  bool
	SpreadBps int64
	// Rate is the rate applied: MidRate lowered by the spread.
	Rate money.Rate
}

// Converter converts amounts with rates from a source and a spread.
type Converter struct {
	Source RateSource
	// SpreadBps lowers every rate by this many basis points (0..9999), so
	// the customer receives less of the target currency; the difference is
	// the broker's FX margin.
	SpreadBps int64
}

// Convert converts amount into currency to. An amount already in to is
// returned unchanged with no rate. Otherwise the mid rate is the source's
// from/to rate or, failing that, the inverse of its to/from rate; the
// spread lowers it; and the result is rounded half to even once.
//
// It returns an errs.Invalid error for a spread outside 0..9999 or a
// result out of range, an errs.Unavailable error (wrapping the source's
// errs.NotFound) when no rate exists either way, and the source's own
// errors.
func (c Converter) Convert(ctx context.Context, amount money.Amount, to money.Currency) (Conversion, error) {
	const op = "payments.Converter.Convert"
	from := amount.Currency()
	if from == to {
		return Conversion{From: amount, To: amount}, nil
	}
	if c.Source == nil {
		return Conversion{}, errs.Ef(errs.Unavailable, op, "no exchange rate source is configured for %s/%s", from.Code, to.Code)
	}
	conv := Conversion{From: amount, SpreadBps: c.SpreadBps}
	mid, err := c.Source.Rate(ctx, from, to)
	if errs.Is(err, errs.NotFound) {
		var back money.Rate
		back, err = c.Source.Rate(ctx, to, from)
		if err == nil {
			mid, err = back.Inverse(InverseRounding)
			conv.Inverted = true
		}
	}
	if errs.Is(err, errs.NotFound) {
		return Conversion{}, &errs.Error{Code: errs.Unavailable, Op: op, Message: fmt.Sprintf("no exchange rate for %s/%s", from.Code, to.Code), Err: err}
	}
	if err != nil {
		return Conversion{}, errs.Wrap(op, err)
	}
	conv.MidRate = mid
	if conv.Rate, err = mid.WithSpread(c.SpreadBps); err != nil {
		return Conversion{}, errs.Wrap(op, err)
	}
	if conv.To, err = money.Convert(amount, to, conv.Rate, ConvertRounding); err != nil {
		return Conversion{}, errs.Wrap(op, err)
	}
	return conv, nil
}
