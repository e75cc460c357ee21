package backoffice

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
)

// The cookies of the back office, all HttpOnly, SameSite=Strict and
// scoped to the prefix.
const (
	sessionCookie = "bo_session" // the session token
	pendingCookie = "bo_login"   // the pending login between password and code
	formCookie    = "bo_form"    // a random value the login forms' CSRF token is bound to
)

// call is one signed-in request.
type call struct {
	sess    Session
	s       *server
	r       *http.Request
	allowed map[Permission]bool
}

// can reports whether the member's role has the permission (asked once
// per request and permission).
func (c *call) can(p Permission) bool {
	if ok, seen := c.allowed[p]; seen {
		return ok
	}
	err := c.s.d.Staff.Authorize(c.sess, p)
	ok := err == nil
	if err != nil && !errs.Is(err, errs.Forbidden) {
		c.s.log.ErrorContext(c.r.Context(), "backoffice: authorize", "perm", p, "err", err)
	}
	c.allowed[p] = ok
	return ok
}

// actor names the member for the services and the audit trail.
func (c *call) actor() string { return "staff:" + c.sess.Member.ID }

type handler func(w http.ResponseWriter, r *http.Request, c *call)

// member runs h for a signed-in member whose role has perm ("" for any
// member). Without a valid session the browser goes to the login page
// (with a message when the session expired); a POST must carry the
// session's CSRF token; a missing permission is answered 403.
func (s *server) member(perm Permission, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			s.toLogin(w, r, "")
			return
		}
		sess, err := s.d.Staff.Session(r.Context(), ck.Value)
		if err != nil {
			switch errs.CodeOf(err) {
			case errs.Expired, errs.Unauthorized, errs.NotFound:
				s.clearCookie(w, r, sessionCookie)
				s.toLogin(w, r, "expired")
			default:
				s.log.ErrorContext(r.Context(), "backoffice: session", "err", err)
				s.problem(w, nil, httpx.StatusOf(err), "Something went wrong", "Your session could not be checked. Please try again.")
			}
			return
		}
		c := &call{sess: sess, s: s, r: r, allowed: map[Permission]bool{}}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				s.problem(w, c, http.StatusBadRequest, "That did not work", "The form could not be read.")
				return
			}
			if !equal(r.PostForm.Get("csrf"), sess.CSRF) {
				s.problem(w, c, http.StatusForbidden, "Form expired",
					"The form did not carry this session's security token (it may be from an earlier session or another site). Go back, reload the page and try again.")
				return
			}
		}
		if perm != "" && !c.can(perm) {
			s.forbidden(w, c, perm)
			return
		}
		h(w, r, c)
	})
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// toLogin sends the browser to the login page, remembering a GET's
// address to come back to. why is a message code of the login page.
func (s *server) toLogin(w http.ResponseWriter, r *http.Request, why string) {
	q := url.Values{}
	if why != "" {
		q.Set("m", why)
	}
	if r.Method == http.MethodGet && r.URL.Path != s.opt.Prefix+"/" {
		q.Set("next", r.URL.RequestURI())
	}
	to := s.opt.Prefix + "/login"
	if len(q) > 0 {
		to += "?" + q.Encode()
	}
	redirect(w, r, to)
}

// secure reports whether cookies must be Secure: always, except for plain
// HTTP to a loopback address (a developer's machine, the tests).
func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}

func (s *server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: s.opt.Prefix, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode}
	if !expires.IsZero() {
		c.Expires = expires
		c.MaxAge = max(int(expires.Sub(s.opt.Clock.Now())/time.Second), 1)
	}
	http.SetCookie(w, c)
}

func (s *server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: s.opt.Prefix, HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// formToken returns the CSRF token of the login forms: a MAC of a random
// value in a cookie of its own, set here if missing.
func (s *server) formToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(formCookie); err == nil && len(ck.Value) >= 22 {
		v = ck.Value
	} else {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		v = base64.RawURLEncoding.EncodeToString(b)
		s.setCookie(w, r, formCookie, v, time.Time{})
	}
	return s.mac(v)
}

func (s *server) mac(v string) string {
	m := hmac.New(sha256.New, s.opt.Key)
	m.Write([]byte("backoffice login form\x00" + v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formTokenOK checks the CSRF token of a login form against its cookie.
func (s *server) formTokenOK(r *http.Request) bool {
	ck, err := r.Cookie(formCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	return equal(r.PostForm.Get("csrf"), s.mac(ck.Value))
}

// --- pages ---

type loginData struct {
	Prefix string
	CSRF   string
	Email  string
	Next   string
}

// loginMessages are the login page's fixed messages (m=…).
var loginMessages = map[string]string{
	"expired":       "Your session has ended. Please sign in again.",
	"signed_out":    "You are signed out.",
	"login_expired": "The sign-in took too long. Please enter your password again.",
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if _, err := s.d.Staff.Session(r.Context(), ck.Value); err == nil {
			redirect(w, r, s.next(r.URL.Query().Get("next")))
			return
		}
	}
	s.showLogin(w, r, http.StatusOK, "", "")
}

func (s *server) showLogin(w http.ResponseWriter, r *http.Request, status int, errText, email string) {
	next := r.FormValue("next")
	if !s.localPath(next) {
		next = ""
	}
	d := loginData{Prefix: s.opt.Prefix, CSRF: s.formToken(w, r), Email: email, Next: next}
	s.render(w, status, "bo_login", errText, loginMessages[r.URL.Query().Get("m")], d)
}

// next is where to go after signing in: next if it is a back-office path,
// the home page otherwise.
func (s *server) next(next string) string {
	if s.localPath(next) && !strings.HasPrefix(next, s.opt.Prefix+"/login") {
		return next
	}
	return s.opt.Prefix + "/"
}

func (s *server) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.showLogin(w, r, http.StatusBadRequest, "The form could not be read.", "")
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if !s.formTokenOK(r) {
		s.showLogin(w, r, http.StatusForbidden, "The form expired. Please try again.", email)
		return
	}
	if !s.logins.Allow(httpx.ClientIP(r)) {
		s.showLogin(w, r, http.StatusTooManyRequests, "Too many attempts from your address. Wait a minute and try again.", email)
		return
	}
	pl, err := s.d.Staff.BeginLogin(r.Context(), email, r.PostForm.Get("password"))
	if err != nil {
		status, msg := s.loginError(r, err)
		s.showLogin(w, r, status, msg, email)
		return
	}
	s.setCookie(w, r, pendingCookie, pl.Token, pl.ExpiresAt)
	s.showTOTP(w, r, http.StatusOK, "", pl.Enrol)
}

// loginError is the status and message of a failed login step.
func (s *server) loginError(r *http.Request, err error) (int, string) {
	switch errs.CodeOf(err) {
	case errs.Unauthorized, errs.NotFound:
		return http.StatusUnauthorized, "The e-mail address or password is not right."
	case errs.Forbidden:
		return http.StatusForbidden, "This account is disabled. Ask an administrator."
	case errs.RateLimited:
		return http.StatusTooManyRequests, "Too many wrong attempts: the account is locked for a while. Try again later or ask an administrator to unlock it."
	case errs.Invalid:
		return http.StatusBadRequest, errs.MessageOf(err)
	}
	return s.userError(r, "sign-in", err)
}

type totpData struct {
	Prefix string
	CSRF   string
	Next   string
	Enrol  bool
	Secret string
	QR     template.URL
}

// totpPage shows the code step again (after a reload): without the
// enrolment, which is shown once, right after the password.
func (s *server) totpPage(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(pendingCookie); err != nil || ck.Value == "" {
		redirect(w, r, s.opt.Prefix+"/login")
		return
	}
	s.showTOTP(w, r, http.StatusOK, "", nil)
}

// showTOTP shows the code step of a pending login, with the enrolment for
// a first login.
func (s *server) showTOTP(w http.ResponseWriter, r *http.Request, status int, errText string, enrol *Enrolment) {
	next := r.FormValue("next")
	if !s.localPath(next) {
		next = ""
	}
	d := totpData{Prefix: s.opt.Prefix, CSRF: s.formToken(w, r), Next: next}
	if enrol != nil {
		d.Enrol, d.Secret = true, enrol.Secret
		qr, err := qrDataURL(enrol)
		if err != nil {
			s.log.WarnContext(r.Context(), "backoffice: QR code", "err", err)
		}
		d.QR = qr
	}
	s.render(w, status, "bo_totp", errText, "", d)
}

// qrDataURL returns the enrolment's QR code as a data: PNG URL, drawing it
// from the otpauth:// URI when the staff service sent no picture.
func qrDataURL(e *Enrolment) (template.URL, error) {
	img := e.QRPNG
	if len(img) == 0 {
		key, err := otp.NewKeyFromURL(e.URI)
		if err != nil {
			return "", errs.Wrap("backoffice.qrDataURL", err)
		}
		pic, err := key.Image(240, 240)
		if err != nil {
			return "", errs.Wrap("backoffice.qrDataURL", err)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, pic); err != nil {
			return "", errs.Wrap("backoffice.qrDataURL", err)
		}
		img = b.Bytes()
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(img)), nil // #nosec G203 -- base64 of a PNG
}

func (s *server) totpPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.showTOTP(w, r, http.StatusBadRequest, "The form could not be read.", nil)
		return
	}
	if !s.formTokenOK(r) {
		s.showTOTP(w, r, http.StatusForbidden, "The form expired. Please try again.", nil)
		return
	}
	ck, err := r.Cookie(pendingCookie)
	if err != nil || ck.Value == "" {
		redirect(w, r, s.opt.Prefix+"/login?m=login_expired")
		return
	}
	if !s.logins.Allow(httpx.ClientIP(r)) {
		s.showTOTP(w, r, http.StatusTooManyRequests, "Too many attempts from your address. Wait a minute and try again.", nil)
		return
	}
	code := strings.Join(strings.Fields(r.PostForm.Get("code")), "")
	sess, err := s.d.Staff.CompleteLogin(r.Context(), ck.Value, code)
	if err != nil {
		if errs.Is(err, errs.Expired) {
			s.clearCookie(w, r, pendingCookie)
			redirect(w, r, s.opt.Prefix+"/login?m=login_expired")
			return
		}
		status, msg := s.loginError(r, err)
		switch status {
		case http.StatusUnauthorized:
			msg = "That code is not right. Enter the 6-digit code your authenticator app shows now. If you have not added the key to your app yet, start again."
		case http.StatusTooManyRequests, http.StatusForbidden:
			s.clearCookie(w, r, pendingCookie)
		}
		s.showTOTP(w, r, status, msg, nil)
		return
	}
	s.clearCookie(w, r, pendingCookie)
	s.setCookie(w, r, sessionCookie, sess.Token, time.Time{})
	redirect(w, r, s.next(r.PostForm.Get("next")))
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, c *call) {
	if err := s.d.Staff.Logout(r.Context(), c.sess.Token); err != nil && !errs.Is(err, errs.Unauthorized) && !errs.Is(err, errs.Expired) {
		s.log.ErrorContext(r.Context(), "backoffice: logout", "err", err)
	}
	s.clearCookie(w, r, sessionCookie)
	redirect(w, r, s.opt.Prefix+"/login?m=signed_out")
}
