package cashierpages

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// The screens carry their state in two sealed values (AES-256-GCM with the
// screens' key; the purpose is the additional data, so one cannot stand in
// for the other):
//
//   - the handle (`s`) of a cashier session: the session secret, the chosen
//     account and the screen's lang/theme/source. It is in the URL of every
//     page of the flow, so pages work without cookies (third-party cookies
//     are often blocked in cTrader's iframe and WebView) and without
//     JavaScript; the identity secret itself never appears in a URL, and the
//     handle stops working when the session ends. It is never given to a
//     payment provider.
//   - the ticket (`t`) of one deposit or withdrawal: its id, the user and
//     the screen's preferences. It is the provider's return URL and the
//     status page's address, and it allows only looking at that operation,
//     retrying it with the same details, and entering its 2FA code.
const (
	purposeHandle = "h1"
	purposeTicket = "t1"
)

// handle is the sealed state of a cashier session's screens.
type handle struct {
	Session string    `json:"s"`
	Login   int64     `json:"a,omitempty"`
	Lang    string    `json:"l,omitempty"`
	Theme   string    `json:"t,omitempty"`
	Source  string    `json:"o,omitempty"`
	Expires time.Time `json:"e"`
}

// ticket is the sealed address of one deposit ("d") or withdrawal ("w"),
// or of a deposit request on its way to the provider ("r": the provider's
// return URL, made before funding names the deposit; it carries the
// request so that the deposit can be found again by it).
type ticket struct {
	Kind    string    `json:"k"`
	ID      string    `json:"i"`
	UserID  string    `json:"u"`
	Email   string    `json:"m,omitempty"`
	Login   int64     `json:"a,omitempty"`
	Lang    string    `json:"l,omitempty"`
	Theme   string    `json:"t,omitempty"`
	Source  string    `json:"o,omitempty"`
	Expires time.Time `json:"e"`
	// The request of a return ticket.
	Method   string `json:"x,omitempty"`
	Amount   string `json:"y,omitempty"`
	Currency string `json:"z,omitempty"`
	// The customer's country and KYC level when the request was made
	// (Profiled), so that finding the deposit again needs no profile read.
	Profiled bool   `json:"p,omitempty"`
	Country  string `json:"c,omitempty"`
	KYCLevel int    `json:"v,omitempty"`
}

// sealer seals and opens values with one key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	const op = "cashierpages.newSealer"
	if len(key) != 32 {
		return nil, errs.Ef(errs.Invalid, op, "the screens key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(purpose string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", errs.Wrap("cashierpages.seal", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", errs.Wrap("cashierpages.seal", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

// open reads a sealed value into v. It returns errs.Invalid for anything
// that was not sealed with this key for this purpose, and errs.Expired when
// the value's Expires is before now.
func (s *sealer) open(purpose, sealed string, now time.Time, v interface{ expires() time.Time }) error {
	const op = "cashierpages.open"
	if sealed == "" || len(sealed) > 2048 {
		return errs.E(errs.Invalid, op, "missing or oversized")
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errs.E(errs.Invalid, op, "malformed")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(purpose))
	if err != nil {
		return errs.E(errs.Invalid, op, "not sealed by us")
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return errs.E(errs.Invalid, op, "unreadable")
	}
	if !now.Before(v.expires()) {
		return errs.E(errs.Expired, op, "expired")
	}
	return nil
}

func (h *handle) expires() time.Time { return h.Expires }
func (t *ticket) expires() time.Time { return t.Expires }
