package backoffice

import (
	"context"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
)

// fundingPort adapts *funding.Service to Funding.
type fundingPort struct{ f *funding.Service }

// FundingOf adapts a funding service to the Funding port: the tasks come
// with their deposit's or withdrawal's details (user, method, destination,
// hold rule, four-eyes state).
func FundingOf(f *funding.Service) Funding { return fundingPort{f: f} }

// Tasks returns funding's tasks with the details of each deposit or
// withdrawal. It returns funding's errors.
func (p fundingPort) Tasks(ctx context.Context) ([]Task, error) {
	const op = "backoffice.Funding.Tasks"
	ts, err := p.f.Tasks(ctx)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	fourEyes := p.f.Config().FourEyesAbove
	out := make([]Task, 0, len(ts))
	for _, t := range ts {
		task := Task{Kind: string(t.Kind), PushID: t.PushID, Flag: t.Flag, Login: t.Login, Amount: t.Amount, Since: t.Since}
		switch {
		case t.WithdrawalID != "":
			w, err := p.f.GetWithdrawal(ctx, t.WithdrawalID)
			if err != nil {
				return nil, errs.Wrap(op, err)
			}
			task.ID, task.PaymentID, task.UserID, task.MethodID, task.Destination = w.ID, w.PaymentID, w.UserID, w.MethodID, w.Destination
			task.Status, task.CreatedAt, task.HoldRule, task.HoldNote = string(w.Status), w.CreatedAt, w.HoldRule, w.HoldNote
			task.FirstApprovedBy, task.FirstApprovedAt = w.FirstApprovedBy, w.FirstApprovedAt
			if limit, ok := fourEyes[w.Amount.Currency().Code]; ok && w.Amount.Minor() > limit.Minor() {
				task.FourEyes = true
			}
		case t.DepositID != "":
			d, err := p.f.GetDeposit(ctx, t.DepositID)
			if err != nil {
				return nil, errs.Wrap(op, err)
			}
			task.ID, task.PaymentID, task.UserID, task.MethodID = d.ID, d.PaymentID, d.UserID, d.MethodID
			task.Status, task.CreatedAt, task.HoldRule, task.HoldNote = string(d.Status), d.CreatedAt, d.HoldRule, d.HoldNote
		}
		out = append(out, task)
	}
	return out, nil
}

func withdrawalDecision(w funding.Withdrawal) Decision {
	return Decision{ID: w.ID, Status: string(w.Status), FirstApprovedBy: w.FirstApprovedBy, NeedsSecondApproval: w.NeedsSecondApproval}
}

// ApproveWithdrawal approves, or gives the first of two approvals. It
// returns the errors of funding.ApproveWithdrawal.
func (p fundingPort) ApproveWithdrawal(ctx context.Context, id, by string) (Decision, error) {
	w, err := p.f.ApproveWithdrawal(ctx, id, by)
	if err != nil {
		return Decision{}, err
	}
	return withdrawalDecision(w), nil
}

// RejectWithdrawal rejects. It returns the errors of
// funding.RejectWithdrawal.
func (p fundingPort) RejectWithdrawal(ctx context.Context, id, by, reason string) (Decision, error) {
	w, err := p.f.RejectWithdrawal(ctx, id, by, strings.TrimSpace(reason))
	if err != nil {
		return Decision{}, err
	}
	return withdrawalDecision(w), nil
}

// ReleaseDeposit releases a held deposit. It returns the errors of
// funding.ReleaseDeposit.
func (p fundingPort) ReleaseDeposit(ctx context.Context, id, by, note string) (Decision, error) {
	d, err := p.f.ReleaseDeposit(ctx, id, by, note)
	if err != nil {
		return Decision{}, err
	}
	return Decision{ID: d.ID, Status: string(d.Status)}, nil
}

// RejectDeposit rejects a held deposit. It returns the errors of
// funding.RejectDeposit.
func (p fundingPort) RejectDeposit(ctx context.Context, id, by, reason string) (Decision, error) {
	d, err := p.f.RejectDeposit(ctx, id, by, reason)
	if err != nil {
		return Decision{}, err
	}
	return Decision{ID: d.ID, Status: string(d.Status)}, nil
}

// ClearFlag clears a flag. It returns the errors of funding.ClearFlag.
func (p fundingPort) ClearFlag(ctx context.Context, id, by, note string) error {
	return p.f.ClearFlag(ctx, id, by, note)
}
