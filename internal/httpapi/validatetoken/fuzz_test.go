package validatetoken_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/httpapi/validatetoken"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// FuzzValidateToken posts arbitrary bodies to POST /api/validate-token: it
// never panics, never answers 5xx, answers JSON, and opens a session only
// for the one genuine token the seeds hold (never for another user's
// account).
func FuzzValidateToken(f *testing.F) {
	db := dbtest.Open(f, sqlstore.SQLite, identity.Schema)
	svc, _, _ := identitytest.NewService(f, db, identity.Config{})
	h, err := validatetoken.New(svc, validatetoken.Options{Logger: slog.New(slog.DiscardHandler), RateEvery: time.Nanosecond, RateBurst: 1 << 30,
		Balances: balances{67890: money.New(1000000, money.MustCurrency("USD"))}})
	if err != nil {
		f.Fatal(err)
	}
	anna, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"}})
	if err != nil {
		f.Fatal(err)
	}
	bob, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "bob@example.com", Password: "long enough"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, a := range []identity.NewAccount{
		{UserID: anna.User.ID, Login: 67890, Environment: identity.Live, Currency: "USD"},
		{UserID: bob.User.ID, Login: 11111, Environment: identity.Live, Currency: "USD"},
	} {
		if _, err := svc.LinkAccount(ctx, a); err != nil {
			f.Fatal(err)
		}
	}
	tok, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, "")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"token":"` + tok + `","account":11111}`, `{"token":"` + tok + `","account":67890}`, `{"token":"` + tok + `"}`,
		`{}`, `{"token":""}`, `{"token":"x","account":-1}`, `{"token":"x","account":1e30}`, `{"token":"x","account":"67890"}`,
		`{"token":"' OR '1'='1"}`, `{"token":"<script>alert(1)</script>"}`, `{"token":"\u0000"}`, `null`, `[]`, `{"token":"x"} {}`,
		`{"token":"` + strings.Repeat("A", 5000) + `"}`,
	} {
		f.Add(s, "application/json")
	}
	f.Add(`token=x`, "application/x-www-form-urlencoded")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/api/validate-token", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%q answered %d: %s", body, w.Code, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q answered %d with a body that is not a JSON object: %q", body, w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			if !strings.Contains(body, tok) {
				t.Fatalf("%q opened a session without the genuine token: %s", body, w.Body)
			}
			if login, _ := out["tradingLogin"].(float64); login != 67890 {
				t.Fatalf("%q opened a session on account %v, not Anna's 67890", body, out["tradingLogin"])
			}
		}
	})
}
