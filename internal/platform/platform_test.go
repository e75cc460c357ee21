package platform_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
)

func TestBalanceChangeValidate(t *testing.T) {
	usd := money.MustCurrency("USD")
	good := platform.BalanceChange{Login: 8673590, Type: platform.Deposit, Amount: money.New(12345, usd), ExternalID: "dep_1"}
	tests := []struct {
		name   string
		change func(c *platform.BalanceChange)
		valid  bool
	}{
		{"a deposit", func(*platform.BalanceChange) {}, true},
		{"a bonus withdrawal", func(c *platform.BalanceChange) { c.Type = platform.WithdrawBonus }, true},
		{"zero login", func(c *platform.BalanceChange) { c.Login = 0 }, false},
		{"unknown type", func(c *platform.BalanceChange) { c.Type = "deposit" }, false},
		{"zero amount", func(c *platform.BalanceChange) { c.Amount = money.Zero(usd) }, false},
		{"negative amount", func(c *platform.BalanceChange) { c.Amount = money.New(-1, usd) }, false},
		{"amount without currency", func(c *platform.BalanceChange) { c.Amount = money.Amount{} }, false},
		{"no external id", func(c *platform.BalanceChange) { c.ExternalID = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if tt.valid != (err == nil) {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.valid)
			}
			if err != nil && errs.CodeOf(err) != errs.Invalid {
				t.Errorf("code = %s, want %s", errs.CodeOf(err), errs.Invalid)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	rejected := fmt.Errorf("push dep_1: %w", &platform.RejectedError{Code: "NOT_ENOUGH_MONEY", Message: "not enough money", Status: 409})
	ambiguous := fmt.Errorf("push dep_1: %w", &platform.AmbiguousError{Cause: context.DeadlineExceeded, Evidence: "POST changebalance: no answer after 5s"})

	if !platform.IsRejected(rejected) || platform.IsAmbiguous(rejected) {
		t.Errorf("rejected error classified as rejected=%v ambiguous=%v", platform.IsRejected(rejected), platform.IsAmbiguous(rejected))
	}
	if platform.IsRejected(ambiguous) || !platform.IsAmbiguous(ambiguous) {
		t.Errorf("ambiguous error classified as rejected=%v ambiguous=%v", platform.IsRejected(ambiguous), platform.IsAmbiguous(ambiguous))
	}
	if got := errs.CodeOf(rejected); got != errs.Insufficient {
		t.Errorf("CodeOf(NOT_ENOUGH_MONEY) = %s, want %s", got, errs.Insufficient)
	}
	if got := errs.CodeOf(ambiguous); got != errs.Unavailable {
		t.Errorf("CodeOf(ambiguous) = %s, want %s", got, errs.Unavailable)
	}
	if !errors.Is(ambiguous, context.DeadlineExceeded) {
		t.Error("the cause of an ambiguous error is not reachable with errors.Is")
	}
	if a, ok := platform.AsAmbiguous(ambiguous); !ok || a.Evidence == "" {
		t.Errorf("AsAmbiguous = %v, %v", a, ok)
	}
}

func TestCodeForPlatform(t *testing.T) {
	tests := []struct {
		code   string
		status int
		want   errs.Code
	}{
		{"NOT_ENOUGH_MONEY", 409, errs.Insufficient},
		{"TRADER_NOT_FOUND", 404, errs.NotFound},
		{"CHANGE_BALANCE_BAD_AMOUNT", 400, errs.Invalid},
		{"INVALID_REQUEST", 400, errs.Invalid},
		{"INVALID_REQUEST", 409, errs.Conflict},
		{"NOT_ENOUGH_RIGHTS", 403, errs.Forbidden},
		{"REQUEST_FREQUENCY_EXCEEDED", 429, errs.RateLimited},
		{"", 401, errs.Unauthorized},
		{"", 404, errs.NotFound},
		{"", 503, errs.Unavailable},
		{"SOMETHING_NEW", 400, errs.Invalid},
		{"", 200, errs.Internal},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d", tt.code, tt.status), func(t *testing.T) {
			if got := platform.CodeForPlatform(tt.code, tt.status); got != tt.want {
				t.Errorf("CodeForPlatform(%q, %d) = %s, want %s", tt.code, tt.status, got, tt.want)
			}
		})
	}
}
