package identity_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/identity/identitytest"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var ctx = context.Background()

func wantCode(t *testing.T, err error, want errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// signUp creates a user with a cTID through the service and returns it.
func signUp(t *testing.T, svc *identity.Service, email string, remember bool) identity.LoginResult {
	t.Helper()
	res, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: email, Password: "correct horse"}, Remember: remember})
	if err != nil {
		t.Fatalf("SignUp(%s): %v", email, err)
	}
	return res
}

func TestCRMToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{CRMPasswords: []string{"old-password-1", "new-password-2"}})
		for _, pw := range []string{"old-password-1", "new-password-2"} {
			tok, exp, err := svc.IssueCRMToken(ctx, pw)
			if err != nil {
				t.Fatalf("IssueCRMToken(%q): %v", pw, err)
			}
			if got := exp.Sub(identitytest.Start); got != 7*24*time.Hour {
				t.Errorf("lifetime = %s, want 168h", got)
			}
			if err := svc.VerifyCRMToken(ctx, tok); err != nil {
				t.Errorf("VerifyCRMToken: %v", err)
			}
		}
		for _, pw := range []string{"", "old-password-", "OLD-PASSWORD-1", "old-password-1 "} {
			_, _, err := svc.IssueCRMToken(ctx, pw)
			wantCode(t, err, errs.Unauthorized)
		}
		tok, _, err := svc.IssueCRMToken(ctx, "old-password-1")
		if err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string]string{"malformed": "abc", "unknown": strings.Repeat("A", 43), "tampered": tok[:42] + "B"} {
			if err := svc.VerifyCRMToken(ctx, bad); errs.CodeOf(err) != errs.Unauthorized {
				t.Errorf("%s token: error %v, want EUNAUTHORIZED", name, err)
			}
		}
		clk.Advance(7*24*time.Hour - time.Second)
		if err := svc.VerifyCRMToken(ctx, tok); err != nil {
			t.Fatalf("one second before expiry: %v", err)
		}
		clk.Advance(time.Second)
		wantCode(t, svc.VerifyCRMToken(ctx, tok), errs.Unauthorized)

		fresh, _, err := svc.IssueCRMToken(ctx, "new-password-2")
		if err != nil {
			t.Fatal(err)
		}
		n, err := svc.RevokeCRMTokens(ctx)
		if err != nil || n < 1 {
			t.Fatalf("RevokeCRMTokens = %d, %v", n, err)
		}
		wantCode(t, svc.VerifyCRMToken(ctx, fresh), errs.Unauthorized)
	}, identity.Schema)
}

// TestCRMTokenRetiredWithItsPassword: removing a password from the settings
// invalidates the tokens issued for it, but not those of the other.
func TestCRMTokenRetiredWithItsPassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		before, _, _ := identitytest.NewService(t, db, identity.Config{CRMPasswords: []string{"old-password-1", "new-password-2"}})
		oldTok, _, err := before.IssueCRMToken(ctx, "old-password-1")
		if err != nil {
			t.Fatal(err)
		}
		newTok, _, err := before.IssueCRMToken(ctx, "new-password-2")
		if err != nil {
			t.Fatal(err)
		}
		after, _, _ := identitytest.NewService(t, db, identity.Config{CRMPasswords: []string{"new-password-2"}})
		wantCode(t, after.VerifyCRMToken(ctx, oldTok), errs.Unauthorized)
		if err := after.VerifyCRMToken(ctx, newTok); err != nil {
			t.Errorf("token of the remaining password: %v", err)
		}
	}, identity.Schema)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  identity.Config
		ok   bool
	}{
		{"defaults", identity.DefaultConfig(), true},
		{"crm token shorter than a week", func() identity.Config { c := identity.DefaultConfig(); c.CRMTokenTTL = 6 * 24 * time.Hour; return c }(), false},
		{"unknown mode", func() identity.Config { c := identity.DefaultConfig(); c.Mode = "oauth"; return c }(), false},
		{"short crm password", func() identity.Config { c := identity.DefaultConfig(); c.CRMPasswords = []string{"short"}; return c }(), false},
		{"ot token of an hour", func() identity.Config { c := identity.DefaultConfig(); c.OTTokenTTL = time.Hour; return c }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestLoginTokenExchange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "Anna@Example.com", true)
		if res.User.CTIDUserID == 0 || ct.Users[res.User.CTIDUserID].Email != "Anna@Example.com" {
			t.Fatalf("signup did not create a cTID: user %+v, cTrader %+v", res.User, ct.Users)
		}
		ex, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
		if err != nil {
			t.Fatalf("ExchangeLoginToken: %v", err)
		}
		if ex.CTIDUserID != res.User.CTIDUserID || !identity.WellFormedToken(ex.AccessToken) || !identity.WellFormedToken(ex.InAppToken) {
			t.Fatalf("exchange = %+v, want userId %d and both tokens", ex, res.User.CTIDUserID)
		}
		_, err = svc.ExchangeLoginToken(ctx, res.LoginToken)
		wantCode(t, err, errs.NotFound)

		// Without "keep me logged in" there is no accessToken.
		lr, err := svc.Login(ctx, "anna@example.COM", "correct horse", false)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if lr.LoginToken == res.LoginToken {
			t.Error("a second login reused the one-time token")
		}
		ex2, err := svc.ExchangeLoginToken(ctx, lr.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		if ex2.AccessToken != "" || ex2.InAppToken == "" || ex2.InAppToken == ex.InAppToken {
			t.Errorf("exchange without remember = %+v, want no accessToken and a new inappToken", ex2)
		}
		// Verified repeatedly.
		for i := range 3 {
			a, err := svc.VerifyAccessToken(ctx, ex.AccessToken)
			if err != nil || a.CTIDUserID != res.User.CTIDUserID || a.InAppToken == "" {
				t.Fatalf("VerifyAccessToken #%d = %+v, %v", i+1, a, err)
			}
		}
	}, identity.Schema)
}

// TestOTTokenConsumedOnceUnderConcurrency: 50 parallel exchanges of one
// token yield exactly one success; the others see "not found".
func TestOTTokenConsumedOnceUnderConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, _ := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "race@example.com", true)
		const n = 50
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
				results <- err
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		ok, notFound := 0, 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case errs.Is(err, errs.NotFound):
				notFound++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || notFound != n-1 {
			t.Fatalf("successes = %d, not found = %d; want 1 and %d", ok, notFound, n-1)
		}
	}, identity.Schema)
}

func TestOTTokenExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "clock@example.com", false)
		late, _, err := svc.IssueLoginToken(ctx, res.User.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(59 * time.Second)
		if _, err := svc.ExchangeLoginToken(ctx, res.LoginToken); err != nil {
			t.Fatalf("after 59 s: %v", err)
		}
		clk.Advance(2 * time.Second)
		_, err = svc.ExchangeLoginToken(ctx, late)
		wantCode(t, err, errs.Expired)
	}, identity.Schema)
}

func TestExchangeErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, _ := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "err@example.com", false)
		inapp, _, err := svc.IssueInAppToken(ctx, res.User.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			code string
			want errs.Code
		}{
			{"malformed", "not-a-token", errs.Invalid},
			{"unknown", strings.Repeat("A", 43), errs.NotFound},
			{"in-app token is not a login token", inapp, errs.NotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := svc.ExchangeLoginToken(ctx, tc.code)
				wantCode(t, err, tc.want)
			})
		}
		if err := svc.SetStatus(ctx, res.User.ID, identity.StatusDisabled); err != nil {
			t.Fatal(err)
		}
		_, err = svc.ExchangeLoginToken(ctx, res.LoginToken)
		wantCode(t, err, errs.NotFound) // disabling revoked the pending token
	}, identity.Schema)
}

func TestGenerateInAppOT(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
		anna := signUp(t, svc, "anna@example.com", true)
		bob := signUp(t, svc, "bob@example.com", true)

		// Before any inappToken was issued, none is needed.
		if _, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, ""); err != nil {
			t.Fatalf("generate before any inappToken: %v", err)
		}
		annaEx, err := svc.ExchangeLoginToken(ctx, anna.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		bobEx, err := svc.ExchangeLoginToken(ctx, bob.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, annaEx.InAppToken)
		if err != nil || !identity.WellFormedToken(tok) {
			t.Fatalf("GenerateInAppOT = %q, %v", tok, err)
		}
		tok2, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, annaEx.InAppToken)
		if err != nil || tok2 == tok {
			t.Fatalf("second token %q (%v) must differ from the first", tok2, err)
		}
		tests := []struct {
			name  string
			ctid  int64
			inapp string
			want  errs.Code
		}{
			{"unknown user", 42, annaEx.InAppToken, errs.NotFound},
			{"missing inappToken once issued", anna.User.CTIDUserID, "", errs.Forbidden},
			{"someone else's inappToken", anna.User.CTIDUserID, bobEx.InAppToken, errs.Forbidden},
			{"unknown inappToken", anna.User.CTIDUserID, strings.Repeat("Q", 43), errs.Forbidden},
			{"malformed inappToken", anna.User.CTIDUserID, "short", errs.Invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := svc.GenerateInAppOT(ctx, tc.ctid, tc.inapp)
				wantCode(t, err, tc.want)
			})
		}
		clk.Advance(30*24*time.Hour + time.Second)
		_, err = svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, annaEx.InAppToken)
		wantCode(t, err, errs.Expired)
	}, identity.Schema)
}

func TestLogoutRevokesTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, _ := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "out@example.com", true)
		ex, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := svc.GenerateInAppOT(ctx, res.User.CTIDUserID, ex.InAppToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Logout(ctx, res.User.CTIDUserID, ex.AccessToken); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		_, err = svc.VerifyAccessToken(ctx, ex.AccessToken)
		wantCode(t, err, errs.NotFound)
		_, err = svc.GenerateInAppOT(ctx, res.User.CTIDUserID, ex.InAppToken)
		wantCode(t, err, errs.Forbidden)
		_, err = svc.OpenInApp(ctx, pending, 0)
		wantCode(t, err, errs.NotFound)
		_, err = svc.Logout(ctx, 999, "")
		wantCode(t, err, errs.NotFound)
	}, identity.Schema)
}

func TestRevokeAccessToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{AccessTokenTTL: time.Hour})
		res := signUp(t, svc, "rev@example.com", true)
		ex, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		second, err := svc.Login(ctx, "rev@example.com", "correct horse", true)
		if err != nil {
			t.Fatal(err)
		}
		ex2, err := svc.ExchangeLoginToken(ctx, second.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.RevokeAccessToken(ctx, ex.AccessToken); err != nil {
			t.Fatal(err)
		}
		_, err = svc.VerifyAccessToken(ctx, ex.AccessToken)
		wantCode(t, err, errs.NotFound)
		_, err = svc.GenerateInAppOT(ctx, res.User.CTIDUserID, ex.InAppToken)
		wantCode(t, err, errs.Forbidden)
		if _, err := svc.VerifyAccessToken(ctx, ex2.AccessToken); err != nil {
			t.Fatalf("the other device's token: %v", err)
		}
		clk.Advance(time.Hour)
		_, err = svc.VerifyAccessToken(ctx, ex2.AccessToken)
		wantCode(t, err, errs.Expired)
	}, identity.Schema)
}

func TestLoginLockout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{LockoutThreshold: 3, LockoutPeriod: 10 * time.Minute})
		signUp(t, svc, "lock@example.com", false)
		_, err := svc.Login(ctx, "nobody@example.com", "correct horse", false)
		wantCode(t, err, errs.Unauthorized)
		for range 3 {
			_, err := svc.Login(ctx, "lock@example.com", "wrong password", false)
			wantCode(t, err, errs.Unauthorized)
		}
		_, err = svc.Login(ctx, "lock@example.com", "correct horse", false)
		wantCode(t, err, errs.RateLimited)
		clk.Advance(10 * time.Minute)
		if _, err := svc.Login(ctx, "lock@example.com", "correct horse", false); err != nil {
			t.Fatalf("after the lockout period: %v", err)
		}
		// A success resets the count: two more failures do not lock.
		for range 2 {
			_, err := svc.Login(ctx, "lock@example.com", "wrong password", false)
			wantCode(t, err, errs.Unauthorized)
		}
		if _, err := svc.Login(ctx, "lock@example.com", "correct horse", false); err != nil {
			t.Fatalf("after two failures: %v", err)
		}
	}, identity.Schema)
}

func TestSignUpValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{})
		signUp(t, svc, "taken@example.com", false)
		tests := []struct {
			name string
			in   identity.SignUp
			want errs.Code
		}{
			{"bad email", identity.SignUp{NewUser: identity.NewUser{Email: "not-an-email", Password: "long enough"}}, errs.Invalid},
			{"short password", identity.SignUp{NewUser: identity.NewUser{Email: "a@example.com", Password: "short"}}, errs.Invalid},
			{"apple relay", identity.SignUp{NewUser: identity.NewUser{Email: "x@privaterelay.appleid.com", Password: "long enough"}}, errs.Invalid},
			{"taken, other case", identity.SignUp{NewUser: identity.NewUser{Email: "TAKEN@example.com", Password: "long enough"}}, errs.Conflict},
			{"bad currency", identity.SignUp{NewUser: identity.NewUser{Email: "c@example.com", Password: "long enough"},
				Account: &identity.AccountRequest{Environment: identity.Demo, Currency: "XYZ1"}}, errs.Invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := svc.SignUp(ctx, tc.in)
				wantCode(t, err, tc.want)
			})
		}
		if len(ct.Users) != 1 {
			t.Errorf("cTrader has %d cTIDs, want only the one valid signup", len(ct.Users))
		}
	}, identity.Schema)
}

func TestSignUpWithAccountAndAttribution(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{})
		res, err := svc.SignUp(ctx, identity.SignUp{
			NewUser: identity.NewUser{Email: "ib@example.com", Password: "long enough", Language: "de-AT",
				Attribution: identity.Attribution{PartnerID: "IB-77", Source: "iOS", UTMCampaign: "spring"}},
			Account: &identity.AccountRequest{Environment: identity.Demo, Currency: "eur"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Account == nil || res.AccountErr != nil {
			t.Fatalf("account = %+v, err %v", res.Account, res.AccountErr)
		}
		if link, ok := ct.Links[res.Account.Login]; !ok || link.UserID != res.User.CTIDUserID || link.Environment != "demo" {
			t.Errorf("link at cTrader = %+v, want the new account linked to cTID %d", link, res.User.CTIDUserID)
		}
		if ct.Partners[res.User.CTIDUserID] != "IB-77" {
			t.Errorf("partner at cTrader = %q, want IB-77", ct.Partners[res.User.CTIDUserID])
		}
		got, err := svc.UserByEmail(ctx, "IB@example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := identity.Attribution{PartnerID: "IB-77", Source: "iOS", UTMCampaign: "spring"}
		if diff := cmp.Diff(want, got.Attribution); diff != "" || got.Language != "de" {
			t.Errorf("stored attribution (-want +got):\n%s; language %q", diff, got.Language)
		}
		accounts, err := svc.Accounts(ctx, res.User.ID)
		if err != nil || len(accounts) != 1 || accounts[0].Currency != "EUR" || accounts[0].CTIDTraderAccountID == 0 {
			t.Fatalf("accounts = %+v, %v", accounts, err)
		}
	}, identity.Schema)
}

// TestSignUpWhenCTraderIsDown: the user is kept and gets the cTID at the
// next login.
func TestSignUpWhenCTraderIsDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{})
		ct.SetFail(errs.E(errs.Unavailable, "fake", "down"))
		_, err := svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "later@example.com", Password: "long enough"}})
		wantCode(t, err, errs.Unavailable)
		ct.SetFail(nil)
		lr, err := svc.Login(ctx, "later@example.com", "long enough", false)
		if err != nil {
			t.Fatal(err)
		}
		if lr.User.CTIDUserID == 0 {
			t.Fatal("login did not create the missing cTID")
		}
	}, identity.Schema)
}

func TestOpenInAppSSO(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
		anna := signUp(t, svc, "anna@example.com", false)
		bob := signUp(t, svc, "bob@example.com", false)
		link := func(u identity.User, login int64) {
			if _, err := svc.LinkAccount(ctx, identity.NewAccount{UserID: u.ID, Login: login, Environment: identity.Live, Currency: "USD"}); err != nil {
				t.Fatal(err)
			}
		}
		link(anna.User, 1001)
		link(anna.User, 1002)
		link(bob.User, 2001)
		gen := func() string {
			tok, err := svc.GenerateInAppOT(ctx, anna.User.CTIDUserID, "")
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		tok := gen()
		sess, err := svc.OpenInApp(ctx, tok, 1002)
		if err != nil {
			t.Fatalf("OpenInApp: %v", err)
		}
		if sess.UserID != anna.User.ID || sess.Account != 1002 || sess.Mode != identity.ModeSSO || !identity.WellFormedToken(sess.Token) {
			t.Fatalf("session = %+v", sess)
		}
		_, err = svc.OpenInApp(ctx, tok, 1002)
		wantCode(t, err, errs.NotFound)

		got, err := svc.Session(ctx, sess.Token)
		if err != nil || got.Account != 1002 || got.UserID != anna.User.ID {
			t.Fatalf("Session = %+v, %v", got, err)
		}
		tests := []struct {
			name    string
			account int64
			want    errs.Code
		}{
			{"someone else's account", 2001, errs.Forbidden},
			{"nobody's account", 9999, errs.NotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := svc.OpenInApp(ctx, gen(), tc.account)
				wantCode(t, err, tc.want)
			})
		}
		_, err = svc.OpenInApp(ctx, "garbage", 1001)
		wantCode(t, err, errs.Invalid)
		late := gen()
		clk.Advance(61 * time.Second)
		_, err = svc.OpenInApp(ctx, late, 1001)
		wantCode(t, err, errs.Expired)

		clk.Advance(30*time.Minute - 61*time.Second)
		_, err = svc.Session(ctx, sess.Token)
		wantCode(t, err, errs.Expired)
	}, identity.Schema)
}

func TestOpenInAppHandoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{Mode: identity.ModeHandoff})
		ct.Currency[7001] = "GBP"
		ct.AddHandoffToken("ctrader-token-1", identity.HandoffIdentity{UserID: 555, Email: "new@example.com", TradingLogin: 7001})
		sess, err := svc.OpenInApp(ctx, "ctrader-token-1", 7001)
		if err != nil {
			t.Fatalf("OpenInApp: %v", err)
		}
		u, err := svc.UserByCTID(ctx, 555)
		if err != nil || sess.UserID != u.ID || sess.Account != 7001 || sess.Mode != identity.ModeHandoff {
			t.Fatalf("session %+v for user %+v (%v)", sess, u, err)
		}
		acc, err := svc.AccountOf(ctx, u.ID, 7001)
		if err != nil || acc.Currency != "GBP" {
			t.Fatalf("adopted account = %+v, %v", acc, err)
		}
		_, err = svc.OpenInApp(ctx, "ctrader-token-1", 7001)
		wantCode(t, err, errs.NotFound)

		// Another cTrader user may not open the first user's account.
		ct.Currency[7002] = "USD"
		ct.AddHandoffToken("ctrader-token-2", identity.HandoffIdentity{UserID: 556, Email: "other@example.com", TradingLogin: 7002})
		_, err = svc.OpenInApp(ctx, "ctrader-token-2", 7001)
		wantCode(t, err, errs.Forbidden)
		// And cTrader's tradingLogin cannot claim a login we know is someone else's.
		ct.AddHandoffToken("ctrader-token-3", identity.HandoffIdentity{UserID: 556, Email: "other@example.com", TradingLogin: 7001})
		_, err = svc.OpenInApp(ctx, "ctrader-token-3", 0)
		wantCode(t, err, errs.Forbidden)
		// An existing local user is matched by e-mail and gets the cTID.
		local, err := svc.CreateUser(ctx, identity.NewUser{Email: "local@example.com", Password: "long enough"})
		if err != nil {
			t.Fatal(err)
		}
		ct.Currency[7003] = "EUR"
		ct.AddHandoffToken("ctrader-token-4", identity.HandoffIdentity{UserID: 557, Email: "LOCAL@example.com", TradingLogin: 7003})
		sess, err = svc.OpenInApp(ctx, "ctrader-token-4", 0)
		if err != nil || sess.UserID != local.ID || sess.Account != 7003 {
			t.Fatalf("session = %+v, %v; want local user on 7003", sess, err)
		}
	}, identity.Schema)
}

func TestPasswordReset(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, clk, _ := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "forgot@example.com", true)
		ex, err := svc.ExchangeLoginToken(ctx, res.LoginToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.RequestPasswordReset(ctx, "nobody@example.com")
		wantCode(t, err, errs.NotFound)
		first, err := svc.RequestPasswordReset(ctx, "FORGOT@example.com")
		if err != nil {
			t.Fatal(err)
		}
		second, err := svc.RequestPasswordReset(ctx, "forgot@example.com")
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.CheckResetToken(ctx, first.Token)
		wantCode(t, err, errs.NotFound) // replaced by the second
		if _, err := svc.CheckResetToken(ctx, second.Token); err != nil {
			t.Fatalf("CheckResetToken: %v", err)
		}
		_, err = svc.ResetPassword(ctx, second.Token, "short")
		wantCode(t, err, errs.Invalid)
		if _, err := svc.ResetPassword(ctx, second.Token, "a brand new secret"); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		_, err = svc.ResetPassword(ctx, second.Token, "another new secret")
		wantCode(t, err, errs.NotFound)
		_, err = svc.Login(ctx, "forgot@example.com", "correct horse", false)
		wantCode(t, err, errs.Unauthorized)
		if _, err := svc.Login(ctx, "forgot@example.com", "a brand new secret", false); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
		_, err = svc.VerifyAccessToken(ctx, ex.AccessToken)
		wantCode(t, err, errs.NotFound) // old devices must log in again

		third, err := svc.RequestPasswordReset(ctx, "forgot@example.com")
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * time.Minute)
		_, err = svc.ResetPassword(ctx, third.Token, "yet another secret")
		wantCode(t, err, errs.Expired)
	}, identity.Schema)
}

func TestChangeEmailTellsCTrader(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, ct := identitytest.NewService(t, db, identity.Config{})
		res := signUp(t, svc, "old@example.com", false)
		signUp(t, svc, "taken@example.com", false)
		wantCode(t, svc.ChangeEmail(ctx, res.User.ID, "Taken@example.com"), errs.Conflict)
		if err := svc.ChangeEmail(ctx, res.User.ID, "new@example.com"); err != nil {
			t.Fatal(err)
		}
		if got := ct.Users[res.User.CTIDUserID].Email; got != "new@example.com" {
			t.Errorf("cTrader has %q, want new@example.com", got)
		}
		if _, err := svc.UserByEmail(ctx, "NEW@example.com"); err != nil {
			t.Errorf("lookup by new address: %v", err)
		}
	}, identity.Schema)
}

func TestCLI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		svc, _, _ := identitytest.NewService(t, db, identity.Config{})
		run := func(cmd string, stdin string, args ...string) (string, error) {
			var out, errOut bytes.Buffer
			var err error
			if cmd == "users" {
				err = identity.UsersCommand(ctx, svc, args, strings.NewReader(stdin), &out, &errOut)
			} else {
				err = identity.AccountsCommand(ctx, svc, args, &out, &errOut)
			}
			return out.String(), err
		}
		if _, err := run("users", "s3cret-password\n", "add", "--email", "ops@example.com", "--password-stdin", "--lang", "es", "--ctid", "777"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Login(ctx, "ops@example.com", "s3cret-password", false); err != nil {
			t.Fatalf("login with the password from stdin: %v", err)
		}
		if _, err := run("accounts", "", "link", "--user", "ops@example.com", "--login", "4242", "--env", "live", "--currency", "usd"); err != nil {
			t.Fatal(err)
		}
		out, err := run("accounts", "", "list", "--user", "ops@example.com")
		if err != nil || !strings.Contains(out, "4242") || !strings.Contains(out, "USD") {
			t.Fatalf("accounts list = %q, %v", out, err)
		}
		if _, err := run("users", "", "disable", "ops@example.com"); err != nil {
			t.Fatal(err)
		}
		out, err = run("users", "", "list")
		if err != nil || !strings.Contains(out, "ops@example.com") || !strings.Contains(out, "disabled") || !strings.Contains(out, "777") {
			t.Fatalf("users list = %q, %v", out, err)
		}
		_, err = svc.Login(ctx, "ops@example.com", "s3cret-password", false)
		wantCode(t, err, errs.Forbidden)
		_, err = run("users", "", "frobnicate")
		wantCode(t, err, errs.Invalid)
		_, err = run("accounts", "", "link", "--user", "ops@example.com", "--login", "4242", "--env", "live", "--currency", "USD")
		wantCode(t, err, errs.Conflict)
	}, identity.Schema)
}
