package clientauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/ratelimit"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// fakeSecond is a second factor enrolled for the users in codes; the code
// for each is the map's value.
type fakeSecond struct{ codes map[string]string }

func (f fakeSecond) Enrolled(_ context.Context, userID string) (bool, error) {
	_, ok := f.codes[userID]
	return ok, nil
}

func (f fakeSecond) Verify(_ context.Context, userID, code string) error {
	if f.codes[userID] != code {
		return errs.E(errs.Unauthorized, "fake.Verify", "wrong code")
	}
	return nil
}

type rig struct {
	url   string
	clock *clock.Fake
	users map[string]string // email → id
}

func newRig(t *testing.T, db *sqlstore.DB) *rig {
	t.Helper()
	ctx := context.Background()
	fc := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	cfg := identity.DefaultConfig()
	cfg.Password = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	ids, err := identity.New(identity.Deps{DB: db, Clock: fc}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{clock: fc, users: map[string]string{}}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		u, err := ids.CreateUser(ctx, identity.NewUser{Email: email, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		r.users[email] = u.ID
	}
	svc, err := clientauth.New(clientauth.Options{DB: db, Passwords: clientauth.IdentityPasswords{Identity: ids},
		SecondFactor: fakeSecond{codes: map[string]string{r.users["bob@example.com"]: "123456"}}, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	clientauth.NewHandler(svc, nil).Routes(mux)
	mux.Handle("GET /whoami", clientauth.Middleware(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, clientauth.UserID(r.Context()))
	})))
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(mux)) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *rig) post(t *testing.T, path, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", r.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("POST %s: body %q is not JSON: %v", path, raw, err)
		}
	}
	return res.StatusCode, m
}

func (r *rig) whoami(t *testing.T, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.url+"/whoami", nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

func (r *rig) login(t *testing.T, email, code string) (access, refresh string) {
	t.Helper()
	body := `{"email":"` + email + `","password":"correct horse battery","code":"` + code + `"}`
	st, m := r.post(t, "/api/v2/auth/login", "", body)
	if st != 200 {
		t.Fatalf("login %s: %d %v", email, st, m)
	}
	return m["accessToken"].(string), m["refreshToken"].(string)
}

func TestLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		cases := []struct {
			name, body string
			status     int
			detail     string
		}{
			{"wrong password", `{"email":"ann@example.com","password":"wrong password!"}`, 401, "wrong e-mail address or password"},
			{"unknown user", `{"email":"zed@example.com","password":"correct horse battery"}`, 401, "wrong e-mail address or password"},
			{"malformed JSON", `{"email":`, 400, "malformed JSON: the body ends too early"},
			{"unknown field", `{"email":"ann@example.com","password":"x","admin":true}`, 400, `unknown field "admin"`},
			{"wrong type", `{"email":"ann@example.com","password":12345678}`, 400, `field "password" must be a string, not number`},
			{"missing password", `{"email":"ann@example.com"}`, 400, "email and password are required"},
			{"second factor missing", `{"email":"bob@example.com","password":"correct horse battery"}`, 401, clientauth.ErrSecondFactorRequired},
			{"second factor wrong", `{"email":"bob@example.com","password":"correct horse battery","code":"000000"}`, 401, "wrong code"},
		}
		for _, c := range cases {
			st, m := r.post(t, "/api/v2/auth/login", "", c.body)
			if st != c.status || m["detail"] != c.detail {
				t.Errorf("%s: got %d %v, want %d %q", c.name, st, m["detail"], c.status, c.detail)
			}
		}
		access, _ := r.login(t, "bob@example.com", "123456")
		if st, who := r.whoami(t, access); st != 200 || who != r.users["bob@example.com"] {
			t.Errorf("bob's token: %d %q", st, who)
		}
		access, _ = r.login(t, "ann@example.com", "")
		if st, who := r.whoami(t, access); st != 200 || who != r.users["ann@example.com"] {
			t.Errorf("ann's token: %d %q", st, who)
		}
		if st, _ := r.whoami(t, ""); st != 401 {
			t.Errorf("no token: %d", st)
		}
		if st, _ := r.whoami(t, "garbage"); st != 401 {
			t.Errorf("garbage token: %d", st)
		}
		r.clock.Advance(15 * time.Minute)
		if st, _ := r.whoami(t, access); st != 401 {
			t.Errorf("access token after 15 minutes: %d, want 401", st)
		}
	}, identity.Schema, clientauth.Schema)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		access1, refresh1 := r.login(t, "ann@example.com", "")
		r.clock.Advance(20 * time.Minute)
		st, m := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"`+refresh1+`"}`)
		if st != 200 || m["tokenType"] != "Bearer" || m["expiresIn"] != 900.0 || m["refreshExpiresIn"] != float64(30*24*3600) {
			t.Fatalf("refresh: %d %v", st, m)
		}
		access2, refresh2 := m["accessToken"].(string), m["refreshToken"].(string)
		if refresh2 == refresh1 || access2 == access1 {
			t.Fatal("refresh did not rotate the tokens")
		}
		if st, _ := r.whoami(t, access2); st != 200 {
			t.Errorf("new access token: %d", st)
		}
		// The old refresh token comes back: theft. The family dies.
		if st, m := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"`+refresh1+`"}`); st != 401 {
			t.Errorf("reused refresh token: %d %v", st, m)
		}
		if st, _ := r.whoami(t, access2); st != 401 {
			t.Errorf("access token of a family with a reused refresh token: %d, want 401", st)
		}
		if st, _ := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"`+refresh2+`"}`); st != 401 {
			t.Errorf("newest refresh token of the revoked family: %d, want 401", st)
		}
		// Another login is another family and is unaffected.
		access3, refresh3 := r.login(t, "ann@example.com", "")
		if st, _ := r.whoami(t, access3); st != 200 {
			t.Errorf("fresh login after revocation: %d", st)
		}
		r.clock.Advance(30*24*time.Hour + time.Second)
		if st, _ := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"`+refresh3+`"}`); st != 401 {
			t.Errorf("refresh token after 30 days: %d, want 401", st)
		}
		if st, _ := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"nope"}`); st != 401 {
			t.Errorf("malformed refresh token: %d", st)
		}
	}, identity.Schema, clientauth.Schema)
}

func TestLogout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		access, refresh := r.login(t, "ann@example.com", "")
		other, _ := r.login(t, "ann@example.com", "")
		if st, m := r.post(t, "/api/v2/auth/logout", "", ``); st != 401 {
			t.Errorf("logout without a token: %d %v", st, m)
		}
		if st, m := r.post(t, "/api/v2/auth/logout", access, ``); st != 204 {
			t.Fatalf("logout: %d %v", st, m)
		}
		if st, _ := r.whoami(t, access); st != 401 {
			t.Errorf("access token after logout: %d", st)
		}
		if st, _ := r.post(t, "/api/v2/auth/refresh", "", `{"refreshToken":"`+refresh+`"}`); st != 401 {
			t.Errorf("refresh token after logout: %d", st)
		}
		if st, _ := r.whoami(t, other); st != 200 {
			t.Errorf("another login's token after logout: %d, want 200", st)
		}
		if st, _ := r.post(t, "/api/v2/auth/logout", access, ``); st != 204 {
			t.Errorf("second logout: %d", st)
		}
	}, identity.Schema, clientauth.Schema)
}

func TestRateLimitAndPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		cfg := identity.DefaultConfig()
		cfg.Password = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
		ids, err := identity.New(identity.Deps{DB: db, Clock: fc}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ids.CreateUser(ctx, identity.NewUser{Email: "ann@example.com", Password: "correct horse battery"}); err != nil {
			t.Fatal(err)
		}
		svc, err := clientauth.New(clientauth.Options{DB: db, Passwords: clientauth.IdentityPasswords{Identity: ids}, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		clientauth.NewHandler(svc, ratelimit.New(time.Minute, 2, fc)).Routes(mux)
		srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(mux))
		t.Cleanup(srv.Close)
		r := &rig{url: srv.URL, clock: fc}
		body := `{"email":"ann@example.com","password":"correct horse battery"}`
		var got []int
		for range 3 {
			st, _ := r.post(t, "/api/v2/auth/login", "", body)
			got = append(got, st)
		}
		if want := []int{200, 200, 429}; !slices.Equal(got, want) {
			t.Errorf("three logins in a row with a burst of 2: %v, want %v", got, want)
		}
		fc.Advance(time.Minute)
		if st, _ := r.post(t, "/api/v2/auth/login", "", body); st != 200 {
			t.Errorf("login a minute later: %d", st)
		}
		// 3 logins × 2 tokens; nothing expired more than a day ago yet.
		if n, err := svc.PurgeExpired(ctx, 24*time.Hour); n != 0 || err != nil {
			t.Errorf("purge now: %d %v", n, err)
		}
		fc.Advance(32 * 24 * time.Hour)
		if n, err := svc.PurgeExpired(ctx, 24*time.Hour); n != 6 || err != nil {
			t.Errorf("purge after 32 days: %d %v, want 6", n, err)
		}
	}, identity.Schema, clientauth.Schema)
}
