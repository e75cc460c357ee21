package clientapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// FuzzCashTransfer sends arbitrary bodies to POST /cash-transfer: every
// answer is a JSON {"message"} with a 2xx or 4xx status, and only a 200
// records a transfer.
func FuzzCashTransfer(f *testing.F) {
	for _, s := range []string{
		`{"instructionType":"DEPOSIT","amount":1000,"bankId":"BANK"}`,
		`{"instructionType":"WITHDRAWAL","amount":10.5,"bankId":"BANK"}`,
		`{"instructionType":"DEPOSIT","amount":1e3,"bankId":"BANK"}`,
		`{"instructionType":"DEPOSIT","amount":"10","bankId":"BANK"}`,
		`{"instructionType":"DEPOSIT","amount":10.001,"bankId":"BANK"}`,
		`{"instructionType":"DEPOSIT","amount":-0,"bankId":"BANK","accountId":1}`,
		`{"amount":99999999999999999999999}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add(s)
	}
	db := dbtest.Open(f, sqlstore.SQLite, schemas...)
	r := newRig(f, db)
	bank := r.verifiedBank(f, r.ann, "Chase Bank")
	r.balances.by[r.ann.login] = 1 << 40
	count := func(t *testing.T) int {
		p, err := r.banking.Transactions(context.Background(), r.ann.id, banking.Query{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return p.Total
	}
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(body, "BANK", bank)
		before := count(t)
		st, m, raw := r.do(t, "POST", "/cash-transfer", r.ann.token, "", body)
		if _, ok := m["message"].(string); !ok || st >= 500 || (st != 200 && st < 400) {
			t.Fatalf("body %q: %d %s", body, st, raw)
		}
		want := before
		if st == 200 {
			want++
		}
		if got := count(t); got != want {
			t.Fatalf("body %q answered %d and left %d transfers, want %d", body, st, got, want)
		}
	})
}
