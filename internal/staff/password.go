package staff

import (
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/password"
)

// Password length limits for staff: longer than traders' (identity asks
// for 8), since a staff password guards other people's money.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// checkPasswordPolicy returns errs.Invalid for a password that is too short
// or too long.
func checkPasswordPolicy(op, password string) error {
	switch n := len([]rune(password)); {
	case n < MinPasswordLen:
		return errs.Ef(errs.Invalid, op, "a staff password must have at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return errs.Ef(errs.Invalid, op, "a staff password must have at most %d bytes", MaxPasswordLen)
	case strings.TrimSpace(password) == "":
		return errs.E(errs.Invalid, op, "a staff password cannot be only spaces")
	}
	return nil
}

// hashPassword returns an encoded argon2id hash with the default cost, in
// the format of internal/password that identity uses too.
func hashPassword(pw string) string {
	h, _ := password.Hash(pw, password.Default) // fails only if crypto/rand does, which crashes the program instead
	return h
}

// checkPassword reports whether pw matches the encoded hash, in constant
// time. A malformed hash never matches.
func checkPassword(encoded, pw string) bool { return password.Check(encoded, pw) }
