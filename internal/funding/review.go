package funding

import (
	"context"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// HeldDeposits lists the paid deposits a compliance rule holds for review,
// oldest first, at most limit (default 50, at most 500). It returns a
// wrapped database error if the query fails.
func (s *Service) HeldDeposits(ctx context.Context, limit int) ([]Deposit, error) {
	ds, err := listDeposits(ctx, s.db, "status = ? AND flag = ?", clampLimit(limit), string(DepositPaid), FlagReviewHold)
	if err != nil {
		return nil, errs.Wrap("funding.HeldDeposits", err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds, nil
}

// ReleaseDeposit lets an operator release a paid deposit that a compliance
// rule held: it is credited to the trading account like any other (the
// credit hold is booked and the DEPOSIT push enqueued). It returns
// errs.Invalid without an operator or a note, errs.NotFound for an unknown
// id and errs.Conflict when the deposit is not held.
func (s *Service) ReleaseDeposit(ctx context.Context, id, by, note string) (Deposit, error) {
	const op = "funding.ReleaseDeposit"
	if strings.TrimSpace(by) == "" || strings.TrimSpace(note) == "" {
		return Deposit{}, errs.E(errs.Invalid, op, "the operator and a note are required")
	}
	var d Deposit
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if d, err = s.heldDeposit(ctx, tx, id); err != nil {
			return err
		}
		ch := chart{s.cfg.Platform}
		cur := d.Credit.Currency()
		ids, err := s.ensure(ctx, tx, ch.customer(d.Login, cur), ch.platformAccount(d.Login, cur))
		if err != nil {
			return err
		}
		if _, err := s.ledger.PostTx(ctx, tx, creditHold(d, ids[0], ids[1], d.Credit)); err != nil {
			return err
		}
		d.Flag = ""
		return s.startCredit(ctx, tx, &d, StatusChange{Reason: "released", Actor: by, Detail: note})
	})
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	return s.depositView(ctx, d)
}

// RejectDeposit lets an operator reject a paid deposit that a compliance
// rule held: its money goes to suspense (Dr customer / Cr suspense) and the
// deposit is flagged FlagRefundDue until the payment is refunded at the
// provider and the flag cleared (ClearFlag). The trader is told the deposit
// was not accepted and will be refunded. It returns errs.Invalid without an
// operator or a reason, errs.NotFound for an unknown id and errs.Conflict
// when the deposit is not held.
func (s *Service) RejectDeposit(ctx context.Context, id, by, reason string) (Deposit, error) {
	const op = "funding.RejectDeposit"
	if strings.TrimSpace(by) == "" || strings.TrimSpace(reason) == "" {
		return Deposit{}, errs.E(errs.Invalid, op, "the operator and a reason are required")
	}
	var d Deposit
	err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if d, err = s.heldDeposit(ctx, tx, id); err != nil {
			return err
		}
		cur := d.Credit.Currency()
		ids, err := s.ensure(ctx, tx, chart{s.cfg.Platform}.customer(d.Login, cur), suspense(cur))
		if err != nil {
			return err
		}
		if _, err := s.ledger.PostTx(ctx, tx, ledger.Transfer{ID: d.ID + ":rejected", Debit: ids[0], Credit: ids[1], Amount: d.Credit,
			Code: "deposit.rejected", Metadata: "deposit " + d.ID + " rejected by " + by}); err != nil {
			return err
		}
		body := payments.PaymentFailed("Your deposit could not be accepted. The money will be refunded to where it came from; our team will contact you.", false)
		body.Reason = "rejected"
		d.Failure, d.Flag = &body, FlagRefundDue
		return s.moveDeposit(ctx, tx, &d, DepositRejected, StatusChange{Reason: "rejected", Actor: by, Detail: reason})
	})
	if err != nil {
		return Deposit{}, errs.Wrap(op, err)
	}
	return s.depositView(ctx, d)
}

func (s *Service) heldDeposit(ctx context.Context, tx *sqlstore.Tx, id string) (Deposit, error) {
	d, err := loadDeposit(ctx, tx, true, "id = ?", id)
	if err != nil {
		return Deposit{}, err
	}
	if d.State != DepositPaid || d.Flag != FlagReviewHold {
		return Deposit{}, errs.Ef(errs.Conflict, "funding.heldDeposit", "deposit %s is %s and not held for review", d.ID, d.State)
	}
	return d, nil
}
