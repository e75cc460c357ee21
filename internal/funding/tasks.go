package funding

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// TaskKind says what an operator has to do.
type TaskKind string

// The task kinds.
const (
	// TaskPushInDoubt: a balance push's outcome is unknown and the platform
	// offers no look-up; decide it with push.Service.Resolve (the push
	// operator command) after checking the trading account.
	TaskPushInDoubt TaskKind = "push_in_doubt"
	// TaskApproval: a withdrawal waits for ApproveWithdrawal or
	// RejectWithdrawal.
	TaskApproval TaskKind = "withdrawal_approval"
	// TaskFlagged: a deposit or withdrawal is flagged (see the Flag
	// constants); settle it by hand, then ClearFlag.
	TaskFlagged TaskKind = "flagged"
)

// Task is one thing an operator has to look at.
type Task struct {
	Kind         TaskKind
	DepositID    string // one of DepositID and WithdrawalID is set
	WithdrawalID string
	PushID       string // for TaskPushInDoubt
	Flag         string // for TaskFlagged
	Login        int64
	Amount       money.Amount
	Since        time.Time
}

// Tasks lists what operators have to do, oldest first: pushes of deposits
// and withdrawals that are in doubt, withdrawals awaiting approval, and
// flagged deposits and withdrawals. It returns a wrapped database error if a
// query fails.
func (s *Service) Tasks(ctx context.Context) ([]Task, error) {
	const op = "funding.Tasks"
	var out []Task
	doubtful, err := s.push.List(ctx, push.InDoubt, 500)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for _, p := range doubtful {
		t := Task{Kind: TaskPushInDoubt, PushID: p.ID, Login: p.Change.Login, Amount: p.Change.Amount, Since: p.UpdatedAt}
		switch p.Owner {
		case OwnerDeposit:
			t.DepositID = p.OwnerID
		case OwnerWithdrawal:
			t.WithdrawalID = p.OwnerID
		default:
			continue
		}
		out = append(out, t)
	}
	approvals, err := s.PendingApprovals(ctx, 500)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for _, w := range approvals {
		out = append(out, Task{Kind: TaskApproval, WithdrawalID: w.ID, Login: w.Login, Amount: w.Amount, Since: w.UpdatedAt})
	}
	ds, err := listDeposits(ctx, s.db, "flag <> ''", 500)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for _, d := range ds {
		out = append(out, Task{Kind: TaskFlagged, DepositID: d.ID, Flag: d.Flag, Login: d.Login, Amount: d.Credit, Since: d.UpdatedAt})
	}
	ws, err := listWithdrawals(ctx, s.db, "flag <> ''", 500)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	for _, w := range ws {
		out = append(out, Task{Kind: TaskFlagged, WithdrawalID: w.ID, Flag: w.Flag, Login: w.Login, Amount: w.Amount, Since: w.UpdatedAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out, nil
}

// ClearFlag records that an operator has dealt with a flagged deposit or
// withdrawal (by id) and takes it off the task list. The money an operator
// moves meanwhile (out of suspense, a refund) is booked by whoever moves it.
// It returns errs.Invalid without an operator or a note, errs.NotFound for
// an unknown id and errs.Conflict when it is not flagged.
func (s *Service) ClearFlag(ctx context.Context, id, by, note string) error {
	const op = "funding.ClearFlag"
	if strings.TrimSpace(by) == "" || strings.TrimSpace(note) == "" {
		return errs.E(errs.Invalid, op, "the operator and a note are required")
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		table, status := "funding_deposits", ""
		var (
			flag string
			emit func(StatusChange) error
		)
		if strings.HasPrefix(id, "wd_") {
			w, err := loadWithdrawal(ctx, tx, true, "id = ?", id)
			if err != nil {
				return errs.Wrap(op, err)
			}
			table, status, flag = "funding_withdrawals", string(w.State), w.Flag
			w.Flag = ""
			emit = func(c StatusChange) error { return s.emitWithdrawal(ctx, tx, w, c) }
		} else {
			d, err := loadDeposit(ctx, tx, true, "id = ?", id)
			if err != nil {
				return errs.Wrap(op, err)
			}
			status, flag = string(d.State), d.Flag
			d.Flag = ""
			emit = func(c StatusChange) error { return s.emitDeposit(ctx, tx, d, c) }
		}
		switch flag {
		case "":
			return errs.E(errs.Conflict, op, "it is not flagged")
		case FlagReviewHold:
			return errs.E(errs.Conflict, op, "a deposit held for review is released or rejected, not cleared")
		}
		now := s.clock.Now()
		if _, err := tx.Exec(ctx, "UPDATE "+table+" SET flag = '', updated_at = ? WHERE id = ?", sqlstore.Micros(now), id); err != nil {
			return errs.Wrap(op, err)
		}
		c := StatusChange{From: status, To: status, Reason: "flag_cleared:" + flag, Actor: by, Detail: note, At: now}
		if err := addHistory(ctx, tx, id, c); err != nil {
			return err
		}
		return emit(c)
	})
}
