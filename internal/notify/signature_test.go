package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func TestSignIsHMACOfTimeDotBody(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	at := time.Unix(1795271405, 0)
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte("1795271405." + string(body)))
	want := "t=1795271405,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign(testSecret, at, body); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"deposit.status_changed"}`)
	sent := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	good := Sign(testSecret, sent, body)
	rotated := Sign("the-previous-secret-000", sent, body) + ",v1=" + good[len("t=1795271400,v1="):]
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{"valid", testSecret, good, body, sent.Add(30 * time.Second), time.Minute, nil},
		{"valid, default tolerance", testSecret, good, body, sent.Add(4 * time.Minute), 0, nil},
		{"one of two signatures matches (rotation)", testSecret, rotated, body, sent, time.Minute, nil},
		{"spaces after commas", testSecret, "t=1795271400, v1=" + good[len("t=1795271400,v1="):], body, sent, time.Minute, nil},
		{"wrong secret", "another-secret-0000", good, body, sent, time.Minute, ErrSignatureMismatch},
		{"empty secret", "", Sign("", sent, body), body, sent, time.Minute, ErrSignatureMismatch},
		{"changed body", testSecret, good, []byte(`{"id":"evt_1","type":"deposit.status_changed" }`), sent, time.Minute, ErrSignatureMismatch},
		{"another time in the header", testSecret, "t=1795271401" + good[len("t=1795271400"):], body, sent, time.Minute, ErrSignatureMismatch},
		{"stale", testSecret, good, body, sent.Add(6 * time.Minute), 5 * time.Minute, ErrSignatureExpired},
		{"stale, default tolerance", testSecret, good, body, sent.Add(10 * time.Minute), 0, ErrSignatureExpired},
		{"from the future", testSecret, good, body, sent.Add(-2 * time.Minute), time.Minute, ErrSignatureExpired},
		{"empty header", testSecret, "", body, sent, time.Minute, ErrSignatureMalformed},
		{"no time", testSecret, good[len("t=1795271400,"):], body, sent, time.Minute, ErrSignatureMalformed},
		{"no signature", testSecret, "t=1795271400", body, sent, time.Minute, ErrSignatureMalformed},
		{"two times", testSecret, "t=1795271400," + good, body, sent, time.Minute, ErrSignatureMalformed},
		{"time not a number", testSecret, "t=soon,v1=00", body, sent, time.Minute, ErrSignatureMalformed},
		{"not key=value", testSecret, "garbage", body, sent, time.Minute, ErrSignatureMalformed},
		{"signature not hex", testSecret, "t=1795271400,v1=zz", body, sent, time.Minute, ErrSignatureMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifySignature(tc.secret, tc.header, tc.body, tc.now, tc.tol); !errors.Is(err, tc.want) {
				t.Errorf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}
