// Package money holds exact amounts of money and the rules for reading,
// writing, adding, converting and rounding them.
//
// # Amounts
//
// An Amount is a signed int64 count of minor units (cents, yen, satoshi) and
// a Currency. Money is never a float: amounts enter as decimal strings or
// JSON numbers decoded with json.Decoder.UseNumber (Parse, ParsePositive,
// ParseNumber, Amount.UnmarshalJSON) and leave as decimal strings
// (Amount.Decimal, Amount.JSONNumber, Amount.MarshalJSON) or, for people, as
// Amount.Display. Parsing never rounds: an amount with more decimals than its
// currency allows is rejected with an errs.Invalid error that says so.
// Arithmetic (Add, Sub, Sum) is exact and fails with errs.Invalid on a
// currency mismatch or an overflow instead of wrapping around.
//
// Currencies are the ISO 4217 list (LookupCurrency, CurrencyByNumeric) and
// assets registered by the broker (RegisterAsset; BTC, ETH and USDT by
// default).
//
// # Rounding
//
// Only three things round: Convert and ConvertInverse (FX), Amount.MulRatio
// and Amount.PercentBps (fees and shares), and Rate.Inverse. Each computes
// the exact result with big-integer arithmetic and rounds exactly once, with
// a RoundingMode the caller must name; there is no default hidden inside the
// package.
//
// The house rule for callers:
//
//   - FX conversion rounds half to even (RoundHalfEven) unless the caller has
//     a reason to name another mode. Half-even has no bias across many
//     conversions, so neither the broker nor its customers drift ahead. The
//     broker's margin on FX is taken explicitly with Rate.WithSpread, never
//     by rounding.
//   - A fee rounds in whatever direction the caller decides and names.
//     Rounding a positive fee up (RoundUp) is in the broker's favour;
//     rounding it down (RoundDown) is in the customer's. The package makes
//     the choice visible at the call site and tests every mode.
//
// The modes mirror for negative amounts: RoundUp moves away from zero and
// RoundDown toward zero, so -0.125 USD with RoundHalfUp becomes -0.13.
package money
