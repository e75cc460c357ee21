package identity

import (
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/password"
)

// PasswordParams is the argon2id cost (internal/password); every hash
// records the parameters it was made with.
type PasswordParams = password.Params

// DefaultPasswordParams follow the OWASP recommendation for argon2id
// (19 MiB, two passes, one thread).
var DefaultPasswordParams = password.Default

// Password length limits: long enough for passphrases, short enough that
// hashing stays cheap.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

func checkPasswordPolicy(op, password string) error {
	switch n := len([]rune(password)); {
	case n < MinPasswordLen:
		return errs.Ef(errs.Invalid, op, "password must have at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return errs.Ef(errs.Invalid, op, "password must have at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// hashPassword returns an encoded argon2id hash (internal/password).
func hashPassword(pw string, p PasswordParams) (string, error) {
	h, err := password.Hash(pw, p)
	return h, errs.Wrap("identity.hashPassword", err)
}

// checkPassword reports whether pw matches the encoded hash, in constant
// time. A malformed hash never matches.
func checkPassword(encoded, pw string) bool { return password.Check(encoded, pw) }
