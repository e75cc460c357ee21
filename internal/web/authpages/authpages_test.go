package authpages_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/web/authpages"
)

func each(t *testing.T, fn func(t *testing.T, s *site)) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) { fn(t, newSite(t, db, authpages.Options{})) }, identity.Schema)
}

// Conformance 6.2.3–6.2.7: lang (unsupported → broker default), theme,
// firstLogin, combined parameters, and the Reset Password control.
func TestScreensInEveryLanguage(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		tests := []struct {
			lang, wantLang, dir, login, signup, reset string
		}{
			{"en", "en", "ltr", "Log in", "Create your account", "Reset password"},
			{"de", "de", "ltr", "Anmelden", "Konto erstellen", "Passwort zurücksetzen"},
			{"es", "es", "ltr", "Iniciar sesión", "Cree su cuenta", "Restablecer contraseña"},
			{"ar", "ar", "rtl", "تسجيل الدخول", "أنشئ حسابك", "إعادة تعيين كلمة المرور"},
			{"ja", "en", "ltr", "Log in", "Create your account", "Reset password"},
		}
		for _, tc := range tests {
			t.Run(tc.lang, func(t *testing.T) {
				html := `<html lang="` + tc.wantLang + `" dir="` + tc.dir + `" data-theme="dark">`
				login := s.get("/auth/login?firstLogin=false&theme=dark&source=iOS&lang=" + tc.lang)
				login.must(t, 200, html, "<h1>"+tc.login+"</h1>", `id="reset-password"`, ">"+tc.reset+"</a>", `class="ctl close"`,
					`name="remember"`, "Demo Broker Ltd")
				signup := s.get("/auth/login?firstLogin=true&theme=dark&lang=" + tc.lang)
				signup.must(t, 200, html, "<h1>"+tc.signup+"</h1>", `name="password_confirm"`, `name="open_account"`)
				reset := s.get("/auth/reset?theme=dark&lang=" + tc.lang)
				reset.must(t, 200, html, "<h1>"+tc.reset+"</h1>", `class="ctl back"`)
				for _, p := range []page{login, signup, reset} {
					for _, banned := range []string{"<script", " style=", "cTrader ID"} {
						if strings.Contains(p.body, banned) {
							t.Errorf("page contains %q", banned)
						}
					}
					// The only inline style is the shared CSS, which the
					// CSP allows by this hash (set by cmd/cashier).
					styles := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(p.body, -1)
					if len(styles) != 1 || httpx.HashSource([]byte(styles[0][1])) != s.style {
						t.Errorf("want one <style> hashing to %s, found %d", s.style, len(styles))
					}
				}
			})
		}
		// Without a theme the page follows the device.
		if p := s.get("/auth/login?theme=neon"); strings.Contains(regexp.MustCompile(`<html[^>]*>`).FindString(p.body), "data-theme") {
			t.Error("an unknown theme was applied")
		}
	})
}

func TestLoginRedirectsToSuccessWithToken(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		u, err := s.svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"}})
		if err != nil {
			t.Fatal(err)
		}
		form := s.get("/auth/login?lang=de&source=Android").form("email", "Anna@Example.com", "password", "long enough", "remember", "on")
		if form.Get("lang") != "de" || form.Get("source") != "Android" {
			t.Fatalf("the form lost the parameters: %v", form)
		}
		p := s.post("/auth/login", form)
		p.must(t, 200, "success page")
		q := s.successHit()
		if q.Get("app") != "1" || !identity.WellFormedToken(q.Get("token")) {
			t.Fatalf("success URL got %v, want its own query plus a token", q)
		}
		ex, err := s.svc.ExchangeLoginToken(ctx, q.Get("token"))
		if err != nil || ex.CTIDUserID != u.User.CTIDUserID || ex.AccessToken == "" {
			t.Fatalf("exchange = %+v, %v; want the user's id and an accessToken (keep me logged in)", ex, err)
		}
	})
}

func TestLoginErrorsAndLockout(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		if _, err := s.svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"}}); err != nil {
			t.Fatal(err)
		}
		bad := s.get("/auth/login?lang=es").form("email", "anna@example.com", "password", "wrong one")
		s.post("/auth/login", bad).must(t, 401, "Correo electrónico o contraseña incorrectos.", `value="anna@example.com"`)
		for range 4 {
			s.post("/auth/login", bad)
		}
		good := s.get("/auth/login?lang=es").form("email", "anna@example.com", "password", "long enough")
		s.post("/auth/login", good).must(t, 429, "Demasiados intentos")
		s.clk.Advance(15 * time.Minute)
		s.post("/auth/login", good).must(t, 200, "success page")
	})
}

func TestSignupKeepsAttributionAndOpensAccount(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		start := s.get("/auth/login?firstLogin=true&lang=de&theme=light&source=iOS&partnerId=IB-7&utm_source=news&utm_campaign=spring&gclid=g1")
		start.must(t, 200, "Konto erstellen")
		form := start.form("email", "neu@example.com", "password", "long enough", "password_confirm", "long enough",
			"open_account", "on", "environment", "demo", "currency", "EUR", "remember", "on")
		s.post("/auth/signup", form).must(t, 200, "success page")
		q := s.successHit()
		u, err := s.svc.UserByEmail(ctx, "neu@example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := identity.Attribution{Source: "iOS", PartnerID: "IB-7", UTMSource: "news", UTMCampaign: "spring", GCLID: "g1"}
		if diff := cmp.Diff(want, u.Attribution); diff != "" || u.Language != "de" {
			t.Errorf("attribution (-want +got):\n%s; language %q", diff, u.Language)
		}
		if s.ct.Users[u.CTIDUserID].Email != "neu@example.com" || s.ct.Partners[u.CTIDUserID] != "IB-7" {
			t.Errorf("cTrader got user %+v, partner %q", s.ct.Users[u.CTIDUserID], s.ct.Partners[u.CTIDUserID])
		}
		accounts, err := s.svc.Accounts(ctx, u.ID)
		if err != nil || len(accounts) != 1 || accounts[0].Currency != "EUR" || accounts[0].Environment != identity.Demo {
			t.Fatalf("accounts = %+v, %v", accounts, err)
		}
		if ex, err := s.svc.ExchangeLoginToken(ctx, q.Get("token")); err != nil || ex.AccessToken == "" {
			t.Fatalf("exchange of the signup token = %+v, %v", ex, err)
		}
	})
}

func TestSignupErrors(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		if _, err := s.svc.CreateUser(ctx, identity.NewUser{Email: "taken@example.com", Password: "long enough"}); err != nil {
			t.Fatal(err)
		}
		start := s.get("/auth/login?firstLogin=true&lang=en")
		tests := []struct {
			name   string
			fields []string
			status int
			text   string
		}{
			{"bad email", []string{"email", "nope", "password", "long enough", "password_confirm", "long enough"}, 400, "valid e-mail address"},
			{"short password", []string{"email", "a@example.com", "password", "short", "password_confirm", "short"}, 400, "at least 8 characters"},
			{"mismatch", []string{"email", "a@example.com", "password", "long enough", "password_confirm", "long enouGH"}, 400, "do not match"},
			{"taken", []string{"email", "TAKEN@example.com", "password", "long enough", "password_confirm", "long enough"}, 409, "already exists"},
			{"currency not offered", []string{"email", "b@example.com", "password", "long enough", "password_confirm", "long enough",
				"open_account", "on", "environment", "demo", "currency", "JPY"}, 400, "check your entries"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := s.post("/auth/signup", start.form(tc.fields...))
				p.must(t, tc.status, tc.text, "<h1>Create your account</h1>")
				if strings.Contains(p.body, "long enough") {
					t.Error("the page echoes the password")
				}
			})
		}
	})
}

// TestSignupAccountFailureStillLogsIn: when the trading account cannot be
// opened, the user is told so and continues to the success URL with the
// login token.
func TestSignupAccountFailureStillLogsIn(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		s.ct.SetFailTraders(errs.E(errs.Unavailable, "fake", "trading server down"))
		form := s.get("/auth/login?firstLogin=true&lang=de").form("email", "c@example.com", "password", "long enough",
			"password_confirm", "long enough", "open_account", "on", "environment", "live", "currency", "USD")
		p := s.post("/auth/signup", form)
		p.must(t, 200, "Sie sind registriert", `id="continue"`)
		m := regexp.MustCompile(`href="([^"]+)" id="continue"`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatal("no continue link")
		}
		link := html.UnescapeString(m[1])
		s.get(link).must(t, 200, "success page")
		if q := s.successHit(); !identity.WellFormedToken(q.Get("token")) {
			t.Fatalf("continue link reached the success URL with %v", q)
		}
	})
}

func TestPasswordResetByMail(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		if _, err := s.svc.CreateUser(ctx, identity.NewUser{Email: "forgot@example.com", Password: "old password", Language: "es"}); err != nil {
			t.Fatal(err)
		}
		start := s.get("/auth/login?lang=de&theme=dark")
		resetURL := start.body[strings.Index(start.body, `href="/auth/reset`)+6:]
		resetURL = resetURL[:strings.IndexByte(resetURL, '"')]
		reset := s.get(strings.ReplaceAll(resetURL, "&amp;", "&"))
		reset.must(t, 200, `<html lang="de" dir="ltr" data-theme="dark">`)
		sent := s.post("/auth/reset", reset.form("email", "Forgot@example.com"))
		sent.must(t, 200, "30 Minuten")
		unknown := s.post("/auth/reset", reset.form("email", "nobody@example.com"))
		unknown.must(t, 200, "30 Minuten")
		if len(s.box.Messages()) != 1 {
			t.Fatalf("mailbox holds %d messages, want 1 (none for unknown addresses)", len(s.box.Messages()))
		}
		m, ok := s.box.Last("forgot@example.com")
		if !ok || m.Mail.Subject != "Restablezca su contraseña" {
			t.Fatalf("mail = %+v; want one in the user's language (es)", m)
		}
		link := linkRe.FindString(m.Mail.Text)
		if !strings.HasPrefix(link, s.url+"/auth/reset/confirm?") {
			t.Fatalf("mail link %q is not on the public URL", link)
		}
		confirm := s.get(link)
		confirm.must(t, 200, "Elija una nueva contraseña")
		s.post("/auth/reset/confirm", confirm.form("password", "new password", "password_confirm", "other")).must(t, 400, "no coinciden")
		s.post("/auth/reset/confirm", confirm.form("password", "new password", "password_confirm", "new password")).must(t, 200, "Su contraseña se ha cambiado")
		if _, err := s.svc.Login(ctx, "forgot@example.com", "new password", false); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
		s.get(link).must(t, 404, "no es válido")
		for range 3 {
			s.post("/auth/reset", reset.form("email", "forgot@example.com"))
		}
		s.post("/auth/reset", reset.form("email", "forgot@example.com")).must(t, 429)
	})
}

func TestAccountCreationScreen(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		res, err := s.svc.SignUp(ctx, identity.SignUp{NewUser: identity.NewUser{Email: "anna@example.com", Password: "long enough"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.svc.GenerateInAppOT(ctx, res.User.CTIDUserID, "")
		if err != nil {
			t.Fatal(err)
		}
		p := s.get("/account/create?lang=ar&token=" + tok)
		p.must(t, 200, `dir="rtl"`, "فتح حساب تداول", `name="session"`)
		if strings.Contains(p.body, tok) {
			t.Error("the page carries the one-time token on")
		}
		s.get("/account/create?token="+tok).must(t, 410, "expired")
		s.post("/account/create", p.form("environment", "live", "currency", "USD")).must(t, 200, "success page")
		if q := s.successHit(); q.Get("token") != "" {
			t.Errorf("account creation passed a token to the success URL: %v", q)
		}
		accounts, err := s.svc.Accounts(ctx, res.User.ID)
		if err != nil || len(accounts) != 1 || accounts[0].Environment != identity.Live {
			t.Fatalf("accounts = %+v, %v", accounts, err)
		}
		s.post("/account/create", p.form("environment", "live", "currency", "USD")).must(t, 410)
	})
}

func TestCrossOriginPostRefused(t *testing.T) {
	each(t, func(t *testing.T, s *site) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/auth/login", strings.NewReader("email=a%40example.com&password=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site post: status %d, want 403", res.StatusCode)
		}
	})
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  authpages.Options
	}{
		{"no success URL", authpages.Options{PublicURL: "https://crm.example"}},
		{"relative success URL", authpages.Options{SuccessURL: "/callback/success", PublicURL: "https://crm.example"}},
		{"no public URL", authpages.Options{SuccessURL: "https://crm.example/callback/success"}},
		{"no mailer", authpages.Options{SuccessURL: "https://crm.example/callback/success", PublicURL: "https://crm.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authpages.New(nil, nil, tc.opt); err == nil {
				t.Error("accepted")
			}
		})
	}
}
