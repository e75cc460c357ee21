package clientapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestBankLinkingAndVerification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		st, m, raw := r.do(t, "POST", "/banks", r.ann.token, "", `{"bankName":"Chase Bank","accountHolderName":"Ann Lee","iban":"DE89 3704 0044 0532 0130 00","bic":"COBADEFF"}`)
		if st != 201 || m["status"] != "PENDING_VERIFICATION" || m["iban"] != "DE****************3000" || m["bankName"] != "Chase Bank" {
			t.Fatalf("link: %d %s", st, raw)
		}
		id := m["bankId"].(string)
		sent := r.rail.amounts(id)
		staff, err := r.banking.MicroDepositAmounts(ctx, id)
		if err != nil || staff[0].Decimal() != sent[0] || staff[1].Decimal() != sent[1] {
			t.Errorf("support view %v %v, rail sent %v", staff, err, sent)
		}
		// The client sees the bank, never the micro-deposit amounts.
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if d := cmp.Diff([]string{"accountHolderName", "bankId", "bankName", "bic", "createdDate", "iban", "status", "updatedDate", "verificationAttemptsLeft"}, keys); d != "" {
			t.Errorf("bank fields (-want +got):\n%s", d)
		}
		// Cross-user: Bob cannot see, verify or unlink Ann's bank.
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/banks/" + id, ""},
			{"POST", "/banks/" + id + "/verify", `{"amounts":[` + sent[0] + `,` + sent[1] + `]}`},
			{"DELETE", "/banks/" + id, ""},
		} {
			if st, _, raw := r.do(t, c.method, c.path, r.bob.token, "", c.body); st != 404 {
				t.Errorf("bob %s %s: %d %s, want 404", c.method, c.path, st, raw)
			}
		}
		if st, m, _ := r.do(t, "GET", "/banks", r.bob.token, "", ""); st != 200 || len(m["results"].([]any)) != 0 {
			t.Errorf("bob's banks: %d %v", st, m)
		}
		wrong := `{"amounts":[1.00,2.00]}`
		if sent[0] == "1.00" || sent[1] == "1.00" {
			wrong = `{"amounts":[3.00,4.00]}`
		}
		bad := []struct {
			name, body string
			status     int
			detail     string
		}{
			{"one amount", `{"amounts":[0.10]}`, 400, "amounts must list the two micro-deposit amounts, e.g. [0.12, 0.34]"},
			{"string amounts", `{"amounts":["0.10","0.20"]}`, 400, `field "amounts" must be a number`},
			{"too many decimals", `{"amounts":[0.101,0.2]}`, 400, ""},
			{"wrong pair", wrong, 403, "The amounts do not match. 2 attempt(s) left."},
		}
		for _, c := range bad {
			st, m, raw := r.do(t, "POST", "/banks/"+id+"/verify", r.ann.token, "", c.body)
			if st != c.status || (c.detail != "" && m["detail"] != c.detail) {
				t.Errorf("%s: %d %s", c.name, st, raw)
			}
		}
		st, m, raw = r.do(t, "POST", "/banks/"+id+"/verify", r.ann.token, "", `{"amounts":[`+sent[1]+`,`+sent[0]+`]}`)
		if st != 200 || m["status"] != "PROCESSED" {
			t.Fatalf("right amounts in the other order: %d %s", st, raw)
		}
		if st, _, raw := r.do(t, "POST", "/banks/"+id+"/verify", r.ann.token, "", `{"amounts":[`+sent[1]+`,`+sent[0]+`]}`); st != 409 {
			t.Errorf("verify a processed bank: %d %s", st, raw)
		}

		// Three wrong pairs reject a bank.
		id2 := r.linkBank(t, r.ann, "Bank of America")
		w2 := `{"amounts":[1.00,1.00]}`
		for i, want := range []string{"The amounts do not match. 2 attempt(s) left.", "The amounts do not match. 1 attempt(s) left.",
			"The amounts do not match. The bank account is rejected; link it again to retry."} {
			st, m, _ := r.do(t, "POST", "/banks/"+id2+"/verify", r.ann.token, "", w2)
			if st != 403 || m["detail"] != want {
				t.Errorf("wrong pair %d: %d %v", i+1, st, m["detail"])
			}
		}
		a2 := r.rail.amounts(id2)
		if st, _, _ := r.do(t, "POST", "/banks/"+id2+"/verify", r.ann.token, "", `{"amounts":[`+a2[0]+`,`+a2[1]+`]}`); st != 409 {
			t.Errorf("right amounts after rejection: %d, want 409", st)
		}
		if st, m, _ := r.do(t, "GET", "/banks/"+id2, r.ann.token, "", ""); m["status"] != "REJECTED" {
			t.Errorf("rejected bank: %d %v", st, m)
		}

		// A rail that is down leaves the bank PENDING until a retry.
		r.rail.Fail = true
		id3 := r.linkBank(t, r.ann, "Wells Fargo")
		if _, m, _ := r.do(t, "GET", "/banks/"+id3, r.ann.token, "", ""); m["status"] != "PENDING" {
			t.Errorf("bank with the rail down: %v", m["status"])
		}
		r.rail.Fail = false
		if n, err := r.banking.SendPendingMicroDeposits(ctx); n != 1 || err != nil {
			t.Errorf("SendPendingMicroDeposits = %d, %v", n, err)
		}
		if _, m, _ := r.do(t, "GET", "/banks/"+id3, r.ann.token, "", ""); m["status"] != "PENDING_VERIFICATION" {
			t.Errorf("bank after the retry: %v", m["status"])
		}

		// The same IBAN twice is refused while the first is linked.
		if st, m, _ := r.do(t, "POST", "/banks", r.ann.token, "", `{"bankName":"Chase","accountHolderName":"Ann Lee","iban":"DE89370400440532013000"}`); st != 409 || m["detail"] != "this bank account is already linked" {
			t.Errorf("same IBAN again: %d %v", st, m)
		}
		// Bad link requests.
		for _, c := range []struct{ name, body string }{
			{"bad IBAN", `{"bankName":"X","accountHolderName":"Ann","iban":"DE00 0000"}`},
			{"no name", `{"bankName":"","accountHolderName":"Ann","iban":"DE89370400440532013000"}`},
			{"unknown field", `{"bankName":"X","accountHolderName":"Ann","iban":"DE89370400440532013000","pin":"1"}`},
			{"malformed", `{"bankName":`},
		} {
			if st, _, raw := r.do(t, "POST", "/banks", r.ann.token, "", c.body); st != 400 {
				t.Errorf("%s: %d %s", c.name, st, raw)
			}
		}
		// Unlink: a bank without transfers disappears.
		if st, _, _ := r.do(t, "DELETE", "/banks/"+id3, r.ann.token, "", ""); st != 204 {
			t.Errorf("unlink: %d", st)
		}
		if st, _, _ := r.do(t, "GET", "/banks/"+id3, r.ann.token, "", ""); st != 404 {
			t.Errorf("unlinked bank: %d", st)
		}
		if st, _, _ := r.do(t, "GET", "/banks", "", "", ""); st != 401 {
			t.Errorf("no token: %d", st)
		}
	}, schemas...)
}

func TestCashTransfer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		processed := r.verifiedBank(t, r.ann, "Chase Bank")
		awaiting := r.linkBank(t, r.ann, "Bank of America")
		r.rail.Fail = true
		pending := r.linkBank(t, r.ann, "Wells Fargo")
		r.rail.Fail = false
		bobs := r.verifiedBank(t, r.bob, "Citi")
		r.balances.by[r.ann.login] = 60000 // $600.00

		body := func(typ, amount, bank string) string {
			return fmt.Sprintf(`{"instructionType":%q,"amount":%s,"bankId":%q}`, typ, amount, bank)
		}
		cases := []struct {
			name, body string
			status     int
			message    string
		}{
			{"deposit", body("DEPOSIT", "1000", processed), 200, banking.MsgDepositSubmitted},
			{"minimum deposit", body("DEPOSIT", "10", processed), 200, banking.MsgDepositSubmitted},
			{"below minimum", body("DEPOSIT", "9.99", processed), 400, "Minimum deposit amount is $10"},
			{"too many decimals", body("DEPOSIT", "10.001", processed), 400, "amount 10.001 has more decimals than USD allows (2)"},
			{"exponent", body("DEPOSIT", "1e3", processed), 400, ""},
			{"amount as string", body("DEPOSIT", `"1000"`, processed), 400, `field "amount" must be a number`},
			{"negative", body("WITHDRAWAL", "-5", processed), 400, ""},
			{"zero", body("WITHDRAWAL", "0", processed), 400, "amount must be greater than zero"},
			{"no amount", `{"instructionType":"DEPOSIT","bankId":"` + processed + `"}`, 400, "amount is required"},
			{"bad type", body("TRANSFER", "100", processed), 400, "instructionType must be DEPOSIT or WITHDRAWAL"},
			{"unknown bank", body("DEPOSIT", "100", "bank_nope"), 404, "Bank account not found"},
			{"another user's bank", body("DEPOSIT", "100", bobs), 404, "Bank account not found"},
			{"deposit to a bank awaiting micro-deposits", body("DEPOSIT", "50", awaiting), 200, banking.MsgDepositSubmitted},
			{"withdrawal to a bank awaiting micro-deposits", body("WITHDRAWAL", "50", awaiting), 403, banking.MsgBankNotVerified},
			{"deposit to a bank not yet sent micro-deposits", body("DEPOSIT", "50", pending), 403, banking.MsgBankNotVerified},
			{"withdrawal", body("WITHDRAWAL", "500", processed), 200, banking.MsgWithdrawSubmitted},
			{"withdrawal over what is left", body("WITHDRAWAL", "100.01", processed), 422, "Insufficient funds available for withdrawal"},
			{"withdrawal of the rest", body("WITHDRAWAL", "100", processed), 200, banking.MsgWithdrawSubmitted},
			{"signal account", `{"instructionType":"DEPOSIT","amount":100,"bankId":"` + processed + fmt.Sprintf(`","accountId":%d}`, r.ann.signal), 403, banking.MsgTradingOnly},
			{"someone else's account", `{"instructionType":"DEPOSIT","amount":100,"bankId":"` + processed + fmt.Sprintf(`","accountId":%d}`, r.bob.login), 404, "Trading account not found"},
			{"malformed JSON", `{"instructionType":"DEPOSIT",`, 400, "malformed JSON: the body ends too early"},
			{"unknown field", `{"instructionType":"DEPOSIT","amount":100,"bankId":"x","fee":1}`, 400, `unknown field "fee"`},
			{"wrong type", `{"instructionType":1,"amount":100,"bankId":"x"}`, 400, `field "instructionType" must be a string, not number`},
			{"oversized", `{"instructionType":"DEPOSIT","amount":100,"bankId":"` + strings.Repeat("x", 20000) + `"}`, 413, ""},
		}
		for _, c := range cases {
			r.clock.Advance(time.Second)
			st, m, raw := r.do(t, "POST", "/cash-transfer", r.ann.token, "", c.body)
			if st != c.status || (c.message != "" && m["message"] != c.message) || m["message"] == nil {
				t.Errorf("%s: %d %s, want %d %q", c.name, st, raw, c.status, c.message)
			}
		}
		// Only the accepted instructions were recorded.
		_, m, _ := r.do(t, "GET", "/transactions", r.ann.token, "", "")
		var got []string
		for _, x := range m["results"].([]any) {
			tx := x.(map[string]any)
			got = append(got, fmt.Sprintf("%s %s %s %s", tx["transactionType"], tx["amount"], tx["status"], tx["bankName"]))
		}
		want := []string{
			"WITHDRAWAL 100 PENDING Chase Bank",
			"WITHDRAWAL 500 PENDING Chase Bank",
			"DEPOSIT 50 SCHEDULED Bank of America",
			"DEPOSIT 10 PENDING Chase Bank",
			"DEPOSIT 1000 PENDING Chase Bank",
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("transactions (-want +got):\n%s", d)
		}
		// Verifying the bank moves its scheduled deposit to PENDING.
		a := r.rail.amounts(awaiting)
		if st, _, raw := r.do(t, "POST", "/banks/"+awaiting+"/verify", r.ann.token, "", `{"amounts":[`+a[0]+`,`+a[1]+`]}`); st != 200 {
			t.Fatalf("verify: %d %s", st, raw)
		}
		if _, m, _ := r.do(t, "GET", "/transactions?status=SCHEDULED", r.ann.token, "", ""); len(m["results"].([]any)) != 0 {
			t.Errorf("scheduled after verification: %v", m["results"])
		}
		// A failed withdrawal frees its amount.
		_, m, _ = r.do(t, "GET", "/transactions?transactionType=WITHDRAWAL&limit=1", r.ann.token, "", "")
		order := m["results"].([]any)[0].(map[string]any)["orderId"].(string)
		if _, err := r.banking.Settle(context.Background(), order, false, "bank rejected"); err != nil {
			t.Fatal(err)
		}
		if st, m, _ := r.do(t, "POST", "/cash-transfer", r.ann.token, "", body("WITHDRAWAL", "100", processed)); st != 200 {
			t.Errorf("withdrawal after a failed one: %d %v", st, m)
		}
	}, schemas...)
}

func TestTransactions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		bank := r.verifiedBank(t, r.ann, "Chase Bank")
		r.balances.by[r.ann.login] = 1_000_000
		for i := range 7 {
			r.clock.Advance(time.Minute)
			typ := "DEPOSIT"
			if i%3 == 2 {
				typ = "WITHDRAWAL"
			}
			b := fmt.Sprintf(`{"instructionType":%q,"amount":%d.5,"bankId":%q}`, typ, 100+i, bank)
			if st, _, raw := r.do(t, "POST", "/cash-transfer", r.ann.token, fmt.Sprintf("k%d", i), b); st != 200 {
				t.Fatalf("transfer %d: %d %s", i, st, raw)
			}
		}
		type page struct {
			n                    int
			total, limit, offset int64
			hasMore              bool
		}
		pageOf := func(m map[string]any) page {
			p := m["pagination"].(map[string]any)
			num := func(k string) int64 { v, _ := p[k].(json.Number).Int64(); return v }
			return page{len(m["results"].([]any)), num("total"), num("limit"), num("offset"), p["hasMore"].(bool)}
		}
		good := []struct {
			query string
			want  page
		}{
			{"", page{7, 7, 50, 0, false}},
			{"?limit=3", page{3, 7, 3, 0, true}},
			{"?limit=3&offset=6", page{1, 7, 3, 6, false}},
			{"?offset=100", page{0, 7, 50, 100, false}},
			{"?limit=100", page{7, 7, 100, 0, false}},
			{"?transactionType=WITHDRAWAL", page{2, 2, 50, 0, false}},
			{"?transactionType=DEPOSIT&limit=2&offset=2", page{2, 5, 2, 2, true}},
			{"?status=PENDING", page{7, 7, 50, 0, false}},
			{"?status=SUCCESS", page{0, 0, 50, 0, false}},
		}
		for _, c := range good {
			st, m, raw := r.do(t, "GET", "/transactions"+c.query, r.ann.token, "", "")
			if st != 200 {
				t.Errorf("%s: %d %s", c.query, st, raw)
				continue
			}
			if got := pageOf(m); got != c.want {
				t.Errorf("%s: %+v, want %+v", c.query, got, c.want)
			}
		}
		bad := []struct{ query, message string }{
			{"?limit=0", "limit must be a whole number between 1 and 100"},
			{"?limit=101", "limit must be a whole number between 1 and 100"},
			{"?limit=-1", "limit must be a whole number between 1 and 100"},
			{"?limit=ten", "limit must be a whole number between 1 and 100"},
			{"?offset=-1", "offset must be a whole number, 0 or more"},
			{"?transactionType=FEE", "Invalid transaction type. Must be DEPOSIT or WITHDRAWAL"},
			{"?status=DONE", banking.MsgInvalidStatus},
		}
		for _, c := range bad {
			st, m, raw := r.do(t, "GET", "/transactions"+c.query, r.ann.token, "", "")
			if st != 400 || m["message"] != c.message {
				t.Errorf("%s: %d %s", c.query, st, raw)
			}
		}
		// The newest first, and the full record.
		_, m, _ := r.do(t, "GET", "/transactions?limit=1", r.ann.token, "", "")
		first := m["results"].([]any)[0].(map[string]any)
		order := first["orderId"].(string)
		if !strings.HasSuffix(order, "_"+bank) || first["amount"] != json.Number("106.5") {
			t.Errorf("newest transaction: %v", first)
		}
		st, m, raw := r.do(t, "GET", "/transactions/"+order, r.ann.token, "", "")
		if st != 200 {
			t.Fatalf("get transaction: %d %s", st, raw)
		}
		created := r.clock.Now().UTC().Format(time.RFC3339)
		want := map[string]any{
			"orderId": order, "userId": r.ann.id, "transactionType": "DEPOSIT", "amount": json.Number("106.5"), "status": "PENDING",
			"bankId": bank, "bankName": "Chase Bank", "bankInstructionName": "Chase Bank", "portfolioId": fmt.Sprint(r.ann.login),
			"brokerInstructionId": m["brokerInstructionId"], "clientInstructionId": "k6", "createdDate": created, "updatedDate": created,
		}
		if d := cmp.Diff(want, m); d != "" || !strings.HasPrefix(fmt.Sprint(m["brokerInstructionId"]), "bt_") {
			t.Errorf("full record (-want +got):\n%s", d)
		}
		// Settled: SUCCESS with a new updatedDate.
		r.clock.Advance(48 * time.Hour)
		if _, err := r.banking.Settle(context.Background(), order, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, m, _ := r.do(t, "GET", "/transactions/"+order, r.ann.token, "", ""); m["status"] != "SUCCESS" || m["updatedDate"] == created {
			t.Errorf("after settlement: %v", m)
		}
		// Another user's order and unknown orders are 404 in the seed's shape.
		for _, who := range []user{r.bob} {
			if st, m, raw := r.do(t, "GET", "/transactions/"+order, who.token, "", ""); st != 404 || m["message"] != "Transaction not found" || len(m) != 1 {
				t.Errorf("bob reads ann's transaction: %d %s", st, raw)
			}
		}
		if st, m, _ := r.do(t, "GET", "/transactions/nope", r.ann.token, "", ""); st != 404 || m["message"] != "Transaction not found" {
			t.Errorf("unknown order: %d %v", st, m)
		}
		if _, m, _ := r.do(t, "GET", "/transactions", r.bob.token, "", ""); pageOf(m).total != 0 {
			t.Errorf("bob sees ann's transactions: %v", m)
		}
	}, schemas...)
}

func TestCashTransferIdempotency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		bank := r.verifiedBank(t, r.ann, "Chase Bank")
		body := `{"instructionType":"DEPOSIT","amount":1000,"bankId":"` + bank + `"}`
		st1, _, raw1 := r.do(t, "POST", "/cash-transfer", r.ann.token, "dep-1", body)
		r.clock.Advance(time.Hour)
		st2, _, raw2 := r.do(t, "POST", "/cash-transfer", r.ann.token, "dep-1", body)
		if st1 != 200 || st2 != 200 || raw1 != raw2 {
			t.Errorf("replay: %d %s / %d %s", st1, raw1, st2, raw2)
		}
		if st, m, raw := r.do(t, "POST", "/cash-transfer", r.ann.token, "dep-1", strings.Replace(body, "1000", "2000", 1)); st != 422 || m["code"] != "EIDEMPOTENCY_MISMATCH" {
			t.Errorf("same key, other body: %d %s", st, raw)
		}
		// An error is replayed, not re-evaluated.
		small := `{"instructionType":"DEPOSIT","amount":5,"bankId":"` + bank + `"}`
		stA, _, rawA := r.do(t, "POST", "/cash-transfer", r.ann.token, "dep-2", small)
		stB, _, rawB := r.do(t, "POST", "/cash-transfer", r.ann.token, "dep-2", small)
		if stA != 400 || stB != 400 || rawA != rawB {
			t.Errorf("error replay: %d %s / %d %s", stA, rawA, stB, rawB)
		}
		// Bob's key "dep-1" is his own.
		bobBank := r.verifiedBank(t, r.bob, "Citi")
		if st, _, raw := r.do(t, "POST", "/cash-transfer", r.bob.token, "dep-1", `{"instructionType":"DEPOSIT","amount":1000,"bankId":"`+bobBank+`"}`); st != 200 {
			t.Errorf("bob's same key: %d %s", st, raw)
		}
		if _, m, _ := r.do(t, "GET", "/transactions", r.ann.token, "", ""); len(m["results"].([]any)) != 1 {
			t.Errorf("ann has %d transactions, want 1", len(m["results"].([]any)))
		}
		// Bank linking replays too: one bank, not two.
		link := `{"bankName":"HSBC","accountHolderName":"Ann Lee","iban":"GB82WEST12345698765432"}`
		_, m1, _ := r.do(t, "POST", "/banks", r.ann.token, "link-1", link)
		_, m2, _ := r.do(t, "POST", "/banks", r.ann.token, "link-1", link)
		if m1["bankId"] != m2["bankId"] {
			t.Errorf("replayed link made another bank: %v / %v", m1["bankId"], m2["bankId"])
		}
		if _, m, _ := r.do(t, "GET", "/banks", r.ann.token, "", ""); len(m["results"].([]any)) != 2 {
			t.Errorf("ann has %d banks, want 2", len(m["results"].([]any)))
		}
	}, schemas...)
}

// Two withdrawals at once from one account cannot both spend its balance.
func TestConcurrentWithdrawals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		bank := r.verifiedBank(t, r.ann, "Chase Bank")
		r.balances.by[r.ann.login] = 60000 // $600
		const n = 4
		statuses := make(chan int, n)
		for range n {
			go func() {
				// Not r.do: t.Fatal must not run outside the test goroutine.
				req, _ := http.NewRequest("POST", r.url+"/cash-transfer", strings.NewReader(`{"instructionType":"WITHDRAWAL","amount":400,"bankId":"`+bank+`"}`))
				req.Header.Set("Authorization", "Bearer "+r.ann.token)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses <- -1
					return
				}
				res.Body.Close()
				statuses <- res.StatusCode
			}()
		}
		count := map[int]int{}
		for range n {
			count[<-statuses]++
		}
		if count[200] != 1 || count[422] != n-1 {
			t.Errorf("statuses of %d concurrent $400 withdrawals from $600: %v, want one 200 and the rest 422", n, count)
		}
	}, schemas...)
}

// A deposit scheduled on a bank fails when the bank is rejected or
// unlinked; an unlinked bank with history stays as PENDING_DELETE.
func TestScheduledDepositsFail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		rejected := r.linkBank(t, r.ann, "Bank of America")
		unlinked := r.linkBank(t, r.ann, "Wells Fargo")
		for _, b := range []string{rejected, unlinked} {
			r.clock.Advance(time.Second)
			if st, _, raw := r.do(t, "POST", "/cash-transfer", r.ann.token, "", `{"instructionType":"DEPOSIT","amount":50,"bankId":"`+b+`"}`); st != 200 {
				t.Fatalf("scheduled deposit: %d %s", st, raw)
			}
		}
		for range 3 {
			r.do(t, "POST", "/banks/"+rejected+"/verify", r.ann.token, "", `{"amounts":[1.00,1.00]}`)
		}
		if st, _, _ := r.do(t, "DELETE", "/banks/"+unlinked, r.ann.token, "", ""); st != 204 {
			t.Fatalf("unlink: %d", st)
		}
		_, m, _ := r.do(t, "GET", "/transactions?status=FAILED", r.ann.token, "", "")
		if n := len(m["results"].([]any)); n != 2 {
			t.Errorf("failed deposits: %d, want 2 (%v)", n, m["results"])
		}
		_, m, _ = r.do(t, "GET", "/banks/"+unlinked, r.ann.token, "", "")
		if m["status"] != "PENDING_DELETE" {
			t.Errorf("unlinked bank with history: %v", m["status"])
		}
		for _, b := range []string{rejected, unlinked} {
			if st, m, _ := r.do(t, "POST", "/cash-transfer", r.ann.token, "", `{"instructionType":"DEPOSIT","amount":50,"bankId":"`+b+`"}`); st != 404 || m["message"] != "Bank account not found" {
				t.Errorf("deposit to a %s bank: %d %v", b, st, m)
			}
		}
	}, schemas...)
}
