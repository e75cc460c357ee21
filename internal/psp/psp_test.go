package psp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

func TestVerify(t *testing.T) {
	secret := []byte("whsec_test")
	sentAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"evt_1","type":"payment.updated"}`)
	good := Sign(secret, sentAt, body)

	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   errs.Code
	}{
		{"valid", secret, good, body, sentAt, ""},
		{"valid 4m59s later", secret, good, body, sentAt.Add(4*time.Minute + 59*time.Second), ""},
		{"valid at exactly five minutes", secret, good, body, sentAt.Add(5 * time.Minute), ""},
		{"stale after five minutes", secret, good, body, sentAt.Add(5*time.Minute + time.Second), errs.Expired},
		{"from the future beyond tolerance", secret, good, body, sentAt.Add(-6 * time.Minute), errs.Expired},
		{"body changed", secret, good, []byte(`{"id":"evt_1","type":"payment.updated","x":1}`), sentAt, errs.Unauthorized},
		{"other secret", []byte("whsec_other"), good, body, sentAt, errs.Unauthorized},
		{"timestamp changed", secret, strings.Replace(good, "t=", "t=1", 1), body, sentAt, errs.Unauthorized},
		{"missing header", secret, "", body, sentAt, errs.Unauthorized},
		{"no signature", secret, "t=1772366400", body, sentAt, errs.Unauthorized},
		{"no timestamp", secret, good[strings.Index(good, "v1="):], body, sentAt, errs.Unauthorized},
		{"not hex", secret, "t=1772366400,v1=zz", body, sentAt, errs.Unauthorized},
		{"garbage", secret, "hello", body, sentAt, errs.Unauthorized},
		{"no secret configured", nil, good, body, sentAt, errs.Unauthorized},
		{"rotated: old and new signatures", []byte("whsec_new"), good + "," + strings.Split(Sign([]byte("whsec_new"), sentAt, body), ",")[1], body, sentAt, ""},
		{"forged and stale reports forged", []byte("whsec_other"), good, body, sentAt.Add(time.Hour), errs.Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, tc.now, DefaultTolerance)
			if got := errs.CodeOf(err); got != tc.want {
				t.Fatalf("Verify = %v (code %q), want code %q", err, got, tc.want)
			}
		})
	}
}

func TestSignFormat(t *testing.T) {
	// Computed independently with: printf '1700000000.{}' | openssl dgst -sha256 -hmac k
	got := Sign([]byte("k"), time.Unix(1700000000, 0), []byte("{}"))
	want := "t=1700000000,v1=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

type fakeProvider struct{ name string }

func (f fakeProvider) Name() string               { return f.name }
func (f fakeProvider) Capabilities() Capabilities { return Capabilities{} }
func (f fakeProvider) StartPayment(context.Context, PaymentRequest) (Payment, error) {
	return Payment{}, nil
}
func (f fakeProvider) PaymentStatus(context.Context, string) (Payment, error) { return Payment{}, nil }
func (f fakeProvider) ParseWebhook(http.Header, []byte) (Event, error)        { return Event{}, nil }
func (f fakeProvider) StartPayout(context.Context, PayoutRequest) (Payout, error) {
	return Payout{}, nil
}
func (f fakeProvider) PayoutStatus(context.Context, string) (Payout, error) { return Payout{}, nil }

func TestRegistry(t *testing.T) {
	r, err := NewRegistry(fakeProvider{"sandbox"}, fakeProvider{"acme-pay"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme-pay", "sandbox"}, r.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	p, err := r.Get("sandbox")
	if err != nil || p.Name() != "sandbox" {
		t.Errorf("Get(sandbox) = %v, %v", p, err)
	}
	if _, err := r.Get("stripe"); !errs.Is(err, errs.NotFound) {
		t.Errorf("Get(stripe) error = %v, want ENOTFOUND", err)
	}
	if err := r.Register(fakeProvider{"sandbox"}); !errs.Is(err, errs.Conflict) {
		t.Errorf("second sandbox: %v, want ECONFLICT", err)
	}
	for _, bad := range []string{"", "Sandbox", "has space", "a/b", strings.Repeat("a", 33), "1st"} {
		if err := r.Register(fakeProvider{bad}); !errs.Is(err, errs.Invalid) {
			t.Errorf("Register(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestCapabilitiesSupports(t *testing.T) {
	c := Capabilities{
		Methods:          []MethodKind{Card, Crypto},
		PayoutMethods:    []MethodKind{Card},
		Currencies:       []string{"USD", "EUR", "BTC"},
		CryptoCurrencies: []string{"BTC"},
	}
	tests := []struct {
		name   string
		kind   MethodKind
		code   string
		payout bool
		want   bool
	}{
		{"card deposit USD", Card, "USD", false, true},
		{"card deposit JPY", Card, "JPY", false, false},
		{"bank deposit", BankTransfer, "USD", false, false},
		{"card payout", Card, "EUR", true, true},
		{"crypto payout", Crypto, "BTC", true, false},
		{"crypto deposit BTC", Crypto, "BTC", false, true},
		{"crypto deposit USD", Crypto, "USD", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Supports(tc.kind, tc.code, tc.payout); got != tc.want {
				t.Errorf("Supports(%s, %s, %v) = %v, want %v", tc.kind, tc.code, tc.payout, got, tc.want)
			}
		})
	}
	if !c.Payouts() || (Capabilities{}).Payouts() {
		t.Error("Payouts should follow PayoutMethods")
	}
	anyCurrency := Capabilities{Methods: []MethodKind{Card}}
	if !anyCurrency.Supports(Card, "KWD", false) {
		t.Error("empty Currencies should mean any currency")
	}
}

func TestValidIBAN(t *testing.T) {
	tests := []struct {
		iban string
		want bool
	}{
		{"DE89370400440532013000", true},
		{"DE89 3704 0044 0532 0130 00", true},
		{"gb82west12345698765432", true},
		{"NL91ABNA0417164300", true},
		{"GB33BUKB20201555555555", true},
		{"DE89370400440532013001", false}, // one digit changed
		{"GB82WEST12345698765423", false}, // two digits swapped
		{"DE8937040044", false},           // too short
		{"1289370400440532013000", false}, // no country
		{"DE89-3704-0044-0532-0130-00", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := ValidIBAN(tc.iban); got != tc.want {
			t.Errorf("ValidIBAN(%q) = %v, want %v", tc.iban, got, tc.want)
		}
	}
}
