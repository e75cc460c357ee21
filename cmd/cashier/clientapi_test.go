package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
)

// apiCall sends a JSON request with a bearer token (and an
// Idempotency-Key when key is not empty) and returns the response (body
// closed) and its body.
func apiCall(t *testing.T, method, url, token, key string, in any) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	// Every exchange is checked against the OpenAPI document (internal/openapi).
	resp, err := (&http.Client{Timeout: client.Timeout, Transport: openapitest.New(t, openapitest.Options{}).Transport(nil)}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

var mailLinkRE = regexp.MustCompile(`<a href="(\d+)">[^<]*— ([^<]+) — `)
var codeInTextRE = regexp.MustCompile(`confirmation code is (\d{6})`)

// mailedCode returns the code in the newest mail to `to` on the demo's
// mailbox pages, or "" when there is none.
func mailedCode(t *testing.T, d *demoRun, to string) string {
	t.Helper()
	_, list := get(t, d.man.MailboxURL, nil)
	for _, m := range mailLinkRE.FindAllStringSubmatch(list, -1) { // newest first
		if m[2] != to {
			continue
		}
		_, page := get(t, d.man.MailboxURL+m[1], nil)
		if c := codeInTextRE.FindStringSubmatch(page); c != nil {
			return c[1]
		}
	}
	return ""
}

// TestDemoClientAPIEndToEnd drives the client API of the demo as a broker's
// app would: login at /api/v2/auth/login, the seed 002 withdrawal wizard
// confirmed with the code from the demo mailbox (the WITHDRAW reaches the
// simulator), then seed 003: a bank linked and verified with its
// micro-deposit amounts (read through banking's staff function), a cash
// transfer and the history at /transactions.
func TestDemoClientAPIEndToEnd(t *testing.T) {
	d := startDemo(t)
	base := d.man.CashierURL
	alice := d.man.Users[0]
	var acc ManifestAccount
	for _, a := range alice.Accounts {
		if a.Currency == "USD" {
			acc = a
		}
	}
	if acc.Login == 0 {
		t.Fatalf("demo user %s has no USD account: %+v", alice.Email, alice.Accounts)
	}

	// Login.
	if resp, _ := apiCall(t, http.MethodGet, base+"/api/v2/my/withdrawals/wizard", "", "", nil); resp.StatusCode != 401 {
		t.Errorf("the wizard without a token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := apiCall(t, http.MethodPost, base+"/api/v2/auth/login", "", "", map[string]string{"email": alice.Email, "password": "wrong-password"}); resp.StatusCode != 401 {
		t.Errorf("login with a wrong password = %d, want 401", resp.StatusCode)
	}
	resp, body := apiCall(t, http.MethodPost, base+"/api/v2/auth/login", "", "", map[string]string{"email": alice.Email, "password": alice.Password})
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	if resp.StatusCode != 200 {
		t.Fatalf("login = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &tok)
	token := tok.AccessToken

	// Seed 002: the withdrawal wizard with an e-mailed code.
	resp, body = apiCall(t, http.MethodGet, base+"/api/v2/my/withdrawals/wizard", token, "", nil)
	var start struct{ UUID string }
	if resp.StatusCode != 200 {
		t.Fatalf("start the wizard = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &start)
	submit := map[string]any{"accountId": acc.Login, "methodId": 2, "amount": json.Number("100.00"), "currencyCode": 840, "uuid": start.UUID,
		"data": map[string]string{"iban": "DE89 3704 0044 0532 0130 00", "holderName": "Alice Archer"}}
	resp, body = apiCall(t, http.MethodPost, base+"/api/v2/my/withdrawals", token, "wiz-submit-1", submit)
	var delivery struct {
		Sent      int
		Recipient struct{ Email, Method string }
	}
	if resp.StatusCode != 200 {
		t.Fatalf("submit = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &delivery)
	if delivery.Sent != 1 || delivery.Recipient.Method != "email" || delivery.Recipient.Email != alice.Email {
		t.Fatalf("submit answered %s, want a code e-mailed to %s", body, alice.Email)
	}
	replayed, again := apiCall(t, http.MethodPost, base+"/api/v2/my/withdrawals", token, "wiz-submit-1", submit)
	if replayed.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again, body) {
		t.Errorf("the same Idempotency-Key again = %d %s (replayed %q), want the first answer replayed", replayed.StatusCode, again, replayed.Header.Get("Idempotent-Replayed"))
	}
	code := mailedCode(t, d, alice.Email)
	if code == "" {
		t.Fatal("no code in the demo mailbox")
	}
	if len(simHistory(t, d, acc.Login)) != 0 {
		t.Fatal("the platform moved money before the code")
	}
	resp, body = apiCall(t, http.MethodPost, base+"/api/v2/my/withdrawals/wizard", token, "wiz-confirm-1",
		map[string]any{"data": map[string]string{"action": "code", "code": code, "uuid": start.UUID}})
	var done struct {
		Done        bool
		Transaction struct{ ID string }
	}
	if resp.StatusCode != 202 {
		t.Fatalf("confirm = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &done)
	if !done.Done || !strings.HasPrefix(done.Transaction.ID, "wd_") {
		t.Fatalf("confirm answered %s, want done with the withdrawal", body)
	}
	eventually(t, "the WITHDRAW on the simulator", func() bool { return len(simHistory(t, d, acc.Login)) > 0 })
	if h := simHistory(t, d, acc.Login); len(h) != 1 || h[0].Type != "WITHDRAW" || h[0].Delta != -10000 {
		t.Errorf("simulator history = %+v, want one WITHDRAW of 100.00", h)
	}

	// Seed 003: link a bank and verify it with the micro-deposits.
	resp, body = apiCall(t, http.MethodPost, base+"/banks", token, "bank-1",
		map[string]string{"bankName": "Demo Bank", "accountHolderName": "Alice Archer", "iban": "DE89 3704 0044 0532 0130 00"})
	var bank struct {
		BankID, Status string
	}
	if resp.StatusCode != 201 {
		t.Fatalf("link a bank = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &bank)
	if bank.Status != string(banking.BankPendingVerification) {
		t.Fatalf("the new bank is %s, want PENDING_VERIFICATION (micro-deposits sent)", bank.Status)
	}
	dbURL := "sqlite:" + filepath.Join(d.dir, "cashier.db")
	out, _, err := run(t, nil, "transfers", "micro-deposits", bank.BankID, "-database-url", dbURL)
	amounts := strings.Fields(out)
	if err != nil || len(amounts) != 2 {
		t.Fatalf("transfers micro-deposits = %q, %v; want the two amounts", out, err)
	}
	resp, body = apiCall(t, http.MethodPost, base+"/banks/"+bank.BankID+"/verify", token, "verify-1",
		map[string]any{"amounts": []json.Number{json.Number(amounts[0]), json.Number(amounts[1])}})
	if resp.StatusCode != 200 {
		t.Fatalf("verify = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &bank)
	if bank.Status != string(banking.BankProcessed) {
		t.Fatalf("after the right amounts the bank is %s, want PROCESSED", bank.Status)
	}

	// A cash transfer and the history.
	transfer := map[string]any{"instructionType": "DEPOSIT", "amount": json.Number("50.00"), "bankId": bank.BankID}
	if resp, body := apiCall(t, http.MethodPost, base+"/cash-transfer", token, "deposit-1", transfer); resp.StatusCode != 200 {
		t.Fatalf("cash-transfer = %d %s", resp.StatusCode, body)
	}
	if resp, _ := apiCall(t, http.MethodPost, base+"/cash-transfer", token, "deposit-1", transfer); resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same deposit with the same key was not replayed")
	}
	resp, body = apiCall(t, http.MethodGet, base+"/transactions", token, "", nil)
	var page struct {
		Results []struct {
			OrderID, TransactionType, Status, BankID string
			Amount                                   json.Number
		}
		Pagination struct{ Total int }
	}
	if resp.StatusCode != 200 {
		t.Fatalf("transactions = %d %s", resp.StatusCode, body)
	}
	decode(t, body, &page)
	if page.Pagination.Total != 1 || len(page.Results) != 1 || page.Results[0].TransactionType != "DEPOSIT" ||
		page.Results[0].Amount != "50" || page.Results[0].BankID != bank.BankID {
		t.Errorf("transactions = %s, want the one deposit of 50.00 (the replay made none)", body)
	}

	// The bank rail's outcome, as support staff record it: the deposit is
	// credited once, the books balance.
	order := page.Results[0].OrderID
	out, _, err = run(t, nil, "transfers", "settle", order, "success", "-database-url", dbURL)
	if err != nil || !strings.Contains(out, "is SUCCESS") {
		t.Fatalf("transfers settle = %q, %v", out, err)
	}
	if _, _, err := run(t, nil, "transfers", "settle", order, "success", "-database-url", dbURL); err == nil {
		t.Error("settling the transfer again succeeded, want a conflict")
	}
	eventually(t, "the DEPOSIT on the simulator", func() bool { return len(simHistory(t, d, acc.Login)) == 2 })
	if h := simHistory(t, d, acc.Login); len(h) != 2 || h[1].Type != "DEPOSIT" || h[1].Delta != 5000 || h[1].Balance != 95000 {
		t.Errorf("simulator history = %+v, want the WITHDRAW of 100.00 then one DEPOSIT of 50.00 leaving 950.00", h)
	}
	resp, body = apiCall(t, http.MethodGet, base+"/transactions/"+order, token, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"SUCCESS"`) {
		t.Errorf("the settled transfer = %d %s, want SUCCESS", resp.StatusCode, body)
	}
	if out, _, err := run(t, nil, "ledger", "verify", "-database-url", dbURL); err != nil {
		t.Errorf("ledger verify = %v\n%s", err, out)
	}

	// A withdrawal by cash transfer leaves the trading account and is paid
	// out by the sandbox's bank rail (the demo approves it automatically).
	if resp, body := apiCall(t, http.MethodPost, base+"/cash-transfer", token, "withdraw-1",
		map[string]any{"instructionType": "WITHDRAWAL", "amount": json.Number("60.00"), "bankId": bank.BankID}); resp.StatusCode != 200 {
		t.Fatalf("cash-transfer WITHDRAWAL = %d %s", resp.StatusCode, body)
	}
	eventually(t, "the cash-transfer WITHDRAW on the simulator", func() bool { return len(simHistory(t, d, acc.Login)) == 3 })
	if h := simHistory(t, d, acc.Login); len(h) != 3 || h[2].Type != "WITHDRAW" || h[2].Delta != -6000 || h[2].Balance != 89000 {
		t.Errorf("simulator history = %+v, want a third change: WITHDRAW of 60.00 leaving 890.00", h)
	}
	eventually(t, "the withdrawal SUCCESS", func() bool {
		_, body := apiCall(t, http.MethodGet, base+"/transactions?transactionType=WITHDRAWAL&status=SUCCESS", token, "", nil)
		return strings.Contains(string(body), `"total":1`)
	})
	if out, _, err := run(t, nil, "ledger", "verify", "-database-url", dbURL); err != nil {
		t.Errorf("ledger verify after the withdrawal = %v\n%s", err, out)
	}

	// Another user sees none of it.
	bob := d.man.Users[1]
	_, body = apiCall(t, http.MethodPost, base+"/api/v2/auth/login", "", "", map[string]string{"email": bob.Email, "password": bob.Password})
	var bobTok struct {
		AccessToken string `json:"accessToken"`
	}
	decode(t, body, &bobTok)
	if resp, body := apiCall(t, http.MethodGet, base+"/banks/"+bank.BankID, bobTok.AccessToken, "", nil); resp.StatusCode != 404 {
		t.Errorf("Bob reading Alice's bank = %d %s, want 404", resp.StatusCode, body)
	}

	if err := d.stop(t); err != nil {
		t.Errorf("demo returned %v", err)
	}
}
