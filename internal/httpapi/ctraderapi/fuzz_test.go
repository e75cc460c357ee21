package ctraderapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/httpapi/ctraderapi"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// fuzzPaths are the endpoints cTrader calls; the fuzzer picks one by index.
var fuzzPaths = []string{
	"/oauth2/crmApiToken", "/oauth2/onetime/authorize", "/oauth2/authorize",
	"/oauth2/onetime/generate", "/oauth2/logout", "/oauth2/unknown",
}

// FuzzEndpoints sends arbitrary bodies, query strings and content types to
// every cTrader-facing endpoint, with and without a valid crmApiToken: the
// API never panics, never answers 5xx, always answers JSON in the cTrader
// error contract (or 200), and never sends a token in an error.
func FuzzEndpoints(f *testing.F) {
	db := dbtest.Open(f, sqlstore.SQLite, identity.Schema)
	svc, _, _ := identitytest.NewService(f, db, identity.Config{})
	api, err := ctraderapi.New(svc, ctraderapi.Options{Logger: slog.New(slog.DiscardHandler),
		RateEvery: time.Nanosecond, RateBurst: 1 << 30, PasswordEvery: time.Nanosecond, PasswordBurst: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	crm, _, err := svc.IssueCRMToken(ctx, identitytest.CRMPassword)
	if err != nil {
		f.Fatal(err)
	}
	user, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "fuzz@example.com", Password: "long enough"}})
	if err != nil {
		f.Fatal(err)
	}

	for i := range fuzzPaths {
		f.Add(uint8(i), "", `{}`, "application/json", true)
		f.Add(uint8(i), "inappToken=x&userId=1&accessToken=y", `{"password":"x","code":"y","accessToken":"z","userId":1}`, "application/json", true)
		f.Add(uint8(i), "crmApiToken=%00&token=1", `{"userId":"1"}`, "text/plain", false)
		f.Add(uint8(i), "userId=-1", `{"userId":1e309}`, "", true)
		f.Add(uint8(i), "userId=9223372036854775808", `{"code":"' OR 1=1 --"}`, "application/json", true)
		f.Add(uint8(i), "", `{"password":"`+identitytest.CRMPassword+`"}`, "application/json", false)
		f.Add(uint8(i), "", `{"code":"`+user.LoginToken+`"}`, "application/json", true)
		f.Add(uint8(i), "", strings.Repeat("[", 20000), "application/json", true)
	}
	f.Fuzz(func(t *testing.T, which uint8, query, body, contentType string, withCRM bool) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		q, err := url.ParseQuery(query)
		if err != nil {
			q = url.Values{"raw": {query}}
		}
		if withCRM {
			q.Set("crmApiToken", crm)
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.URL.Path = path
		req.URL.RawQuery = q.Encode()
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("POST %s?%s %q answered %d: %s", path, req.URL.RawQuery, body, w.Code, w.Body)
		}
		if w.Code == http.StatusOK && w.Body.Len() == 0 {
			return // logout answers 200 with an empty body
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("POST %s answered %d with a body that is not a JSON object: %q", path, w.Code, w.Body)
		}
		if w.Code != http.StatusOK {
			if out["code"] == nil || out["error"] == nil || out["message"] == nil {
				t.Fatalf("POST %s answered %d outside the error contract: %s", path, w.Code, w.Body)
			}
			for _, k := range []string{"crmApiToken", "accessToken", "inappToken", "token"} {
				if _, ok := out[k]; ok {
					t.Fatalf("error answer carries %q: %s", k, w.Body)
				}
			}
		}
	})
}
