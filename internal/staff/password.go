package staff

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/opencashier/cashier/internal/errs"
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

// argon2id cost, as in internal/identity (OWASP: 19 MiB, two passes, one
// thread). Every hash records its parameters.
const (
	argonMemoryKiB       = 19 * 1024
	argonTime            = 2
	argonThreads         = 1
	saltLen, keyLen      = 16, 32
	minMemoryKiB, maxKey = 8, 128
)

// hashPassword returns an encoded argon2id hash in the same format as
// internal/identity: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func hashPassword(password string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (it crashes the program instead)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
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
	var mem, t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &threads); err != nil ||
		mem < minMemoryKiB || t < 1 || threads < 1 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > maxKey {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
