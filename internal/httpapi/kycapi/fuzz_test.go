package kycapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/httpapi/kycapi"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// FuzzPutProfile sends arbitrary bodies and user ids to PUT: it never
// panics, never answers 5xx, answers JSON, and whatever it stores is a
// valid profile (a level from 0 to 3, a two-letter country).
func FuzzPutProfile(f *testing.F) {
	db := dbtest.Open(f, sqlstore.SQLite, compliance.Schema)
	svc, err := compliance.New(db, compliance.Options{})
	if err != nil {
		f.Fatal(err)
	}
	h, err := kycapi.New(svc, kycapi.Options{APIKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"level": 2, "country": "DE", "reference": "case-1"}`, `{"level": 0, "country": "gb"}`, `{"level": 3, "country": "DE"}`,
		`{"level": 4, "country": "DE"}`, `{"level": -0, "country": "DE"}`, `{"level": 1e0, "country": "DE"}`, `{"level": 99999999999999999999, "country": "DE"}`,
		`{"level": null, "country": "DE"}`, `{"level": 1, "country": null}`, `{"level": 1, "country": "D\u0000"}`, `{"level": 1, "country": "ÄÖ"}`,
		`{"level": 1, "country": "DE", "reference": "\u0007"}`, `null`, `[]`, `"x"`, `{"level": 1, "country": "DE"} {}`,
	} {
		f.Add("usr_anna", s)
	}
	f.Add("usr%20anna", `{"level": 1, "country": "DE"}`)
	f.Add(strings.Repeat("u", 200), `{"level": 1, "country": "DE"}`)
	f.Fuzz(func(t *testing.T, userID, body string) {
		req := httptest.NewRequest(http.MethodPut, "/api/kyc/v1/users/x", strings.NewReader(body))
		req.URL.Path = "/api/kyc/v1/users/" + userID
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%q %q answered %d: %s", userID, body, w.Code, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q answered %d with a body that is not a JSON object: %q", body, w.Code, w.Body)
		}
		if w.Code != http.StatusOK {
			return
		}
		var p kycapi.ProfileJSON
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Level < 0 || p.Level > compliance.MaxLevel || len(p.Country) != 2 || p.Country != strings.ToUpper(p.Country) || p.Source != compliance.SourceAPI {
			t.Fatalf("%q stored an invalid profile %+v", body, p)
		}
	})
}
