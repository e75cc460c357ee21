package clientapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/banking"
	"github.com/opencashier/cashier/internal/clientauth"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpapi/clientapi"
	"github.com/opencashier/cashier/internal/idempotency"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
	"github.com/opencashier/cashier/internal/sqlstore"
)

var schemas = []sqlstore.Schema{identity.Schema, clientauth.Schema, idempotency.Schema, banking.Schema}

// fakeRail records micro-deposits; Fail makes it refuse.
type fakeRail struct {
	mu   sync.Mutex
	sent map[string]money.Amount
	Fail bool
}

func (f *fakeRail) SendMicroDeposit(_ context.Context, m banking.MicroDeposit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail {
		return errs.E(errs.Unavailable, "fakeRail", "rail down")
	}
	f.sent[m.ID] = m.Amount
	return nil
}

func (f *fakeRail) amounts(bankID string) [2]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return [2]string{f.sent[bankID+":1"].Decimal(), f.sent[bankID+":2"].Decimal()}
}

// fakeBalances gives each login a withdrawable amount in minor units.
type fakeBalances struct {
	mu sync.Mutex
	by map[int64]int64
}

func (f *fakeBalances) Withdrawable(_ context.Context, _ string, login int64, cur money.Currency) (money.Amount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return money.New(f.by[login], cur), nil
}

type user struct {
	id, token string
	login     int64 // a USD trading account
	signal    int64 // a signal account
}

type rig struct {
	url      string
	clock    *clock.Fake
	rail     *fakeRail
	balances *fakeBalances
	banking  *banking.Service
	ann, bob user
	banks    int // banks linked with linkBank
}

func newRig(t testing.TB, db *sqlstore.DB) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{clock: clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		rail: &fakeRail{sent: map[string]money.Amount{}}, balances: &fakeBalances{by: map[int64]int64{}}}
	cfg := identity.DefaultConfig()
	cfg.Password = identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	ids, err := identity.New(identity.Deps{DB: db, Clock: r.clock}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := clientauth.New(clientauth.Options{DB: db, Passwords: clientauth.IdentityPasswords{Identity: ids}, Clock: r.clock,
		AccessTTL: 7 * 24 * time.Hour}) // token expiry is clientauth's test; here the clock moves for the records
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.New(db, idempotency.Options{Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.banking, err = banking.New(banking.Options{DB: db, Accounts: ids, Balances: r.balances, Rail: r.rail, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	h, err := clientapi.New(clientapi.Deps{Auth: auth, Idempotency: idem, Banking: r.banking})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	clientauth.NewHandler(auth, nil).Routes(mux)
	srv := httptest.NewServer(openapitest.New(t, openapitest.Options{}).Handler(mux)) // 127.0.0.1
	t.Cleanup(srv.Close)
	r.url = srv.URL

	login := int64(7000001)
	for _, u := range []*user{&r.ann, &r.bob} {
		email := map[*user]string{&r.ann: "ann@example.com", &r.bob: "bob@example.com"}[u]
		created, err := ids.CreateUser(ctx, identity.NewUser{Email: email, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		u.id, u.login, u.signal = created.ID, login, login+1
		if _, err := ids.LinkAccount(ctx, identity.NewAccount{UserID: u.id, Login: u.signal, Environment: identity.Live, Currency: "USD", Kind: identity.KindSignal}); err != nil {
			t.Fatal(err)
		}
		if _, err := ids.LinkAccount(ctx, identity.NewAccount{UserID: u.id, Login: u.login, Environment: identity.Live, Currency: "USD"}); err != nil {
			t.Fatal(err)
		}
		login += 10
		st, m, _ := r.do(t, "POST", "/api/v2/auth/login", "", "", `{"email":"`+email+`","password":"correct horse battery"}`)
		if st != 200 {
			t.Fatalf("login: %d %v", st, m)
		}
		u.token = m["accessToken"].(string)
	}
	return r
}

// do sends a request and returns the status, the JSON object (nil if the
// body is not one) and the raw body.
func (r *rig) do(t testing.TB, method, path, token, key, body string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&m)
	return res.StatusCode, m, string(raw)
}

// ibans are valid IBANs for linkBank, one per bank of a rig (the tests
// use DE89… and GB82… directly).
var ibans = []string{"GB29NWBK60161331926819", "FR1420041010050500013M02606", "NL91ABNA0417164300", "ES9121000418450200051332",
	"IT60X0542811101000000123456", "BE68539007547034", "CH9300762011623852957", "AT611904300234573201"}

// linkBank links a bank for u and returns its id.
func (r *rig) linkBank(t testing.TB, u user, name string) string {
	t.Helper()
	iban := ibans[r.banks%len(ibans)]
	r.banks++
	st, m, raw := r.do(t, "POST", "/banks", u.token, "", `{"bankName":"`+name+`","accountHolderName":"Ann Lee","iban":"`+iban+`"}`)
	if st != 201 {
		t.Fatalf("link bank: %d %s", st, raw)
	}
	return m["bankId"].(string)
}

// verifiedBank links and verifies a bank for u.
func (r *rig) verifiedBank(t testing.TB, u user, name string) string {
	t.Helper()
	id := r.linkBank(t, u, name)
	a := r.rail.amounts(id)
	if st, _, raw := r.do(t, "POST", "/banks/"+id+"/verify", u.token, "", `{"amounts":[`+a[0]+`,`+a[1]+`]}`); st != 200 {
		t.Fatalf("verify: %d %s", st, raw)
	}
	return id
}
