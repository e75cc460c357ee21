package main

import (
	"context"
	"strconv"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The audit trail's adapters: every money movement the ledger books and
// every status change of a deposit or withdrawal become audit records in
// the same transaction (docs/audit.md lists the rest).

// ledgerTrail records each transfer the ledger books, in its transaction.
func ledgerTrail(rec audit.Recorder) ledger.Observer {
	return func(ctx context.Context, tx *sqlstore.Tx, booked []ledger.Transfer) error {
		for _, t := range booked {
			d := map[string]string{"action": string(t.Action), "code": t.Code}
			if t.Debit != "" {
				d["debit"], d["credit"] = t.Debit, t.Credit
			}
			if t.Amount.Currency().Code != "" {
				d["amount"], d["currency"] = t.Amount.Decimal(), t.Amount.Currency().Code
			}
			if t.PendingID != "" {
				d["pending"] = t.PendingID
			}
			if err := rec.RecordTx(ctx, tx, audit.Record{Actor: "system", Action: "ledger.transfer", Subject: t.ID, Detail: d}); err != nil {
				return err
			}
		}
		return nil
	}
}

// fundingTrail records each status change of a deposit or withdrawal, with
// who made it, in its transaction.
func fundingTrail(rec audit.Recorder) funding.Hook {
	return func(ctx context.Context, tx *sqlstore.Tx, e funding.Event) error {
		d := map[string]string{
			"from": e.From, "to": e.To, "user": e.UserID, "login": strconv.FormatInt(e.Login, 10), "method": e.MethodID,
			"amount": e.Amount.Decimal(), "currency": e.Amount.Currency().Code,
		}
		for k, v := range map[string]string{"reason": e.Reason, "flag": e.Flag, "destination": e.Destination} {
			if v != "" {
				d[k] = v
			}
		}
		return rec.RecordTx(ctx, tx, audit.Record{Actor: e.Actor, Action: e.Kind + ".status", Subject: e.ID, Detail: d})
	}
}
