package wizardapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp/totp"

	"github.com/opencashier/cashier/internal/sqlstore"
)

// factor is GET /api/v2/my/2fa for a token.
func (r *rig) factor(token string) map[string]any {
	r.t.Helper()
	status, body, hdr := r.call("GET", "/api/v2/my/2fa", token, "")
	if status != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		r.t.Fatalf("GET 2fa: %d %v %v", status, body, hdr)
	}
	return body
}

func factorIs(method string, enrolled bool) map[string]any {
	return map[string]any{"method": method, "enrolled": enrolled}
}

func TestEnrolEmailThenChangeToSMSNeedsTheMailedCode(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-alice")); diff != "" {
			t.Fatalf("before (-want +got):\n%s", diff)
		}
		// No factor yet: enrolling needs no code.
		status, body, _ := r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email"}`)
		if diff := cmp.Diff(factorIs("email", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("enrol email: %d (-want +got):\n%s", status, diff)
		}
		if len(r.box.Messages()) != 0 {
			t.Fatalf("enrolling the first factor sent %d mails", len(r.box.Messages()))
		}

		change := `{"method":"sms","phone":"+447700900123"}`
		// Without the current factor's code: a code is mailed, nothing changes.
		status, d, _ := r.call("POST", "/api/v2/my/2fa", "tok-alice", change)
		want := map[string]any{"status": json.Number("0"), "sent": json.Number("1"),
			"sentAt": "2026-05-04T09:00:00+00:00", "expiredAt": "2026-05-04T09:10:00+00:00",
			"recipient": map[string]any{"template": "2FA_Change", "email": "alice@example.com", "name": "Alice Archer", "method": "email"}}
		if diff := cmp.Diff(want, d); status != http.StatusAccepted || diff != "" {
			t.Fatalf("change without a code: %d (-want +got):\n%s", status, diff)
		}
		code := r.mailedCode("alice@example.com")
		if diff := cmp.Diff(factorIs("email", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("changed without a code (-want +got):\n%s", diff)
		}

		// A wrong code is refused and changes nothing.
		status, p, hdr := r.call("POST", "/api/v2/my/2fa", "tok-alice",
			`{"method":"sms","phone":"+447700900123","currentCode":"`+wrongCode(code)+`"}`)
		if status != http.StatusBadRequest || p["code"] != "EINVALID" || hdr.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(p["detail"].(string), "2 attempts left") {
			t.Fatalf("wrong code: %d %v", status, p)
		}
		if diff := cmp.Diff(factorIs("email", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("changed with a wrong code (-want +got):\n%s", diff)
		}

		// The right code changes it.
		status, body, _ = r.call("POST", "/api/v2/my/2fa", "tok-alice",
			`{"method":"sms","phone":"+447700900123","currentCode":"`+code+`"}`)
		if diff := cmp.Diff(factorIs("sms", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("change with the code: %d (-want +got):\n%s", status, diff)
		}
		e, ok, err := r.tfa.Enrolment(context.Background(), "usr_alice")
		if err != nil || !ok || e.Phone != "+447700900123" || e.Name != "Alice Archer" {
			t.Fatalf("enrolment %+v %v %v", e, ok, err)
		}
		// The same code does not buy a second change.
		status, p, _ = r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email","currentCode":"`+code+`"}`)
		if status == http.StatusOK {
			t.Fatalf("a used code changed the factor again: %v", p)
		}
		if diff := cmp.Diff(factorIs("sms", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("after the reused code (-want +got):\n%s", diff)
		}
		// Bob's factor is untouched.
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-bob")); diff != "" {
			t.Fatalf("bob (-want +got):\n%s", diff)
		}
	})
}

func TestSMSFactorChangeNeedsTheTextedCode(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		status, body, _ := r.call("POST", "/api/v2/my/2fa", "tok-bob", `{"method":"sms","phone":"+447700900456"}`)
		if diff := cmp.Diff(factorIs("sms", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("enrol sms: %d (-want +got):\n%s", status, diff)
		}
		status, body, _ = r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email"}`)
		if status != http.StatusOK {
			t.Fatalf("alice enrol: %d %v", status, body)
		}
		status, d, _ := r.call("POST", "/api/v2/my/2fa", "tok-bob", `{"method":"email"}`)
		rec, _ := d["recipient"].(map[string]any)
		if status != http.StatusAccepted || d["sent"] != json.Number("1") || rec["method"] != "sms" || rec["name"] != "Bob Baker" {
			t.Fatalf("change without a code: %d %v", status, d)
		}
		code := r.textedCode("+447700900456")
		status, body, _ = r.call("POST", "/api/v2/my/2fa", "tok-bob", `{"method":"email","currentCode":"`+code+`"}`)
		if diff := cmp.Diff(factorIs("email", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("change with the code: %d (-want +got):\n%s", status, diff)
		}
		// Alice's factor is untouched, and Bob's code was never hers.
		if diff := cmp.Diff(factorIs("email", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("alice (-want +got):\n%s", diff)
		}
		if _, ok := r.box.Last("alice@example.com"); ok {
			t.Fatal("alice got a mail")
		}
	})
}

func TestTOTPBeginConfirmAndChangeWithTheAppCode(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		status, setup, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", "")
		if status != http.StatusOK {
			t.Fatalf("begin: %d %v", status, setup)
		}
		secret := setup["secret"].(string)
		png, err := base64.StdEncoding.DecodeString(setup["qrPng"].(string))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || !strings.Contains(setup["otpauthUrl"].(string), "secret="+secret) {
			t.Fatalf("setup %v: %v", setup, err)
		}
		// Begun is not enrolled.
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-alice")); diff != "" {
			t.Fatalf("after begin (-want +got):\n%s", diff)
		}
		now, err := totp.GenerateCode(secret, r.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		status, p, _ := r.call("POST", "/api/v2/my/2fa/totp/confirm", "tok-alice", `{"code":"`+wrongCode(now)+`"}`)
		if status != http.StatusBadRequest || p["code"] != "EINVALID" {
			t.Fatalf("wrong confirm: %d %v", status, p)
		}
		status, body, _ := r.call("POST", "/api/v2/my/2fa/totp/confirm", "tok-alice", `{"code":"`+now+`"}`)
		if diff := cmp.Diff(factorIs("google", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("confirm: %d (-want +got):\n%s", status, diff)
		}

		// Changing away from google: no code is sent, the app has it.
		status, d, _ := r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email"}`)
		rec, _ := d["recipient"].(map[string]any)
		if status != http.StatusAccepted || d["sent"] != json.Number("0") || rec["method"] != "google" || len(r.box.Messages()) != 0 {
			t.Fatalf("change without a code: %d %v", status, d)
		}
		// The code that confirmed the app was used: the replay guard refuses it.
		status, p, _ = r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email","currentCode":"`+now+`"}`)
		if status != http.StatusBadRequest || !strings.Contains(p["detail"].(string), "already used") {
			t.Fatalf("replayed code: %d %v", status, p)
		}
		if diff := cmp.Diff(factorIs("google", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("after the replay (-want +got):\n%s", diff)
		}
		r.clk.Advance(30 * time.Second)
		next, err := totp.GenerateCode(secret, r.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		status, body, _ = r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email","currentCode":"`+next+`"}`)
		if diff := cmp.Diff(factorIs("email", true), body); status != http.StatusOK || diff != "" {
			t.Fatalf("change with the app's code: %d (-want +got):\n%s", status, diff)
		}
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-bob")); diff != "" {
			t.Fatalf("bob (-want +got):\n%s", diff)
		}
	})
}

func TestNewTOTPSecretNeedsTheCurrentFactor(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		if status, body, _ := r.call("POST", "/api/v2/my/2fa", "tok-alice", `{"method":"email"}`); status != http.StatusOK {
			t.Fatalf("enrol: %d %v", status, body)
		}
		status, d, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", "")
		if status != http.StatusAccepted || d["secret"] != nil || d["sent"] != json.Number("1") {
			t.Fatalf("begin without a code: %d %v", status, d)
		}
		code := r.mailedCode("alice@example.com")
		// The rig allows 3 attempts: two wrong codes are 400, the third 429,
		// and then even the right code is refused.
		for i, want := range []int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests} {
			status, p, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", `{"currentCode":"`+wrongCode(code)+`"}`)
			if status != want || p["secret"] != nil {
				t.Fatalf("wrong code %d: %d %v", i+1, status, p)
			}
		}
		status, p, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", `{"currentCode":"`+code+`"}`)
		if status != http.StatusTooManyRequests || p["secret"] != nil {
			t.Fatalf("right code after the attempts: %d %v", status, p)
		}
		if status, p, _ := r.call("POST", "/api/v2/my/2fa/totp/confirm", "tok-alice", `{"code":"123456"}`); status != http.StatusNotFound {
			t.Fatalf("confirm without a secret: %d %v", status, p)
		}
		// Once the code window is over, a new code is sent and works.
		r.clk.Advance(20 * time.Minute)
		if status, d, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", ""); status != http.StatusAccepted {
			t.Fatalf("new window: %d %v", status, d)
		}
		status, setup, _ := r.call("POST", "/api/v2/my/2fa/totp", "tok-alice", `{"currentCode":"`+r.mailedCode("alice@example.com")+`"}`)
		if status != http.StatusOK || setup["secret"] == "" {
			t.Fatalf("begin with the code: %d %v", status, setup)
		}
		if diff := cmp.Diff(factorIs("email", true), r.factor("tok-alice")); diff != "" {
			t.Fatalf("begun is not changed (-want +got):\n%s", diff)
		}
	})
}

func TestSecondFactorEndpointsNeedAToken(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		for _, c := range []struct{ name, method, path, body string }{
			{"get", "GET", "/api/v2/my/2fa", ""},
			{"enrol", "POST", "/api/v2/my/2fa", `{"method":"email"}`},
			{"begin", "POST", "/api/v2/my/2fa/totp", ""},
			{"confirm", "POST", "/api/v2/my/2fa/totp/confirm", `{"code":"123456"}`},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, p, hdr := r.call(c.method, c.path, "tok-nobody", c.body)
				if status != http.StatusUnauthorized || p["code"] != "EUNAUTHORIZED" || hdr.Get("WWW-Authenticate") == "" {
					t.Fatalf("%d %v", status, p)
				}
			})
		}
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-alice")); diff != "" {
			t.Fatalf("alice (-want +got):\n%s", diff)
		}
	})
}

func TestEnrolRefusesBadRequestsBeforeAnyCode(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, false)
		for _, c := range []struct{ name, body string }{
			{"no method", `{}`},
			{"google", `{"method":"google"}`},
			{"sms without phone", `{"method":"sms"}`},
			{"bad phone", `{"method":"sms","phone":"0770090"}`},
			{"phone with email", `{"method":"email","phone":"+447700900123"}`},
			{"unknown field", `{"method":"email","pin":"1"}`},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, p, _ := r.call("POST", "/api/v2/my/2fa", "tok-alice", c.body)
				if status != http.StatusBadRequest || p["code"] != "EINVALID" {
					t.Fatalf("%d %v", status, p)
				}
			})
		}
		if diff := cmp.Diff(factorIs("none", false), r.factor("tok-alice")); diff != "" {
			t.Fatalf("alice (-want +got):\n%s", diff)
		}
	})
}
