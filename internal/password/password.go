// Package password hashes and checks passwords with argon2id, in one
// encoded format for traders (internal/identity) and staff
// (internal/staff): $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (base64
// without padding). Every hash records its parameters, so they can be
// raised without invalidating existing passwords.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"

	"github.com/opencashier/cashier/internal/errs"
)

// Params is the argon2id cost.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// Default follows the OWASP recommendation for argon2id (19 MiB, two
// passes, one thread).
var Default = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// Validate returns an errs.Invalid error for parameters too weak to be
// valid.
func (p Params) Validate() error {
	if p.MemoryKiB < 8 || p.Time < 1 || p.Threads < 1 {
		return errs.Ef(errs.Invalid, "password.Params", "argon2id parameters m=%d t=%d p=%d are too weak to be valid", p.MemoryKiB, p.Time, p.Threads)
	}
	return nil
}

const saltLen, keyLen, maxKeyLen = 16, 32, 128

// maxMemoryKiB bounds the memory cost a stored hash may ask for (1 GiB), so
// a corrupted or planted hash cannot make a check allocate without limit.
const maxMemoryKiB = 1 << 20

// slots bounds how many argon2id computations run at once.
var slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// running and mostRunning count computations, for the package's tests.
var running, mostRunning atomic.Int64

// idKey runs argon2id in one of the slots, waiting for one to be free.
func idKey(password, salt []byte, p Params, n uint32) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	now := running.Add(1)
	defer running.Add(-1)
	for {
		most := mostRunning.Load()
		if now <= most || mostRunning.CompareAndSwap(most, now) {
			break
		}
	}
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, n)
}

// Hash returns the encoded argon2id hash of password with cost p, waiting
// for a free slot if GOMAXPROCS hashes or checks are running. It returns a
// wrapped error only if the system's random source fails.
func Hash(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", errs.Wrap("password.Hash", err)
	}
	key := idKey([]byte(password), salt, p, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether password matches the encoded hash, in constant
// time, waiting for a free slot like Hash. A malformed hash, or one asking
// for more than 1 GiB of memory, never matches.
func Check(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.Validate() != nil || p.MemoryKiB > maxMemoryKiB {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > maxKeyLen {
		return false
	}
	got := idKey([]byte(password), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
