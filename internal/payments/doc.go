// Package payments is the payment layer of OpenCashier: the payment
// methods a broker offers (from a configuration file), their limits and
// fees, FX conversion, the record of every payment at a provider with its
// status history and the provider's raw events, the webhook intake, and the
// status poll that catches webhooks that never come.
//
// The funding state machines (deposits, withdrawals) call it; it calls the
// providers through internal/psp. It never books money: it tells the owner
// of the money, through an Observer, inside the transaction that records a
// payment's new status.
//
// # Amounts
//
// Each payment has a currency (the method's) and an account currency.
// Gross, Fee and Net are in the payment currency; AccountAmount in the
// account's:
//
//   - deposit: Gross is what the customer pays. Fee = fixed + Gross ×
//     percent. Net = Gross − Fee if the client pays the fee, else Gross.
//     AccountAmount = Net converted into the account currency (the credit).
//   - withdrawal: AccountAmount is the debit. Gross = the debit converted
//     into the payout currency. Fee as above on Gross. Net = what the
//     provider pays out.
//
// Limits (min, max) apply to Gross in the payment currency.
//
// # Rounding
//
//   - Fees: the percentage part is rounded up (money.RoundUp, in the
//     broker's favour) to the currency's minor unit, then the fixed part is
//     added. 2.5 % of 10001 JPY is 250.025 → 251 JPY; of 10.001 KWD,
//     0.250025 → 0.251 KWD.
//   - FX: one rounding, half to even (money.RoundHalfEven), of the exact
//     product amount × rate, to the target's minor unit. The broker's
//     margin is the spread, applied to the rate (rate × (1 − bps/10000)),
//     never the rounding. A rate known only the other way round is
//     inverted first, half to even at 12 decimals, and that inverted rate
//     is the one recorded.
//
// # Statuses
//
//	created ──start──▶ pending ──▶ authorised ──▶ succeeded
//	   │                  │            │      ╲
//	   │                  ├────────────┴───────▶ declined | failed | expired
//	   │                  └──amount/currency differs──▶ review ──operator──▶ succeeded | declined | failed
//	   └──never reached the provider (poll)──▶ expired
//
// A payment only moves forward. Succeeded, declined, failed and expired are
// final; review is left only by an operator (ResolveReview). Provider
// events and status answers are stored verbatim and applied by the same
// rule, so a duplicate event changes nothing, an older one (delivered out
// of order) is recorded as stale and ignored, and one that contradicts a
// final status is recorded as a conflict and logged. (A snapshot is decided
// on the payment as this process last saw it, without a lock, and written
// only if the payment is still as seen; one that changes nothing in what
// was seen may be recorded as unchanged where the newer state would have
// called it stale.) A succeeded report
// whose amount or currency differs from what we asked for sends the
// payment to review instead of succeeded.
package payments
