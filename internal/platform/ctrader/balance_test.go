package ctrader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

func TestChangeBalanceApplies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		change      func(t *testing.T) platform.BalanceChange
		wantBalance string // of the account after the change
		wantBonus   string
		wantID      bool // a balanceHistoryId comes back
	}{
		{"deposit USD", func(t *testing.T) platform.BalanceChange {
			return deposit(loginUSD, amount(t, "123.45", usd), "dep_1")
		}, "1123.45", "0.00", true},
		{"withdraw USD", func(t *testing.T) platform.BalanceChange {
			c := deposit(loginUSD, amount(t, "0.01", usd), "wd_1")
			c.Type = platform.Withdraw
			return c
		}, "999.99", "0.00", true},
		{"deposit JPY (0 digits)", func(t *testing.T) platform.BalanceChange {
			return deposit(loginJPY, amount(t, "1", jpy), "dep_jpy")
		}, "150001", "0", true},
		{"deposit one satoshi (8 digits)", func(t *testing.T) platform.BalanceChange {
			return deposit(loginBTC, amount(t, "0.00000001", btc), "dep_btc")
		}, "0.05000001", "0.00000000", true},
		{"non-withdrawable bonus in", func(t *testing.T) platform.BalanceChange {
			c := deposit(loginUSD, amount(t, "50.00", usd), "bonus_1")
			c.Type = platform.DepositBonus
			return c
		}, "1000.00", "50.00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ch := tt.change(t)
			got, err := e.client.ChangeBalance(ctx, ch)
			if err != nil {
				t.Fatalf("ChangeBalance: %v", err)
			}
			if (got.BalanceHistoryID != 0) != tt.wantID {
				t.Errorf("BalanceHistoryID = %d, want an id: %v", got.BalanceHistoryID, tt.wantID)
			}
			tr := must(e.sim.Trader(ch.Login))(t)
			if tr.Balance.Decimal() != tt.wantBalance || tr.NonWithdrawableBonus.Decimal() != tt.wantBonus {
				t.Errorf("balance %s bonus %s, want %s and %s", tr.Balance.Decimal(), tr.NonWithdrawableBonus.Decimal(), tt.wantBalance, tt.wantBonus)
			}
			found, ok, err := e.client.FindChange(ctx, ch.Login, ch.ExternalID)
			if err != nil || !ok || found != got {
				t.Errorf("FindChange = %v, %v, %v; want %v, true", found, ok, err, got)
			}
		})
	}
}

func TestBonusWithdrawalMovesOnlyTheBonus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := deposit(loginUSD, amount(t, "80.00", usd), "b_in")
	in.Type = platform.DepositBonus
	out := deposit(loginUSD, amount(t, "30.00", usd), "b_out")
	out.Type = platform.WithdrawBonus
	too := deposit(loginUSD, amount(t, "50.01", usd), "b_too_much")
	too.Type = platform.WithdrawBonus
	for _, c := range []platform.BalanceChange{in, out} {
		if _, err := e.client.ChangeBalance(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.ExternalID, err)
		}
	}
	_, err := e.client.ChangeBalance(ctx, too)
	if r, ok := platform.AsRejected(err); !ok || r.Code != "NOT_ENOUGH_MONEY" {
		t.Errorf("removing more bonus than there is: %v, want NOT_ENOUGH_MONEY", err)
	}
	tr := must(e.client.GetTrader(ctx, loginUSD))(t)
	if tr.Balance.Decimal() != "1000.00" || tr.NonWithdrawableBonus.Decimal() != "50.00" || tr.Equity.Decimal() != "1050.00" {
		t.Errorf("balance %s, bonus %s, equity %s; want 1000.00, 50.00, 1050.00", tr.Balance.Decimal(), tr.NonWithdrawableBonus.Decimal(), tr.Equity.Decimal())
	}
}

func TestChangeBalanceRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		opts  []option
		setup func(t *testing.T, e *env)
		// change returns the change to send; the account is loginUSD unless it says otherwise.
		change func(t *testing.T) platform.BalanceChange
		want   platform.RejectedError
	}{
		{
			name:   "withdrawal beyond the balance",
			change: func(t *testing.T) platform.BalanceChange { return withdraw(t, loginUSD, "1000.01") },
			want:   platform.RejectedError{Code: "NOT_ENOUGH_MONEY", Status: 409},
		},
		{
			name: "withdrawal beyond cash equity with open positions",
			setup: func(t *testing.T, e *env) {
				must(e.sim.SetPositions(loginUSD, "-300.00", "500.00"))(t) // cash equity 700, free margin 200
			},
			change: func(t *testing.T) platform.BalanceChange { return withdraw(t, loginUSD, "200.01") },
			want:   platform.RejectedError{Code: "NOT_ENOUGH_MONEY", Status: 409},
		},
		{
			name:   "unknown trader",
			change: func(t *testing.T) platform.BalanceChange { return deposit(4242, amount(t, "1.00", usd), "x") },
			want:   platform.RejectedError{Code: "TRADER_NOT_FOUND", Status: 404},
		},
		{
			name: "amount beyond what the platform accepts",
			change: func(t *testing.T) platform.BalanceChange {
				return deposit(loginUSD, money.New(100_000_000_000_000_001, usd), "huge")
			},
			want: platform.RejectedError{Code: "CHANGE_BALANCE_BAD_AMOUNT", Status: 400},
		},
		{
			name:   "currency of another account",
			change: func(t *testing.T) platform.BalanceChange { return deposit(loginUSD, amount(t, "1.00", eur), "eur") },
			want:   platform.RejectedError{Code: "CURRENCY_MISMATCH"},
		},
		{
			name:   "zero amount refused before sending",
			change: func(t *testing.T) platform.BalanceChange { return deposit(loginUSD, money.Zero(usd), "zero") },
			want:   platform.RejectedError{Code: "INVALID_REQUEST"},
		},
		{
			name:   "read-only manager",
			opts:   []option{func(_ *ctradersim.Config, c *ctrader.Config) { c.ManagerLogin = managerRO }},
			change: func(t *testing.T) platform.BalanceChange { return deposit(loginUSD, amount(t, "1.00", usd), "ro") },
			want:   platform.RejectedError{Code: "NOT_ENOUGH_RIGHTS", Status: 403, Retryable: true},
		},
		{
			name: "hourly write limit",
			opts: []option{func(s *ctradersim.Config, _ *ctrader.Config) { s.WriteLimitPerHour = 1 }},
			setup: func(t *testing.T, e *env) {
				if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "first")); err != nil {
					t.Fatal(err)
				}
			},
			change: func(t *testing.T) platform.BalanceChange { return deposit(loginUSD, amount(t, "1.00", usd), "second") },
			want:   platform.RejectedError{Code: "REQUEST_FREQUENCY_EXCEEDED", Status: 429, Retryable: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			ch := tt.change(t)
			before := e.sim.Traders()
			_, err := e.client.ChangeBalance(ctx, ch)
			r, ok := platform.AsRejected(err)
			if !ok {
				t.Fatalf("ChangeBalance error = %v, want a rejection", err)
			}
			if diff := cmp.Diff(tt.want, *r, cmpopts.IgnoreFields(platform.RejectedError{}, "Message")); diff != "" {
				t.Errorf("rejection (-want +got):\n%s", diff)
			}
			if r.Message == "" {
				t.Error("rejection has no message")
			}
			if diff := cmp.Diff(before, e.sim.Traders()); diff != "" {
				t.Errorf("a rejected change moved money (-before +after):\n%s", diff)
			}
		})
	}
}

func TestWriteLimitResetsNextHour(t *testing.T) {
	e := newEnv(t, func(s *ctradersim.Config, _ *ctrader.Config) { s.WriteLimitPerHour = 1 })
	ctx := context.Background()
	for i, wantOK := range []bool{true, false} {
		_, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), fmt.Sprint("w", i)))
		if (err == nil) != wantOK {
			t.Fatalf("write %d: err = %v", i, err)
		}
	}
	e.clk.Advance(time.Hour)
	if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "next-hour")); err != nil {
		t.Fatalf("first write of the next hour: %v", err)
	}
}

func withdraw(t *testing.T, login int64, s string) platform.BalanceChange {
	t.Helper()
	return platform.BalanceChange{Login: login, Type: platform.Withdraw, Amount: amount(t, s, usd), ExternalID: "wd_" + s}
}

func TestPreciseAmountIsExact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i, s := range []string{"0.10", "0.20"} { // 0.1 + 0.2 is not 0.3 in float64
		if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD2, amount(t, s, usd), fmt.Sprint("f", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.balance(t, loginUSD2); got != "0.30" {
		t.Errorf("0.10 + 0.20 = %s, want 0.30", got)
	}
	for i, s := range []string{"0.12345678", "0.00000001", "20999999.99999999"} {
		if _, err := e.client.ChangeBalance(ctx, deposit(loginBTC, amount(t, s, btc), fmt.Sprint("b", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.balance(t, loginBTC); got != "21000000.17345678" {
		t.Errorf("BTC balance = %s, want 21000000.17345678", got)
	}
	h := must(e.client.BalanceHistory(ctx, loginBTC, "b0"))(t)
	if len(h) != 1 || h[0].Delta.Decimal() != "0.12345678" || h[0].Type != platform.Deposit {
		t.Errorf("history of b0 = %+v", h)
	}
}

func TestAccountWithdrawable(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		pnl, margin   string
		wantEquity    string
		wantFree      string
		wantWithdrawn string
	}{
		{"no positions", "0", "0", "1000.00", "1000.00", "1000.00"},
		{"a loss caps it at cash equity", "-300.00", "0", "700.00", "700.00", "700.00"},
		{"margin caps it at free margin", "-300.00", "500.00", "700.00", "200.00", "200.00"},
		{"a profit does not raise it above the balance", "250.00", "0", "1250.00", "1250.00", "1000.00"},
		{"a margin call leaves nothing", "-900.00", "500.00", "100.00", "-400.00", "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			must(e.sim.SetPositions(loginUSD, tt.pnl, tt.margin))(t)
			a := must(e.client.Account(ctx, loginUSD))(t)
			got := []string{a.Balance.Decimal(), a.Equity.Decimal(), a.FreeMargin.Decimal(), a.Withdrawable.Decimal(), a.Currency.Code}
			want := []string{"1000.00", tt.wantEquity, tt.wantFree, tt.wantWithdrawn, "USD"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("balance, equity, free margin, withdrawable, currency (-want +got):\n%s", diff)
			}
		})
	}
	e := newEnv(t)
	if _, err := e.client.Account(ctx, 4242); !errs.Is(err, errs.NotFound) {
		t.Errorf("Account(unknown) = %v, want ENOTFOUND", err)
	}
}

func TestManagerTokenRefresh(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must(e.client.GetTrader(ctx, loginUSD))(t)
	e.sim.ExpireManagerTokens() // as a manager password change does
	if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "5.00", usd), "after-expiry")); err != nil {
		t.Fatalf("ChangeBalance after the token expired: %v", err)
	}
	if got := e.sim.Stats().Endpoints[ctradersim.EndpointToken].Calls; got != 2 {
		t.Errorf("token requests = %d, want 2 (login, one re-login)", got)
	}
	if got := e.applied(t, loginUSD, "after-expiry"); got != 1 {
		t.Errorf("change applied %d times, want once", got)
	}

	bad := newEnv(t, func(_ *ctradersim.Config, c *ctrader.Config) { c.ManagerPassword = "wrong" })
	if _, err := bad.client.GetTrader(ctx, loginUSD); !errs.Is(err, errs.Forbidden) {
		t.Errorf("GetTrader with a wrong manager password = %v, want EFORBIDDEN", err)
	}
	_, err := bad.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "5.00", usd), "bad-login"))
	if r, ok := platform.AsRejected(err); !ok || r.Code != platform.CodeNotSent || !r.Retryable {
		t.Errorf("ChangeBalance with a wrong manager password = %v, want a retryable NOT_SENT rejection", err)
	}
}

func TestNotSentWhenTheServerIsGone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	must(e.client.GetTrader(ctx, loginUSD))(t) // the account's currency is now known
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// A pooled connection the server closed would make the outcome unknown
	// (headers written, no answer); a refused dial proves nothing was sent.
	e.tr.CloseIdleConnections()
	_, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "gone"))
	if r, ok := platform.AsRejected(err); !ok || r.Code != platform.CodeNotSent || !r.Retryable || r.Status != 0 {
		t.Errorf("ChangeBalance to a closed port = %v, want a retryable NOT_SENT rejection", err)
	}
}

// TestFaultClassification injects each fault kind into changebalance and
// checks what the client reports and what the simulator actually did.
func TestFaultClassification(t *testing.T) {
	ctx := context.Background()
	const short = 300 * time.Millisecond
	ms := func(d time.Duration) ctradersim.Duration { return ctradersim.Duration(d) }
	tests := []struct {
		name        string
		rule        ctradersim.Rule
		timeout     time.Duration
		wantClass   string // "ok", "rejected", "ambiguous"
		wantCode    string // for rejections
		wantApplied int
	}{
		{"no fault", ctradersim.Rule{}, 0, "ok", "", 1},
		{"latency within the timeout", ctradersim.Rule{Latency: ms(20 * time.Millisecond)}, 0, "ok", "", 1},
		{"latency beyond the timeout", ctradersim.Rule{Latency: ms(10 * time.Minute)}, short, "ambiguous", "", 0},
		{"5xx UNKNOWN_ERROR", ctradersim.Rule{ErrorP: 1, ErrorStatus: 503, ErrorCode: "UNKNOWN_ERROR"}, 0, "ambiguous", "", 0},
		{"500 with a code", ctradersim.Rule{ErrorP: 1, ErrorStatus: 500, ErrorCode: "INVALID_REQUEST"}, 0, "ambiguous", "", 0},
		{"4xx UNKNOWN_ERROR", ctradersim.Rule{ErrorP: 1, ErrorStatus: 400, ErrorCode: "UNKNOWN_ERROR"}, 0, "ambiguous", "", 0},
		{"429 rate limit", ctradersim.Rule{ErrorP: 1, ErrorStatus: 429, ErrorCode: "REQUEST_FREQUENCY_EXCEEDED"}, 0, "rejected", "REQUEST_FREQUENCY_EXCEEDED", 0},
		{"400 bad amount", ctradersim.Rule{ErrorP: 1, ErrorStatus: 400, ErrorCode: "CHANGE_BALANCE_BAD_AMOUNT"}, 0, "rejected", "CHANGE_BALANCE_BAD_AMOUNT", 0},
		{"drop before apply", ctradersim.Rule{DropP: 1}, 0, "ambiguous", "", 0},
		{"apply then time out", ctradersim.Rule{ApplyTimeoutP: 1}, short, "ambiguous", "", 1},
		{"apply then a short hold", ctradersim.Rule{ApplyTimeoutP: 1, Hold: ms(10 * time.Millisecond)}, 0, "ambiguous", "", 1},
		{"apply then reset", ctradersim.Rule{ApplyResetP: 1}, 0, "ambiguous", "", 1},
		{"duplicate delivery", ctradersim.Rule{DuplicateP: 1}, 0, "ok", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []option{withFaults(ctradersim.EndpointChangeBalance, tt.rule)}
			if tt.timeout > 0 {
				opts = append(opts, withTimeout(tt.timeout))
			}
			e := newEnv(t, opts...)
			must(e.client.GetTrader(ctx, loginUSD))(t) // log in and learn the currency before the fault
			const id = "dep_fault"
			_, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "10.00", usd), id))
			class := "ok"
			switch {
			case platform.IsRejected(err):
				class = "rejected"
				if r, _ := platform.AsRejected(err); r.Code != tt.wantCode {
					t.Errorf("code = %s, want %s", r.Code, tt.wantCode)
				}
			case platform.IsAmbiguous(err):
				class = "ambiguous"
				a, _ := platform.AsAmbiguous(err)
				if !strings.Contains(a.Evidence, "changebalance") || !strings.Contains(a.Evidence, id) || strings.Contains(a.Evidence, "token=") {
					t.Errorf("evidence %q should name the request and id and never the token", a.Evidence)
				}
			case err != nil:
				t.Fatalf("error outside the contract: %v", err)
			}
			if class != tt.wantClass {
				t.Fatalf("outcome %s (%v), want %s", class, err, tt.wantClass)
			}
			_, found, ferr := e.client.FindChange(ctx, loginUSD, id)
			if ferr != nil || found != (tt.wantApplied > 0) {
				t.Errorf("FindChange = %v, %v; want found=%v", found, ferr, tt.wantApplied > 0)
			}
			if err := e.srv.Close(); err != nil { // waits for held requests, so nothing can land later
				t.Fatal(err)
			}
			if got := e.applied(t, loginUSD, id); got != tt.wantApplied {
				t.Errorf("applied %d times, want %d", got, tt.wantApplied)
			}
			wantDup := max(tt.wantApplied-1, 0)
			if got := e.sim.Stats().DuplicateExternalIDs; got != wantDup {
				t.Errorf("duplicate externalIds = %d, want %d", got, wantDup)
			}
		})
	}
}

// outcomes runs n deposits under faults and returns one letter per call:
// o ok, r rejected, a ambiguous.
func outcomes(t *testing.T, seed uint64, n int) string {
	t.Helper()
	e := newEnv(t, func(s *ctradersim.Config, _ *ctrader.Config) {
		s.Faults = ctradersim.FaultConfig{Seed: seed, Endpoints: map[string]ctradersim.Rule{
			ctradersim.EndpointChangeBalance: {ErrorP: 0.2, ErrorStatus: 503, DropP: 0.2, ApplyResetP: 0.1},
		}}
	})
	ctx := context.Background()
	must(e.client.GetTrader(ctx, loginUSD))(t)
	var b strings.Builder
	for i := range n {
		_, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), fmt.Sprint("seq", i)))
		switch {
		case err == nil:
			b.WriteByte('o')
		case platform.IsRejected(err):
			b.WriteByte('r')
		case platform.IsAmbiguous(err):
			b.WriteByte('a')
		default:
			t.Fatalf("call %d: error outside the contract: %v", i, err)
		}
	}
	return b.String()
}

func TestFaultsAreDeterministicPerSeed(t *testing.T) {
	first, again, other := outcomes(t, 42, 40), outcomes(t, 42, 40), outcomes(t, 43, 40)
	if first != again {
		t.Errorf("same seed, same calls, different faults:\n%s\n%s", first, again)
	}
	if first == other {
		t.Errorf("seeds 42 and 43 gave the same faults %s", first)
	}
	if !strings.Contains(first, "o") || !strings.Contains(first, "a") {
		t.Errorf("outcomes %s should mix successes and faults", first)
	}
}

func TestFindChangeWithoutTheExtension(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(s *ctradersim.Config, _ *ctrader.Config) { s.DisableHistoryExtension = true })
	if _, err := e.client.ChangeBalance(ctx, deposit(loginUSD, amount(t, "1.00", usd), "d1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.FindChange(ctx, loginUSD, "d1"); !errors.Is(err, ctrader.ErrLookupUnsupported) {
		t.Errorf("FindChange without the extension = %v, want ErrLookupUnsupported", err)
	}
	with := newEnv(t)
	if _, found, err := with.client.FindChange(ctx, loginUSD, "never-sent"); err != nil || found {
		t.Errorf("FindChange(never sent) = %v, %v; want not found", found, err)
	}
	if _, _, err := with.client.FindChange(ctx, 4242, "x"); !errs.Is(err, errs.NotFound) {
		t.Errorf("FindChange(unknown trader) = %v, want ENOTFOUND", err)
	}
}
