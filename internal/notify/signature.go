package notify

// This file uses the standard library only, so that a broker can copy
// Sign and VerifySignature into their own Go code as they are.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>".
const SignatureHeader = "OpenCashier-Signature"

// DefaultTolerance is how far a signature's time may be from the
// receiver's clock when VerifySignature is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// The errors of VerifySignature.
var (
	ErrSignatureMalformed = errors.New("webhook signature header is malformed")
	ErrSignatureMismatch  = errors.New("webhook signature does not match the body")
	ErrSignatureExpired   = errors.New("webhook signature is too old or from the future")
)

// Sign returns the OpenCashier-Signature header for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the
// secret>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

func signature(secret, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return mac.Sum(nil)
}

// VerifySignature checks a webhook as a broker's CRM receives it: header
// is the OpenCashier-Signature header, body the raw request body (before
// any JSON parsing), now the receiver's clock. The signature must be an
// HMAC-SHA256 of "<t>.<body>" with secret (any of several v1 values may
// match, for a secret being rotated), and t must be within tolerance of now
// (DefaultTolerance if tolerance is not positive), which stops an old
// request from being replayed. It returns ErrSignatureMalformed for a
// header it cannot read, ErrSignatureMismatch for a wrong signature, a
// changed body or an empty secret, and ErrSignatureExpired for a time
// outside the tolerance.
func VerifySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var (
		ts   string
		sigs []string
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrSignatureMalformed
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrSignatureMalformed
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrSignatureMalformed
	}
	if secret == "" {
		return ErrSignatureMismatch
	}
	want := signature(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return ErrSignatureExpired
	}
	return nil
}
