package reconcile

import (
	"strconv"
	"time"

	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/push"
)

// finding is one difference before it is recorded as a case.
type finding struct {
	Kind     Kind
	Subject  string
	Ref      string
	Expected string
	Actual   string
	Evidence map[string]any
}

// key identifies the difference a finding is about; an open case has one
// finding key.
func (f finding) key() string { return string(f.Kind) + "\x00" + f.Subject + "\x00" + f.Ref }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return itoa(int64(n)) + " " + word + "s"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// signed is a change's effect on the balance: positive for the deposit
// types, negative for the withdrawal types.
func signed(t platform.ChangeType, a money.Amount) money.Amount {
	if t == platform.Withdraw || t == platform.WithdrawBonus {
		return a.Neg()
	}
	return a
}

func pushEvidence(p push.Push) map[string]any {
	e := map[string]any{
		"id": p.ID, "owner": p.Owner, "ownerId": p.OwnerID, "login": p.Change.Login, "type": string(p.Change.Type),
		"amount": p.Change.Amount.String(), "state": string(p.State), "settledAt": stamp(p.UpdatedAt),
	}
	if p.BalanceHistoryID != 0 {
		e["balanceHistoryId"] = p.BalanceHistoryID
	}
	if p.ResolvedBy != "" {
		e["resolvedBy"] = p.ResolvedBy
	}
	return e
}

func changeEvidence(c PlatformChange) map[string]any {
	e := map[string]any{"externalId": c.ExternalID, "type": string(c.Type), "delta": c.Delta.String(), "at": stamp(c.At)}
	if c.HistoryID != 0 {
		e["balanceHistoryId"] = c.HistoryID
	}
	if c.Balance.Currency().Code != "" {
		e["balanceAfter"] = c.Balance.String()
	}
	return e
}

func changesEvidence(cs []PlatformChange) []map[string]any {
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		out[i] = changeEvidence(c)
	}
	return out
}

func describeChange(c PlatformChange) string {
	return string(c.Type) + " " + c.Delta.Abs().String()
}

func describePush(p push.Push) string {
	return string(p.Change.Type) + " " + p.Change.Amount.String()
}

func paymentEvidence(p payments.Payment) map[string]any {
	e := map[string]any{
		"id": p.ID, "direction": string(p.Direction), "provider": p.Provider, "providerRef": p.ProviderRef,
		"status": string(p.Status), "amount": p.ProviderAmount().String(), "account": p.AccountID,
		"createdAt": stamp(p.CreatedAt), "updatedAt": stamp(p.UpdatedAt),
	}
	if p.Received.Currency().Code != "" {
		e["received"] = p.Received.String()
	}
	if p.Reason != "" {
		e["reason"] = p.Reason
	}
	if !p.FinalAt.IsZero() {
		e["finalAt"] = stamp(p.FinalAt)
	}
	return e
}

func lineEvidence(l psp.ReportLine) map[string]any {
	e := map[string]any{
		"id": l.ID, "providerRef": l.ProviderRef, "kind": string(l.Kind), "status": string(l.Status),
		"amount": l.Amount.String(), "at": stamp(l.At),
	}
	if l.Fee.Currency().Code != "" {
		e["fee"] = l.Fee.String()
	}
	return e
}

func describeLine(l psp.ReportLine) string {
	return string(l.Kind) + " " + string(l.Status) + " " + l.Amount.String()
}
