package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/opencashier/cashier/internal/errs"
)

// PasswordParams is the argon2id cost. Every hash string records the
// parameters it was made with, so they can be raised without invalidating
// existing passwords.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultPasswordParams follow the OWASP recommendation for argon2id
// (19 MiB, two passes, one thread).
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

func (p PasswordParams) validate() error {
	if p.MemoryKiB < 8 || p.Time < 1 || p.Threads < 1 {
		return errs.Ef(errs.Invalid, "identity.PasswordParams", "argon2id parameters m=%d t=%d p=%d are too weak to be valid", p.MemoryKiB, p.Time, p.Threads)
	}
	return nil
}

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

const saltLen, keyLen = 16, 32

// hashPassword returns an encoded argon2id hash:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (base64, no padding).
func hashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", errs.Wrap("identity.hashPassword", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the encoded hash, in
// constant time. A malformed hash never matches.
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.validate() != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
