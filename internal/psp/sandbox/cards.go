package sandbox

import (
	"strings"

	"github.com/opencashier/cashier/internal/psp"
)

// CardBehaviour is what the sandbox does with a test card.
type CardBehaviour string

// The card behaviours.
const (
	CardSucceeds          CardBehaviour = "succeeds"           // authorised and captured at once
	CardInsufficientFunds CardBehaviour = "insufficient_funds" // declined: insufficient funds
	CardDoNotHonour       CardBehaviour = "do_not_honour"      // declined: do not honour
	CardExpired           CardBehaviour = "expired_card"       // declined: expired card
	CardProcessingError   CardBehaviour = "processing_error"   // failed: error at the provider
	CardThreeDS           CardBehaviour = "three_d_secure"     // asks for a one-time code first
	CardDelayed           CardBehaviour = "delayed"            // pending, then succeeds after the delay
)

// Payout outcomes for cards, bank accounts and wallets.
const (
	PayoutPaid     = "paid"     // paid at once
	PayoutRejected = "rejected" // rejected at once
	PayoutDelayed  = "delayed"  // processing, paid after the delay
)

// TestCard is a card number the sandbox's hosted page accepts. Any future
// expiry date and any three-digit CVC go with it.
type TestCard struct {
	Number    string
	Brand     string
	Behaviour CardBehaviour
	// Payout is what happens to a payout to this card's token.
	Payout string
	// Country is the issuing country (ISO 3166-1 alpha-2) the sandbox
	// reports in psp.Instrument.Country.
	Country string
	Note    string
}

// TestCards are the sandbox's test cards. Every other number is refused on
// the hosted page, so a real card number typed by mistake goes nowhere. All
// are issued in the US except 4000 0007 6000 0002 (Brazil).
var TestCards = []TestCard{
	{"4242424242424242", "visa", CardSucceeds, PayoutPaid, "US", "Succeeds. Payouts to it are paid at once."},
	{"5555555555554444", "mastercard", CardSucceeds, PayoutPaid, "US", "Succeeds (Mastercard). Payouts to it are paid at once."},
	{"4000000000009995", "visa", CardInsufficientFunds, PayoutPaid, "US", "Declined: insufficient funds."},
	{"4000000000000002", "visa", CardDoNotHonour, PayoutPaid, "US", "Declined: do not honour."},
	{"4000000000000069", "visa", CardExpired, PayoutPaid, "US", "Declined: expired card."},
	{"4000000000000119", "visa", CardProcessingError, PayoutPaid, "US", "Fails: processing error at the provider."},
	{"4000000000003220", "visa", CardThreeDS, PayoutPaid, "US", "Asks for a 3-D Secure one-time code (" + ThreeDSCode + " passes), then succeeds."},
	{"4000000000000259", "visa", CardDelayed, PayoutPaid, "US", "Pending, then succeeds after the delay (or Complete on the control page)."},
	{"4000000000000077", "visa", CardSucceeds, PayoutRejected, "US", "Succeeds. Payouts to it are rejected."},
	{"4000000000000093", "visa", CardSucceeds, PayoutDelayed, "US", "Succeeds. Payouts to it are paid after the delay."},
	{"4000000760000002", "visa", CardSucceeds, PayoutPaid, "BR", "Succeeds; issued in Brazil (BR), for the card-country rule. Payouts to it are paid at once."},
}

// ThreeDSCode is the one-time code that passes the 3-D Secure page.
const ThreeDSCode = "123456"

// MaxOTPAttempts is how many wrong codes decline a 3-D Secure payment.
const MaxOTPAttempts = 3

// Test destinations for bank and e-wallet payouts. Any other valid IBAN or
// wallet id is paid at once.
const (
	RejectedIBAN   = "GB82WEST12345698765432"
	DelayedIBAN    = "NL91ABNA0417164300"
	RejectedWallet = "reject@wallet.test"
	DelayedWallet  = "delayed@wallet.test"
)

// DeclineFor is the decline code a behaviour ends in ("" for none).
func (b CardBehaviour) DeclineFor() string {
	switch b {
	case CardInsufficientFunds:
		return psp.DeclineInsufficientFunds
	case CardDoNotHonour:
		return psp.DeclineDoNotHonour
	case CardExpired:
		return psp.DeclineExpiredCard
	case CardProcessingError:
		return psp.DeclineProviderError
	}
	return ""
}

func lookupTestCard(number string) (TestCard, bool) {
	for _, c := range TestCards {
		if c.Number == number {
			return c, true
		}
	}
	return TestCard{}, false
}

// cleanCardNumber removes the spaces and dashes people type.
func cleanCardNumber(s string) string {
	return strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(strings.TrimSpace(s))
}

// luhn reports whether number (digits only) passes the Luhn check.
func luhn(number string) bool {
	if len(number) < 12 || len(number) > 19 {
		return false
	}
	sum := 0
	for i := range len(number) {
		c := number[len(number)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// FormatCardNumber groups a test card's digits in fours for display.
func FormatCardNumber(n string) string {
	var b strings.Builder
	for i, r := range n {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
