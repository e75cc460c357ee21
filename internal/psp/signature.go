package psp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// DefaultTolerance is how far a signed webhook's timestamp may lie from
// our clock, in either direction, before the webhook is refused as stale.
const DefaultTolerance = 5 * time.Minute

// Sign returns the signature header value for body sent at t with secret:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">". This is
// the scheme of the sandbox provider and of several real providers; an
// adapter for a provider with the same scheme can reuse Sign and Verify.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature header made by Sign against body, secret and
// the current time now. Several v1 entries are allowed (a provider rotating
// its secret sends one per secret); one match is enough. The comparison is
// constant-time.
//
// It returns an errs.Unauthorized error for a missing or malformed header
// or a signature that does not match, and an errs.Expired error when the
// signature is valid but its timestamp lies more than tolerance before or
// after now (a replayed or badly delayed webhook). The signature is checked
// first, so a forged header never reports as merely stale.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	const op = "psp.Verify"
	if len(secret) == 0 {
		return errs.E(errs.Unauthorized, op, "no webhook secret is configured")
	}
	if header == "" {
		return errs.E(errs.Unauthorized, op, "webhook signature header is missing")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errs.E(errs.Unauthorized, op, "webhook signature header is malformed")
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return errs.E(errs.Unauthorized, op, "webhook signature is not hex")
			}
			sigs = append(sigs, sig)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errs.E(errs.Unauthorized, op, "webhook signature header needs t= and v1=")
	}
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return errs.E(errs.Unauthorized, op, "webhook signature does not match")
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > tolerance || age < -tolerance {
		return errs.Ef(errs.Expired, op, "webhook timestamp is %s away from our clock; the tolerance is %s", age.Round(time.Second).Abs(), tolerance)
	}
	return nil
}
