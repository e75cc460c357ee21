package payments

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

func TestDefaultCatalogLoads(t *testing.T) {
	c := DefaultCatalog()
	var ids []string
	for _, m := range c.Methods() {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff([]string{"card", "bank-transfer", "ewallet", "crypto"}, ids); diff != "" {
		t.Errorf("default methods in order (-want +got):\n%s", diff)
	}
	card, err := c.Method("card")
	if err != nil {
		t.Fatal(err)
	}
	if got := card.Deposit.Limits["JPY"].Min; got != money.New(1500, money.MustCurrency("JPY")) {
		t.Errorf("card JPY minimum = %s, want 1500 JPY", got)
	}
	if got := card.Deposit.Limits["KWD"].Max; got != money.New(3000000, money.MustCurrency("KWD")) {
		t.Errorf("card KWD maximum = %s, want 3000.000 KWD", got)
	}
	if card.Deposit.Fee.PercentBps != 250 || card.Deposit.Fee.PaidBy != PaidByClient {
		t.Errorf("card deposit fee = %+v, want 250 bps paid by client", card.Deposit.Fee)
	}
	for _, m := range c.Methods() {
		if _, ok := IconSVG(m.Icon); !ok {
			t.Errorf("method %s names icon %q which is not embedded", m.ID, m.Icon)
		}
	}
}

// oneMethod is a method object with the given extra JSON fields.
func oneMethod(fields string) string {
	return `{"id":"card","kind":"card","provider":"sandbox","icon":"card","names":{"en":"Card"},` + fields + `}`
}

// methodsDoc is a methods file with one method.
func methodsDoc(fields string) string { return `{"methods":[` + oneMethod(fields) + `]}` }

func TestLoadMethodsRejects(t *testing.T) {
	okDeposit := `"deposit":{"limits":{"USD":{"min":"10.00","max":"100.00"}}}`
	tests := []struct {
		name string
		doc  string
		want string // a fragment of the message
	}{
		{"not JSON", `{`, "not valid"},
		{"unknown field", methodsDoc(okDeposit + `,"colour":"red"`), `unknown field "colour"`},
		{"no methods", `{"methods":[]}`, `no "methods"`},
		{"bad id", strings.Replace(methodsDoc(okDeposit), `"id":"card"`, `"id":"Card X"`, 1), "id must be"},
		{"bad kind", strings.Replace(methodsDoc(okDeposit), `"kind":"card"`, `"kind":"cheque"`, 1), `kind "cheque"`},
		{"bad icon", strings.Replace(methodsDoc(okDeposit), `"icon":"card"`, `"icon":"../etc/passwd"`, 1), "icon"},
		{"no english name", strings.Replace(methodsDoc(okDeposit), `"en":"Card"`, `"de":"Karte"`, 1), `"en"`},
		{"no direction", methodsDoc(`"order":1`), "needs \"deposit\""},
		{"no currencies", methodsDoc(`"deposit":{"limits":{}}`), "at least one currency"},
		{"unknown currency", methodsDoc(`"deposit":{"limits":{"XYZ":{"min":"1"}}}`), "XYZ"},
		{"JPY with decimals", methodsDoc(`"deposit":{"limits":{"JPY":{"min":"10.5"}}}`), "more decimals than JPY allows (0)"},
		{"KWD with four decimals", methodsDoc(`"deposit":{"limits":{"KWD":{"min":"1.0001"}}}`), "more decimals than KWD allows (3)"},
		{"min above max", methodsDoc(`"deposit":{"limits":{"USD":{"min":"100.00","max":"10.00"}}}`), "min 100.00 is above max 10.00"},
		{"negative min", methodsDoc(`"deposit":{"limits":{"USD":{"min":"-1"}}}`), "must not be negative"},
		{"percent too precise", methodsDoc(`"deposit":{"limits":{"USD":{}},"fee":{"percent":"2.555","paidBy":"client"}}`), "at most two decimals"},
		{"percent 100", methodsDoc(`"deposit":{"limits":{"USD":{}},"fee":{"percent":"100","paidBy":"client"}}`), "below 100"},
		{"fixed fee in other currency", methodsDoc(`"deposit":{"limits":{"USD":{}},"fee":{"fixed":{"EUR":"1.00"},"paidBy":"client"}}`), "fixed fee in EUR"},
		{"fee without payer", methodsDoc(`"deposit":{"limits":{"USD":{}},"fee":{"percent":"1"}}`), "paidBy must say who pays"},
		{"fee with unknown payer", methodsDoc(`"deposit":{"limits":{"USD":{}},"fee":{"percent":"1","paidBy":"bank"}}`), `paidBy "bank"`},
		{"lower-case country", methodsDoc(okDeposit + `,"countries":["de"]`), `country "de"`},
		{"duplicate id", `{"methods":[` + oneMethod(okDeposit) + `,` + oneMethod(okDeposit) + `]}`, "used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadMethods(strings.NewReader(tc.doc))
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("LoadMethods = %v, want EINVALID", err)
			}
			if !strings.Contains(errs.MessageOf(err), tc.want) {
				t.Errorf("message %q does not contain %q", errs.MessageOf(err), tc.want)
			}
		})
	}
}

const filterDoc = `{"methods":[
 {"id":"card","kind":"card","provider":"sandbox","icon":"card","order":20,"names":{"en":"Card","de":"Karte","pt-BR":"Cartão"},
  "deposit":{"limits":{"USD":{},"EUR":{}}},"withdrawal":{"kycLevel":2,"limits":{"USD":{}}}},
 {"id":"sepa","kind":"bank_transfer","provider":"sandbox","icon":"bank","order":10,"names":{"en":"SEPA transfer"},
  "countries":["DE","FR"],"deposit":{"kycLevel":1,"limits":{"EUR":{}}}},
 {"id":"wallet","kind":"ewallet","provider":"sandbox","icon":"wallet","order":30,"names":{"en":"Wallet"},
  "excludedCountries":["US"],"deposit":{"limits":{"USD":{}}}}
]}`

func TestAvailable(t *testing.T) {
	c, err := LoadMethods(strings.NewReader(filterDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"deposit in DE, KYC 1, any currency", Filter{Direction: Deposit, Country: "DE", KYCLevel: 1}, []string{"sepa", "card", "wallet"}},
		{"deposit in DE, KYC 0", Filter{Direction: Deposit, Country: "DE"}, []string{"card", "wallet"}},
		{"deposit in US", Filter{Direction: Deposit, Country: "US", KYCLevel: 5}, []string{"card"}},
		{"deposit EUR in FR", Filter{Direction: Deposit, Currency: "EUR", Country: "FR", KYCLevel: 1}, []string{"sepa", "card"}},
		{"deposit JPY", Filter{Direction: Deposit, Currency: "JPY", Country: "DE", KYCLevel: 9}, nil},
		{"withdrawal KYC 1", Filter{Direction: Withdrawal, Country: "DE", KYCLevel: 1}, nil},
		{"withdrawal KYC 2", Filter{Direction: Withdrawal, Country: "DE", KYCLevel: 2}, []string{"card"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range c.Available(tc.f) {
				got = append(got, m.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Available (-want +got):\n%s", diff)
			}
		})
	}

	eligible := []struct {
		name string
		id   string
		f    Filter
		code errs.Code
		msg  string
	}{
		{"ok", "card", Filter{Direction: Deposit, Currency: "USD"}, "", ""},
		{"unknown", "cheque", Filter{Direction: Deposit}, errs.NotFound, `"cheque" does not exist`},
		{"direction", "sepa", Filter{Direction: Withdrawal, Country: "DE", KYCLevel: 3}, errs.Invalid, "SEPA transfer does not offer withdrawals"},
		{"currency", "card", Filter{Direction: Deposit, Currency: "GBP"}, errs.Invalid, "Card does not offer deposits in GBP"},
		{"country", "wallet", Filter{Direction: Deposit, Country: "US"}, errs.Forbidden, "not offered in your country"},
		{"kyc", "card", Filter{Direction: Withdrawal, Currency: "USD", KYCLevel: 1}, errs.Forbidden, "needs identity verification level 2"},
	}
	for _, tc := range eligible {
		t.Run("Eligible "+tc.name, func(t *testing.T) {
			err := c.Eligible(tc.id, tc.f)
			if errs.CodeOf(err) != tc.code || !strings.Contains(errs.MessageOf(err), tc.msg) {
				t.Errorf("Eligible = %v, want code %q and message containing %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestMethodName(t *testing.T) {
	c, err := LoadMethods(strings.NewReader(filterDoc))
	if err != nil {
		t.Fatal(err)
	}
	card, _ := c.Method("card")
	for lang, want := range map[string]string{"de": "Karte", "de-AT": "Karte", "pt-BR": "Cartão", "fr": "Card", "": "Card", "???": "Card"} {
		if got := card.Name(lang); got != want {
			t.Errorf("Name(%q) = %q, want %q", lang, got, want)
		}
	}
}

func TestIcons(t *testing.T) {
	if diff := cmp.Diff([]string{"bank", "card", "crypto", "generic", "wallet"}, IconNames()); diff != "" {
		t.Errorf("IconNames (-want +got):\n%s", diff)
	}
	svg, ok := IconSVG("card")
	if !ok || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("IconSVG(card) = %.20q, %v", svg, ok)
	}
	for _, bad := range []string{"", "nope", "../icons/card", "card.svg"} {
		if _, ok := IconSVG(bad); ok {
			t.Errorf("IconSVG(%q) found an icon", bad)
		}
	}
}

func TestCheckMethodsAgainstCapabilities(t *testing.T) {
	c, err := LoadMethods(strings.NewReader(filterDoc))
	if err != nil {
		t.Fatal(err)
	}
	full := &fakeProvider{name: "sandbox", caps: psp.Capabilities{
		Methods:       []psp.MethodKind{psp.Card, psp.BankTransfer, psp.EWallet},
		PayoutMethods: []psp.MethodKind{psp.Card},
	}}
	reg, _ := psp.NewRegistry(full)
	if err := CheckMethods(c, reg); err != nil {
		t.Errorf("CheckMethods with a capable provider: %v", err)
	}
	noPayouts := &fakeProvider{name: "sandbox", caps: psp.Capabilities{Methods: full.caps.Methods}}
	reg, _ = psp.NewRegistry(noPayouts)
	if err := CheckMethods(c, reg); !errs.Is(err, errs.Invalid) || !strings.Contains(errs.MessageOf(err), "does not support card withdrawals in USD") {
		t.Errorf("CheckMethods without payouts = %v", err)
	}
	reg, _ = psp.NewRegistry()
	if err := CheckMethods(c, reg); !errs.Is(err, errs.Invalid) || !strings.Contains(errs.MessageOf(err), `provider "sandbox" is not configured`) {
		t.Errorf("CheckMethods without the provider = %v", err)
	}
}
