package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
)

// GenesisHash is the previous hash of the first entry: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// hashVersion opens every hash input, so a later encoding can be told apart.
const hashVersion = "opencashier-audit-v1"

// computeHash returns the lowercase hex SHA-256 of the entry's canonical
// encoding (docs/audit.md): a sequence of fields, each written as its length
// in bytes in decimal, ':', the bytes and ','. The fields are, in order, the
// version tag, seq, at in Unix microseconds, actor, action, subject, the
// number of detail pairs, each detail key and value in bytewise order of the
// keys, and the previous entry's hash.
func computeHash(seq, atMicros int64, r Record, prevHash string) string {
	h := sha256.New()
	field(h, hashVersion)
	field(h, strconv.FormatInt(seq, 10))
	field(h, strconv.FormatInt(atMicros, 10))
	field(h, r.Actor)
	field(h, r.Action)
	field(h, r.Subject)
	field(h, strconv.Itoa(len(r.Detail)))
	for _, k := range slices.Sorted(maps.Keys(r.Detail)) {
		field(h, k)
		field(h, r.Detail[k])
	}
	field(h, prevHash)
	return hex.EncodeToString(h.Sum(nil))
}

func field(h hash.Hash, s string) {
	_, _ = io.WriteString(h, strconv.Itoa(len(s)))
	_, _ = io.WriteString(h, ":")
	_, _ = io.WriteString(h, s)
	_, _ = io.WriteString(h, ",")
}

// Anchor names one entry of the chain by its seq and hash. An operator
// keeps the head printed by `cashier audit verify` outside the database and
// passes it back later: Verify then checks that the entry is still there
// with the same hash, which a rewrite of the chain cannot fake.
type Anchor struct {
	Seq  int64
	Hash string
}

// String renders the anchor as "SEQ:HASH".
func (a Anchor) String() string { return strconv.FormatInt(a.Seq, 10) + ":" + a.Hash }

// ParseAnchor reads "SEQ:HASH" (seq a positive number, hash 64 hex digits).
// It returns errs.Invalid for anything else.
func ParseAnchor(s string) (Anchor, error) {
	const op = "audit.ParseAnchor"
	seqText, hashText, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Anchor{}, errs.E(errs.Invalid, op, "an anchor is SEQ:HASH, as printed by cashier audit verify")
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 {
		return Anchor{}, errs.Ef(errs.Invalid, op, "the anchor's seq %q is not a positive number", seqText)
	}
	a := Anchor{Seq: seq, Hash: strings.ToLower(hashText)}
	if !validHash(a.Hash) {
		return Anchor{}, errs.E(errs.Invalid, op, "the anchor's hash must be 64 hex digits")
	}
	return a, nil
}

func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
