// Package sandbox is OpenCashier's built-in payment provider for testing
// and demonstrations. It behaves like a real provider: hosted card pages
// with declines and a 3-D Secure step, bank transfers that wait for the
// money, e-wallet approval, crypto addresses with confirmations, payouts
// that succeed, are rejected or take time, and webhooks signed with
// HMAC-SHA256 that are retried until acknowledged. The events of one
// change (a card authorised and captured) are posted in order by one
// delivery, each as its own webhook; one that is not acknowledged holds
// back the ones after it. No real money moves.
//
// It has two halves, as with any provider:
//
//   - Server is the provider itself. The cashier serves it under Prefix
//     (/sandbox): a JSON API with a bearer key, the hosted checkout pages,
//     and a control page where a tester makes money "arrive", adds crypto
//     confirmations, completes delayed outcomes, resends webhooks and turns
//     on duplicate, out-of-order or dropped delivery. Its state lives in
//     the sandbox_* tables (Schema). Delays and expiry are jobs scheduled
//     on the injected clock; nothing sleeps.
//   - Client is the cashier's adapter: a psp.Provider that talks to the
//     Server only over HTTP, so it is also the model for writing an adapter
//     for a real provider.
//
// The hosted card page receives the card number, picks the test card it
// names, and forgets it: only the brand and last four digits are stored,
// in the sandbox's own tables, never in the cashier's, and the number is
// never logged or written back into a page. Numbers that are not test cards
// are refused. With a real provider the hosted page is on the provider's
// domain and the number never reaches the broker at all.
//
// docs/payments.md lists the test cards, payout destinations and controls.
package sandbox
