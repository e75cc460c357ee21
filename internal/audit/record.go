// Package audit keeps OpenCashier's audit trail: an append-only, hash-chained
// list of every money movement, status change, staff action, setting change
// and token revocation. Each entry's hash covers its own fields and the hash
// of the entry before it, so an edited, removed or inserted entry breaks the
// chain and Verify finds it.
package audit

import (
	"context"

	"github.com/opencashier/cashier/internal/sqlstore"
)

// Record is what a caller asks to write to the trail. Actor says who acted
// ("staff:<id>", "user:<id>", "operator:<name>" for the command line,
// "broker:<api>", "system"); Action is a dotted verb ("withdrawal.approved",
// "ledger.transfer", "setting.changed", "token.revoked"); Subject names what
// it acted on ("wd_…", "user:usr_…", "setting:auto-approve"); Detail holds
// the facts worth keeping, as strings (amounts as exact decimals).
type Record struct {
	Actor   string
	Action  string
	Subject string
	Detail  map[string]string
}

// Recorder appends records to the trail inside the caller's transaction,
// so a change and its audit record commit together or not at all.
// Implementations return errs.Invalid for a record without an actor or an
// action, and a wrapped database error otherwise.
type Recorder interface {
	RecordTx(ctx context.Context, tx *sqlstore.Tx, r Record) error
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, tx *sqlstore.Tx, r Record) error

// RecordTx calls f.
func (f RecorderFunc) RecordTx(ctx context.Context, tx *sqlstore.Tx, r Record) error {
	return f(ctx, tx, r)
}

// Discard is a Recorder that keeps nothing, for tests and tools that run
// without a trail.
var Discard Recorder = RecorderFunc(func(context.Context, *sqlstore.Tx, Record) error { return nil })
