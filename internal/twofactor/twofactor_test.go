package twofactor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
	"github.com/opencashier/cashier/internal/twofactor"
)

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

type rig struct {
	svc   *twofactor.Service
	clock *clock.Fake
	box   *mail.Mailbox
	sms   *twofactor.SMSSink
}

func newRig(t *testing.T, db *sqlstore.DB) rig {
	t.Helper()
	c := clock.NewFake(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	box := mail.NewMailbox(100, c)
	sms := twofactor.NewSMSSink(c)
	svc, err := twofactor.New(twofactor.Deps{DB: db, Clock: c, Mailer: box, SMS: sms},
		twofactor.Config{CodeTTL: 10 * time.Minute, Attempts: 3, ResendCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return rig{svc: svc, clock: c, box: box, sms: sms}
}

func (r rig) mailedCode(t *testing.T, to string) string {
	t.Helper()
	m, ok := r.box.Last(to)
	if !ok {
		t.Fatalf("no mail to %s", to)
	}
	got := codeRE.FindStringSubmatch(m.Mail.Text)
	if got == nil {
		t.Fatalf("no code in %q", m.Mail.Text)
	}
	return got[1]
}

func (r rig) textedCode(t *testing.T, to string) string {
	t.Helper()
	m, ok := r.sms.Last(to)
	if !ok {
		t.Fatalf("no SMS to %s", to)
	}
	got := codeRE.FindStringSubmatch(m.Text)
	if got == nil {
		t.Fatalf("no code in %q", m.Text)
	}
	return got[1]
}

func wantCode(t *testing.T, err error, want errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != want {
		t.Fatalf("error = %v (%s), want %s", err, got, want)
	}
}

func TestEmailAndSMSCodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		if _, err := r.svc.Enrol(ctx, "usr_mail", twofactor.Recipient{Method: twofactor.Email, Email: "ann@example.com", Name: "Ann"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Enrol(ctx, "usr_sms", twofactor.Recipient{Method: twofactor.SMS, Phone: "+447700900123", Name: "Bob"}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, user string
			code       func() string
		}{
			{"email", "usr_mail", func() string { return r.mailedCode(t, "ann@example.com") }},
			{"sms", "usr_sms", func() string { return r.textedCode(t, "+447700900123") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := r.svc.Start(ctx, twofactor.ChallengeRequest{UserID: tc.user, Purpose: "withdrawal", Ref: "w1", Template: "Withdraw_Confirm"})
				if err != nil {
					t.Fatal(err)
				}
				if !c.Sent || !c.ExpiresAt.Equal(r.clock.Now().Add(10*time.Minute)) || c.Recipient.Method != twofactor.Method(tc.name) {
					t.Fatalf("challenge = %+v", c)
				}
				code := tc.code()
				wrong := "000000"
				if code == wrong {
					wrong = "111111"
				}
				_, err = r.svc.Verify(ctx, tc.user, "withdrawal", "w1", wrong)
				wantCode(t, err, errs.Invalid)
				if !strings.Contains(errs.MessageOf(err), "2 attempts left") {
					t.Errorf("message = %q", errs.MessageOf(err))
				}
				c, err = r.svc.Verify(ctx, tc.user, "withdrawal", "w1", code)
				if err != nil || c.State != twofactor.StateVerified {
					t.Fatalf("verify = %+v, %v", c, err)
				}
				_, err = r.svc.Verify(ctx, tc.user, "withdrawal", "w1", code)
				wantCode(t, err, errs.Conflict)
			})
		}
	}, twofactor.Schema)
}

func TestCodeLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		fallback := &twofactor.Recipient{Method: twofactor.Email, Email: "cy@example.com", Name: "Cy"}
		start := func(ref string) twofactor.Challenge {
			t.Helper()
			c, err := r.svc.Start(ctx, twofactor.ChallengeRequest{UserID: "usr_cy", Purpose: "withdrawal", Ref: ref, Fallback: fallback})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}

		t.Run("no method and no fallback", func(t *testing.T) {
			_, err := r.svc.Start(ctx, twofactor.ChallengeRequest{UserID: "usr_none", Purpose: "withdrawal", Ref: "x"})
			wantCode(t, err, errs.NotFound)
		})

		t.Run("expired", func(t *testing.T) {
			start("expired")
			code := r.mailedCode(t, "cy@example.com")
			r.clock.Advance(10 * time.Minute)
			_, err := r.svc.Verify(ctx, "usr_cy", "withdrawal", "expired", code)
			wantCode(t, err, errs.Expired)
			_, err = r.svc.Verify(ctx, "usr_cy", "withdrawal", "expired", code)
			wantCode(t, err, errs.Expired)
		})

		t.Run("attempts exhausted even with the right code afterwards", func(t *testing.T) {
			start("exhausted")
			code := r.mailedCode(t, "cy@example.com")
			wrong := strings.Repeat("9", 6)
			if code == wrong {
				wrong = "888888"
			}
			for _, want := range []errs.Code{errs.Invalid, errs.Invalid, errs.RateLimited} {
				_, err := r.svc.Verify(ctx, "usr_cy", "withdrawal", "exhausted", wrong)
				wantCode(t, err, want)
			}
			_, err := r.svc.Verify(ctx, "usr_cy", "withdrawal", "exhausted", code)
			wantCode(t, err, errs.RateLimited)
			c, err := r.svc.Challenge(ctx, "usr_cy", "withdrawal", "exhausted")
			if err != nil || c.State != twofactor.StateExhausted || c.AttemptsLeft != 0 {
				t.Fatalf("stored = %+v, %v", c, err)
			}
		})

		t.Run("resend cool-down and the new code replaces the old", func(t *testing.T) {
			start("resend")
			first := r.mailedCode(t, "cy@example.com")
			_, err := r.svc.Resend(ctx, "usr_cy", "withdrawal", "resend", "")
			wantCode(t, err, errs.RateLimited)
			r.clock.Advance(time.Minute)
			c, err := r.svc.Resend(ctx, "usr_cy", "withdrawal", "resend", "")
			if err != nil || !c.Sent || !c.ExpiresAt.Equal(r.clock.Now().Add(10*time.Minute)) {
				t.Fatalf("resend = %+v, %v", c, err)
			}
			second := r.mailedCode(t, "cy@example.com")
			if first != second {
				_, err = r.svc.Verify(ctx, "usr_cy", "withdrawal", "resend", first)
				wantCode(t, err, errs.Invalid)
			}
			if _, err := r.svc.Verify(ctx, "usr_cy", "withdrawal", "resend", second); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("start again returns the pending challenge without sending", func(t *testing.T) {
			a := start("again")
			n := len(r.box.Messages())
			b := start("again")
			if a.ID != b.ID || len(r.box.Messages()) != n {
				t.Fatalf("second start %s vs %s, mails %d → %d", a.ID, b.ID, n, len(r.box.Messages()))
			}
		})
	}, twofactor.Schema)
}

func TestTOTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		setup, err := r.svc.BeginTOTP(ctx, "usr_g", "gina@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(setup.URL, "otpauth://totp/") || !strings.Contains(setup.URL, "secret="+setup.Secret) {
			t.Errorf("URL = %q", setup.URL)
		}
		if img, err := png.Decode(bytes.NewReader(setup.QRCode)); err != nil || img.Bounds().Dx() != 256 {
			t.Fatalf("QR code: %v", err)
		}
		if _, ok, _ := r.svc.Enrolment(ctx, "usr_g"); ok {
			t.Fatal("enrolled before confirming")
		}
		code := func() string {
			c, err := totp.GenerateCode(setup.Secret, r.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		_, err = r.svc.ConfirmTOTP(ctx, "usr_g", "123")
		wantCode(t, err, errs.Invalid)
		if e, err := r.svc.ConfirmTOTP(ctx, "usr_g", code()); err != nil || e.Method != twofactor.Google {
			t.Fatalf("confirm = %+v, %v", e, err)
		}

		c, err := r.svc.Start(ctx, twofactor.ChallengeRequest{UserID: "usr_g", Purpose: "withdrawal", Ref: "g1"})
		if err != nil || c.Sent || c.Recipient.Method != twofactor.Google {
			t.Fatalf("start = %+v, %v", c, err)
		}
		// The code that confirmed enrolment is in the same step: refused.
		_, err = r.svc.Verify(ctx, "usr_g", "withdrawal", "g1", code())
		wantCode(t, err, errs.Invalid)
		if !strings.Contains(errs.MessageOf(err), "already used") {
			t.Errorf("replay message = %q", errs.MessageOf(err))
		}
		r.clock.Advance(30 * time.Second)
		used := code()
		if _, err := r.svc.Verify(ctx, "usr_g", "withdrawal", "g1", used); err != nil {
			t.Fatal(err)
		}
		// Another challenge in the same window: the accepted code is not accepted again.
		if _, err := r.svc.Start(ctx, twofactor.ChallengeRequest{UserID: "usr_g", Purpose: "withdrawal", Ref: "g2"}); err != nil {
			t.Fatal(err)
		}
		_, err = r.svc.Verify(ctx, "usr_g", "withdrawal", "g2", used)
		wantCode(t, err, errs.Invalid)
		r.clock.Advance(30 * time.Second)
		if _, err := r.svc.Verify(ctx, "usr_g", "withdrawal", "g2", code()); err != nil {
			t.Fatal(err)
		}
		_, err = r.svc.Resend(ctx, "usr_g", "withdrawal", "g2", "")
		wantCode(t, err, errs.Conflict)
	}, twofactor.Schema)
}

func TestEnrolRefusesBadRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		for name, rec := range map[string]twofactor.Recipient{
			"bad email":     {Method: twofactor.Email, Email: "not an address"},
			"local phone":   {Method: twofactor.SMS, Phone: "07700900123"},
			"google direct": {Method: twofactor.Google},
			"unknown":       {Method: "pigeon"},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := r.svc.Enrol(context.Background(), "usr_x", rec)
				wantCode(t, err, errs.Invalid)
			})
		}
	}, twofactor.Schema)
}

func TestHTTPSMS(t *testing.T) {
	type got struct {
		auth, ctype string
		body        map[string]string
	}
	for _, tc := range []struct {
		name   string
		status int
		want   errs.Code
	}{
		{"accepted", http.StatusAccepted, ""},
		{"refused", http.StatusBadRequest, errs.Invalid},
		{"gateway down", http.StatusBadGateway, errs.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan got, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var g got
				g.auth, g.ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
				_ = json.NewDecoder(r.Body).Decode(&g.body)
				seen <- g
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			s, err := twofactor.NewHTTPSMS(srv.URL+"/send", "tok123", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			err = s.SendSMS(context.Background(), "+447700900123", "code 123456")
			if errs.CodeOf(err) != tc.want && !(tc.want == "" && err == nil) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			g := <-seen
			if g.auth != "Bearer tok123" || g.ctype != "application/json" || g.body["to"] != "+447700900123" || g.body["text"] != "code 123456" {
				t.Fatalf("gateway saw %+v", g)
			}
		})
	}
	if _, err := twofactor.NewHTTPSMS("ftp://x", "t", nil); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("bad URL: %v", err)
	}
}

// downMailer fails every send.
type downMailer struct{}

func (downMailer) Send(context.Context, mail.Message) error {
	return errs.E(errs.Unavailable, "downMailer", "the mail server is down")
}

func TestFailedDeliveryMayBeResentAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
		down, err := twofactor.New(twofactor.Deps{DB: db, Clock: c, Mailer: downMailer{}}, twofactor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		req := twofactor.ChallengeRequest{UserID: "usr_d", Purpose: "withdrawal", Ref: "d1",
			Fallback: &twofactor.Recipient{Method: twofactor.Email, Email: "dan@example.com"}}
		ch, err := down.Start(ctx, req)
		if err != nil || ch.Sent {
			t.Fatalf("start with the mail server down = %+v, %v; want not sent, no error", ch, err)
		}
		box := mail.NewMailbox(10, c)
		up, err := twofactor.New(twofactor.Deps{DB: db, Clock: c, Mailer: box}, twofactor.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ch, err = up.Resend(ctx, "usr_d", "withdrawal", "d1", "")
		if err != nil || !ch.Sent {
			t.Fatalf("resend at once after a failed delivery = %+v, %v", ch, err)
		}
		if _, ok := box.Last("dan@example.com"); !ok {
			t.Fatal("no mail after the resend")
		}
	}, twofactor.Schema)
}
