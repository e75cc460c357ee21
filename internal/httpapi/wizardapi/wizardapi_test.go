package wizardapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/twofactor"
	"github.com/opencashier/cashier/internal/withdrawwizard"
)

const terminate = `B2B\TCA\Wizards\Workflow\TerminateWorkflow`

func TestEmailCodeEndToEnd(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, true)
		status, start, hdr := r.call("GET", "/api/v2/my/withdrawals/wizard", "tok-alice", "")
		if status != http.StatusOK || start["code"] != json.Number("200") || start["done"] != false || start["data"] != nil ||
			start["workflow"] != withdrawwizard.InitialWorkflow || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("start: %d %v %v", status, start, hdr)
		}
		id := start["uuid"].(string)

		// The preview shows fees and books nothing.
		status, preview, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "200.00", true))
		if status != http.StatusOK {
			t.Fatalf("preview: %d %v", status, preview)
		}
		want := map[string]any{"id": "", "status": "preview", "accountId": json.Number("8673590"), "methodId": json.Number("2"),
			"amount": json.Number("200.00"), "currencyCode": json.Number("840"), "currency": "USD", "fee": json.Number("5.00"),
			"feePaidBy": "client", "netAmount": json.Number("195.00"), "netCurrency": "USD", "conversion": nil}
		if diff := cmp.Diff(want, preview); diff != "" {
			t.Errorf("preview (-want +got):\n%s", diff)
		}
		if n := r.withdrawals("usr_alice"); n != 0 || len(r.box.Messages()) != 0 {
			t.Fatalf("the preview booked %d withdrawals, sent %d mails", n, len(r.box.Messages()))
		}

		status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "200.00", false))
		wantDelivery := map[string]any{"status": json.Number("0"), "sent": json.Number("1"),
			"sentAt": "2026-05-04T09:00:00+00:00", "expiredAt": "2026-05-04T09:10:00+00:00",
			"recipient": map[string]any{"template": "Withdraw_Confirm", "email": "alice@example.com", "name": "Alice Archer", "method": "email"}}
		if diff := cmp.Diff(wantDelivery, d); status != http.StatusOK || diff != "" {
			t.Fatalf("submit: %d (-want +got):\n%s", status, diff)
		}
		if n := r.withdrawals("usr_alice"); n != 0 {
			t.Fatalf("%d withdrawals requested before the code", n)
		}
		code := r.mailedCode("alice@example.com")

		status, p, hdr := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, wrongCode(code)))
		if status != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "2 attempts left") ||
			hdr.Get("Content-Type") != "application/problem+json" || p["code"] != "EINVALID" {
			t.Fatalf("wrong code: %d %v", status, p)
		}
		status, done, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, code))
		if status != http.StatusAccepted {
			t.Fatalf("confirm: %d %v", status, done)
		}
		tx := done["transaction"].(map[string]any)
		delete(done, "transaction")
		if diff := cmp.Diff(map[string]any{"code": json.Number("202"), "data": nil, "done": true, "uuid": id, "workflow": terminate}, done); diff != "" {
			t.Errorf("confirm (-want +got):\n%s", diff)
		}
		if !strings.HasPrefix(tx["id"].(string), "wd_") || tx["amount"] != json.Number("200.00") || tx["netAmount"] != json.Number("195.00") {
			t.Errorf("transaction %v", tx)
		}
		// A retried confirmation answers the same; no second withdrawal.
		status, again, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, code))
		if status != http.StatusAccepted || again["transaction"].(map[string]any)["id"] != tx["id"] || r.withdrawals("usr_alice") != 1 {
			t.Fatalf("retry: %d %v", status, again)
		}
		r.run()
		w, err := r.fund.Withdrawal(context.Background(), "usr_alice", tx["id"].(string))
		if err != nil || w.Status != "completed" || r.simBalance(aliceUSD) != "800.00 USD" {
			t.Fatalf("after the jobs: %s, platform %s, %v", w.Status, r.simBalance(aliceUSD), err)
		}
		// The wizard is done: it takes no other withdrawal.
		status, p, _ = r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "10.00", false))
		if status != http.StatusConflict {
			t.Fatalf("done wizard: %d %v", status, p)
		}
	})
}

func TestSMSCodeEndToEnd(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		if _, err := r.tfa.Enrol(context.Background(), "usr_bob", twofactor.Recipient{Method: twofactor.SMS, Phone: "+447700900123", Name: "Bob Baker"}); err != nil {
			t.Fatal(err)
		}
		id := r.startWizard("tok-bob")
		status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-bob", bankWithdrawal(id, bobUSD, "100.00", false))
		rec, _ := d["recipient"].(map[string]any)
		if status != http.StatusOK || d["sent"] != json.Number("1") || rec["method"] != "sms" || rec["email"] != "" || rec["name"] != "Bob Baker" {
			t.Fatalf("submit: %d %v", status, d)
		}
		status, done, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-bob", confirmBody(id, r.textedCode("+447700900123")))
		if status != http.StatusAccepted || done["done"] != true || done["workflow"] != terminate {
			t.Fatalf("confirm: %d %v", status, done)
		}
		if n := r.withdrawals("usr_bob"); n != 1 {
			t.Fatalf("%d withdrawals, want 1", n)
		}
	})
}

func TestGoogleCodeEndToEndAndReplayRefused(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		ctx := context.Background()
		setup, err := r.tfa.BeginTOTP(ctx, "usr_alice", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		code := func() string {
			c, err := totp.GenerateCode(setup.Secret, r.clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if _, err := r.tfa.ConfirmTOTP(ctx, "usr_alice", code()); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(30 * time.Second)

		first := r.startWizard("tok-alice")
		status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(first, aliceUSD, "100.00", false))
		if rec, _ := d["recipient"].(map[string]any); status != http.StatusOK || d["sent"] != json.Number("0") || rec["method"] != "google" {
			t.Fatalf("submit: %d %v", status, d)
		}
		used := code()
		if status, done, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(first, used)); status != http.StatusAccepted {
			t.Fatalf("confirm: %d %v", status, done)
		}
		// The same code, still in its window, for another wizard: refused.
		second := r.startWizard("tok-alice")
		if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(second, aliceUSD, "60.00", false)); status != http.StatusOK {
			t.Fatalf("second submit: %d %v", status, d)
		}
		status, p, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(second, used))
		if status != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "already used") {
			t.Fatalf("replay: %d %v", status, p)
		}
		r.clk.Advance(30 * time.Second)
		if status, done, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(second, code())); status != http.StatusAccepted {
			t.Fatalf("next code: %d %v", status, done)
		}
		if n := r.withdrawals("usr_alice"); n != 2 {
			t.Fatalf("%d withdrawals, want 2", n)
		}
	})
}

func TestCodeLimits(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, true)
		submit := func() string {
			t.Helper()
			id := r.startWizard("tok-alice")
			if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false)); status != http.StatusOK {
				t.Fatalf("submit: %d %v", status, d)
			}
			return id
		}

		t.Run("expired code cancels the wizard", func(t *testing.T) {
			id := submit()
			code := r.mailedCode("alice@example.com")
			r.clk.Advance(10 * time.Minute)
			status, p, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, code))
			if status != http.StatusGone || p["code"] != "EEXPIRED" {
				t.Fatalf("expired: %d %v", status, p)
			}
			if status, p, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false)); status != http.StatusConflict {
				t.Fatalf("resubmit after cancel: %d %v", status, p)
			}
		})

		t.Run("attempts exhausted", func(t *testing.T) {
			id := submit()
			code := r.mailedCode("alice@example.com")
			for i, want := range []int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests, http.StatusConflict} {
				c := wrongCode(code)
				if i == 3 {
					c = code // the right code is no use any more
				}
				if status, p, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, c)); status != want {
					t.Fatalf("attempt %d: %d %v, want %d", i+1, status, p, want)
				}
			}
		})

		t.Run("resend cool-down", func(t *testing.T) {
			id := submit()
			first := r.mailedCode("alice@example.com")
			status, p, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false))
			if status != http.StatusTooManyRequests || p["code"] != "ERATELIMIT" {
				t.Fatalf("resend within the cool-down: %d %v", status, p)
			}
			r.clk.Advance(time.Minute)
			status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false))
			if status != http.StatusOK || d["sentAt"] != r.clk.Now().UTC().Format("2006-01-02T15:04:05+00:00") {
				t.Fatalf("resend: %d %v", status, d)
			}
			second := r.mailedCode("alice@example.com")
			if first != second {
				if status, _, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, first)); status != http.StatusBadRequest {
					t.Fatalf("the replaced code answered %d", status)
				}
			}
			if status, p, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, second)); status != http.StatusAccepted {
				t.Fatalf("confirm with the new code: %d %v", status, p)
			}
		})

		t.Run("another withdrawal on a wizard awaiting its code", func(t *testing.T) {
			id := submit()
			if status, p, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "150.00", false)); status != http.StatusConflict {
				t.Fatalf("changed amount: %d %v", status, p)
			}
		})
	})
}

func TestWithoutSecondFactorTheSubmissionIsTheWithdrawal(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		id := r.startWizard("tok-bob")
		status, tx, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-bob", bankWithdrawal(id, bobUSD, "100.00", false))
		if status != http.StatusAccepted || !strings.HasPrefix(tx["id"].(string), "wd_") || len(r.box.Messages()) != 0 {
			t.Fatalf("submit: %d %v", status, tx)
		}
		if n := r.withdrawals("usr_bob"); n != 1 {
			t.Fatalf("%d withdrawals, want 1", n)
		}
	})
}

func TestRefusals(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, true)
		alice := r.startWizard("tok-alice")
		bob := r.startWizard("tok-bob")
		valid := func(mut func(m map[string]any)) string {
			m := map[string]any{"accountId": aliceUSD, "methodId": 2, "amount": json.Number("100.00"), "currencyCode": 840, "uuid": alice,
				"data": map[string]string{"iban": "DE89 3704 0044 0532 0130 00", "holderName": "Alice Archer"}}
			mut(m)
			b, _ := json.Marshal(m)
			return string(b)
		}
		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			field                           string
		}{
			{"no token", "GET", "/api/v2/my/withdrawals/wizard", "", "", 401, ""},
			{"bad token", "POST", "/api/v2/my/withdrawals", "tok-eve", valid(func(map[string]any) {}), 401, ""},
			{"unknown uuid", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["uuid"] = "36f59381-5b54-48bd-a0c7-3b908c476732" }), 404, ""},
			{"another user's wizard", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["uuid"] = bob }), 404, ""},
			{"another user's account", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["accountId"] = bobUSD; m["isPretend"] = true }), 404, ""},
			{"unknown account", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["accountId"] = 1 }), 404, ""},
			{"confirm another user's wizard", "POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(bob, "123456"), 404, ""},
			{"confirm unknown uuid", "POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody("nope", "123456"), 404, ""},
			{"confirm before submitting", "POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(alice, "123456"), 409, ""},
			{"confirm wrong action", "POST", "/api/v2/my/withdrawals/wizard", "tok-alice", `{"data":{"action":"sms","code":"1","uuid":"x"}}`, 400, ""},
			{"confirm without data", "POST", "/api/v2/my/withdrawals/wizard", "tok-alice", `{}`, 400, ""},
			{"malformed JSON", "POST", "/api/v2/my/withdrawals", "tok-alice", `{"accountId":`, 400, ""},
			{"unknown field", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["fee"] = 0 }), 400, ""},
			{"accountId as a string", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["accountId"] = "8673590" }), 400, ""},
			{"methodId with a fraction", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["methodId"] = 2.5 }), 400, ""},
			{"data value not a string", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["data"] = map[string]any{"iban": 1} }), 400, ""},
			{"too many decimals", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["amount"] = json.Number("100.001") }), 400, "amount"},
			{"exponent", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["amount"] = json.Number("1e2") }), 400, "amount"},
			{"negative amount", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["amount"] = json.Number("-5") }), 400, "amount"},
			{"missing amount", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { delete(m, "amount") }), 400, "amount"},
			{"missing uuid", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { delete(m, "uuid") }), 400, ""},
			{"unknown currency number", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["currencyCode"] = 1000 }), 400, "currencyCode"},
			{"not the account's currency", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["currencyCode"] = 978 }), 400, "currencyCode"},
			{"unknown method", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["methodId"] = 99 }), 400, "methodId"},
			{"method without withdrawals", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["methodId"] = 4 }), 400, "methodId"},
			{"bad IBAN", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) {
				m["data"] = map[string]string{"iban": "DE00 0000", "holderName": "Alice Archer"}
			}), 400, "data.iban"},
			{"unknown detail", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) {
				m["data"] = map[string]string{"iban": "DE89 3704 0044 0532 0130 00", "holderName": "Alice Archer", "colour": "red"}
			}), 400, ""},
			{"below the method's minimum", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["amount"] = json.Number("10.00") }), 400, "amount"},
			{"oversized body", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) {
				m["data"] = map[string]string{"iban": strings.Repeat("A", 70<<10), "holderName": "Alice Archer"}
			}), 413, ""},
			{"more than the balance", "POST", "/api/v2/my/withdrawals", "tok-alice", valid(func(m map[string]any) { m["amount"] = json.Number("1500.00") }), 422, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, p, hdr := r.call(tc.method, tc.path, tc.token, tc.body)
				if status != tc.status || hdr.Get("Content-Type") != "application/problem+json" || p["status"] != json.Number(jsonInt(tc.status)) {
					t.Fatalf("%d %v %s, want %d problem+json", status, p, hdr.Get("Content-Type"), tc.status)
				}
				if tc.field != "" && p["field"] != tc.field {
					t.Errorf("field = %v, want %s (%v)", p["field"], tc.field, p)
				}
				if tc.status == 422 && (p["availableBalance"] != json.Number("1000.00") || p["requestedAmount"] != json.Number("1500.00")) {
					t.Errorf("insufficient: %v", p)
				}
			})
		}
		if n := r.withdrawals("usr_alice"); n != 0 || len(r.box.Messages()) != 0 {
			t.Fatalf("refused requests booked %d withdrawals and sent %d mails", n, len(r.box.Messages()))
		}
		// Alice's wizard is still open and usable after all that.
		if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(alice, aliceUSD, "100.00", false)); status != http.StatusOK {
			t.Fatalf("valid submit after refusals: %d %v", status, d)
		}
	})
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestExpiredWizard(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, true)
		id := r.startWizard("tok-alice")
		r.clk.Advance(withdrawwizard.DefaultTTL)
		status, p, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", true))
		if status != http.StatusGone || p["code"] != "EEXPIRED" {
			t.Fatalf("expired wizard: %d %v", status, p)
		}
		// A wizard awaiting its code expires too, even with a fresh code.
		id = r.startWizard("tok-alice")
		if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false)); status != http.StatusOK {
			t.Fatalf("submit: %d %v", status, d)
		}
		r.clk.Advance(withdrawwizard.DefaultTTL - time.Minute)
		if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false)); status != http.StatusOK {
			t.Fatalf("resend: %d %v", status, d)
		}
		code := r.mailedCode("alice@example.com")
		r.clk.Advance(time.Minute)
		if status, p, _ := r.call("POST", "/api/v2/my/withdrawals/wizard", "tok-alice", confirmBody(id, code)); status != http.StatusGone {
			t.Fatalf("confirm on an expired wizard: %d %v", status, p)
		}
		if n := r.withdrawals("usr_alice"); n != 0 {
			t.Fatalf("%d withdrawals, want none", n)
		}
	})
}

func TestConcurrentConfirmationsMakeOneWithdrawal(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, true)
		id := r.startWizard("tok-alice")
		if status, d, _ := r.call("POST", "/api/v2/my/withdrawals", "tok-alice", bankWithdrawal(id, aliceUSD, "100.00", false)); status != http.StatusOK {
			t.Fatalf("submit: %d %v", status, d)
		}
		body := confirmBody(id, r.mailedCode("alice@example.com"))
		type answer struct {
			status int
			id     any
		}
		const n = 4
		answers := make(chan answer, n)
		ready := make(chan struct{})
		for range n {
			go func() {
				<-ready
				req, _ := http.NewRequest("POST", r.base+"/api/v2/my/withdrawals/wizard", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer tok-alice")
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					answers <- answer{status: -1}
					return
				}
				defer resp.Body.Close()
				var out struct {
					Transaction struct {
						ID any `json:"id"`
					} `json:"transaction"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				answers <- answer{resp.StatusCode, out.Transaction.ID}
			}()
		}
		close(ready)
		var first any
		for range n {
			a := <-answers
			if a.status != http.StatusAccepted {
				t.Fatalf("a confirmation answered %d", a.status)
			}
			if first == nil {
				first = a.id
			} else if a.id != first {
				t.Fatalf("confirmations returned %v and %v", first, a.id)
			}
		}
		if got := r.withdrawals("usr_alice"); got != 1 {
			t.Fatalf("%d withdrawals, want 1", got)
		}
	})
}
