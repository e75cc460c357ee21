// Package securitytest holds the cashier's security tests: the whole
// system assembled in one process the way cmd/cashier's serve wires it
// (identity with the cTrader endpoints and /api/validate-token, payments
// with the sandbox provider and its webhook intake, funding with the
// cTrader simulator, the identity screens and the cashier screens) on
// SQLite, attacked over HTTP on 127.0.0.1: token replay and expiry, brute
// force, cross-site request forgery, cross-site scripting, SQL injection,
// access to another user's data, webhook forgery, open redirects and
// security headers. The package has no code of its own; docs/security.md
// describes what each test shows.
package securitytest
