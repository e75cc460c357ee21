package psp

import "strings"

// NormalizeIBAN removes spaces from an IBAN and upper-cases it.
func NormalizeIBAN(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, " ", ""))
}

// ValidIBAN reports whether s (spaces allowed) is a syntactically valid
// IBAN: a country code, two check digits and 11 to 30 letters or digits,
// whose ISO 13616 mod-97 checksum is 1. It does not check the country's
// length or that the account exists.
func ValidIBAN(s string) bool {
	iban := NormalizeIBAN(s)
	if len(iban) < 15 || len(iban) > 34 {
		return false
	}
	for i := range 2 {
		if iban[i] < 'A' || iban[i] > 'Z' || iban[i+2] < '0' || iban[i+2] > '9' {
			return false
		}
	}
	rearranged := iban[4:] + iban[:4]
	rem := 0
	for i := 0; i < len(rearranged); i++ {
		c := rearranged[i]
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return rem == 1
}
