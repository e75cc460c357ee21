package sandbox

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// fuzzMark is appended to the fuzzed texts the sandbox shows back; seen
// raw in a page it means a value was not escaped.
const fuzzMark = "<q4v>"

// FuzzAPI drives the sandbox's API with arbitrary payment and payout
// requests, keys and references, then opens the hosted checkout and the
// control page of what was created: nothing panics or answers 5xx, a wrong
// key is always 401, and no value sent through the API (names, emails,
// descriptions, references, return URLs) shows up unescaped in a page.
func FuzzAPI(f *testing.F) {
	db := dbtest.Open(f, sqlstore.SQLite, Schema, jobs.Schema)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	s, err := NewServer(db, Options{BaseURL: srv.URL + Prefix, APIKey: "sk_fuzz", WebhookURL: srv.URL + "/hook", WebhookSecret: "whsec_fuzz",
		Clock: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	s.Routes(mux.Handle)
	f.Add(true, false, "ref_1", "card", "10.00", "USD", "https://cashier.example/return", "Deposit", "T. Rader", "t@example.com", "en")
	f.Add(true, false, "ref_2", "bank-transfer", "0.001", "KWD", "javascript:alert(1)", `"><script>`, "O'Brien", "x", "ar")
	f.Add(true, true, "ref_3", "crypto", "1e3", "BTC", "//evil.example", "", "", "", "")
	f.Add(false, false, "ref_4", "ewallet", "-5", "XXX", "", "", "", "", "")
	f.Add(true, false, "' OR 1=1 --", "card", "99999999999999999999.99", "JPY", "http://127.0.0.1/x", "a\x00b", "\u202e", "", "de")
	f.Add(true, true, "ref_5", "bank-transfer", "50.00", "EUR", "", "", "A. Holder", "", "")
	f.Fuzz(func(t *testing.T, goodKey, payout bool, ref, method, amount, currency, returnURL, description, name, email, lang string) {
		mark := func(v string) string { return v + fuzzMark }
		var body any
		path := Prefix + "/api/payments"
		if payout {
			path = Prefix + "/api/payouts"
			body = createPayoutRequest{Reference: ref, Method: method, Amount: amount, Currency: currency, Description: mark(description),
				Destination: wireDestination{IBAN: "DE89370400440532013000", HolderName: mark(name), WalletID: mark(email)},
				Customer:    wireCustomer{ID: "usr_1", Email: mark(email), Name: mark(name), Country: "DE"}}
		} else {
			body = createPaymentRequest{Reference: ref, Method: method, Amount: amount, Currency: currency, ReturnURL: returnURL,
				Description: mark(description), Customer: wireCustomer{ID: "usr_1", Email: mark(email), Name: mark(name), Country: "DE"}, Lang: lang}
		}
		raw, err := json.Marshal(body)
		if err != nil {
			t.Skip("not representable as JSON")
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		if goodKey {
			req.Header.Set("Authorization", "Bearer sk_fuzz")
		} else {
			req.Header.Set("Authorization", "Bearer "+ref)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("POST %s %s answered %d: %s", path, raw, w.Code, w.Body)
		}
		if !goodKey && w.Code != http.StatusUnauthorized {
			t.Fatalf("POST %s with a wrong key answered %d: %s", path, w.Code, w.Body)
		}
		if w.Code != http.StatusCreated && w.Code != http.StatusOK {
			return
		}
		var out struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.ID == "" {
			t.Fatalf("created answer without an id: %s", w.Body)
		}
		pages := []string{Prefix + "/control/" + url.PathEscape(out.ID), Prefix + "/control"}
		if !payout {
			pages = append(pages, Prefix+"/checkout/"+url.PathEscape(out.ID), Prefix+"/checkout/"+url.PathEscape(out.ID)+"/3ds")
		}
		for _, p := range pages {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
			if w.Code >= 500 {
				t.Fatalf("GET %s after %s answered %d: %s", p, raw, w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), fuzzMark) {
				t.Fatalf("GET %s shows a value of %s unescaped:\n%s", p, raw, w.Body)
			}
			if loc := w.Header().Get("Location"); strings.Contains(loc, fuzzMark) {
				t.Fatalf("GET %s redirects to an unescaped value: %q", p, loc)
			}
		}
	})
}
