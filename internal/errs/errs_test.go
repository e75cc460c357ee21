package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeAndMessageSurviveWrapping(t *testing.T) {
	base := E(Insufficient, "ledger.Post", "Insufficient funds.")
	tests := []struct {
		name     string
		err      error
		wantCode Code
		wantMsg  string
	}{
		{"plain", base, Insufficient, "Insufficient funds."},
		{"wrapped by Wrap", Wrap("funding.Withdraw", base), Insufficient, "Insufficient funds."},
		{"wrapped by fmt", fmt.Errorf("outer: %w", Wrap("x", base)), Insufficient, "Insufficient funds."},
		{"foreign error", errors.New("disk on fire"), Internal, "An internal error occurred."},
		{"nil", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CodeOf(tc.err); got != tc.wantCode {
				t.Errorf("CodeOf = %q, want %q", got, tc.wantCode)
			}
			if got := MessageOf(tc.err); got != tc.wantMsg {
				t.Errorf("MessageOf = %q, want %q", got, tc.wantMsg)
			}
		})
	}
}

func TestErrorTextNamesTheOperation(t *testing.T) {
	err := Wrap("funding.Deposit", E(NotFound, "ledger.Account", "account not found"))
	want := "funding.Deposit: ledger.Account: account not found"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if Wrap("op", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}
