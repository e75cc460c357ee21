package audit

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"maps"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Schema is the audit part of the database (version 00600): the entries
// and the head row of the chain.
var Schema = sqlstore.Schema{Name: "audit", FS: mustSub(migrations, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Limits on a Record, in bytes. Action is also limited to lowercase ASCII
// letters, digits, '.', '_' and '-', starting with a letter.
const (
	MaxActorLen       = 128
	MaxActionLen      = 64
	MaxSubjectLen     = 256
	MaxDetailKeys     = 64
	MaxDetailKeyLen   = 64
	MaxDetailValueLen = 8192
	// MaxDetailLen bounds the stored detail as a whole (its JSON form).
	MaxDetailLen = 64 << 10
)

// Entry is one record of the trail as stored: its place in the chain, when
// it was written, what was recorded, and the hashes that chain it.
type Entry struct {
	Seq int64
	At  time.Time
	Record
	PrevHash string
	Hash     string
}

// Anchor returns the entry's seq and hash.
func (e Entry) Anchor() Anchor { return Anchor{Seq: e.Seq, Hash: e.Hash} }

// Log is the audit trail in the database. It is safe for concurrent use;
// appends from any number of processes form one chain.
type Log struct {
	db    *sqlstore.DB
	clock clock.Clock
}

// New returns the Log in db. A nil clock means the system clock.
func New(db *sqlstore.DB, c clock.Clock) *Log {
	if c == nil {
		c = clock.System{}
	}
	return &Log{db: db, clock: c}
}

var _ Recorder = (*Log)(nil)

// RecordTx appends r to the trail inside tx, so it commits or rolls back
// with the change it describes. It locks the chain's head row until tx
// ends, which orders all appends into one chain; call it as late in the
// transaction as possible, so the lock is held briefly. It returns
// errs.Invalid for a record that breaks the rules (an actor and an action
// are required; see the Max constants) and a wrapped database error
// otherwise.
func (l *Log) RecordTx(ctx context.Context, tx *sqlstore.Tx, r Record) error {
	_, err := l.append(ctx, tx, r)
	return err
}

// Record appends r to the trail in a transaction of its own and returns
// the entry written. It returns errs.Invalid for a record that breaks the
// rules and a wrapped database error otherwise.
func (l *Log) Record(ctx context.Context, r Record) (Entry, error) {
	var e Entry
	err := l.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		e, err = l.append(ctx, tx, r)
		return err
	})
	return e, err
}

// Head returns the seq and hash of the last entry as the head row records
// them; seq 0 and GenesisHash for an empty trail. It returns a wrapped
// database error if the row cannot be read.
func (l *Log) Head(ctx context.Context) (Anchor, error) {
	var a Anchor
	if err := l.db.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&a.Seq, &a.Hash); err != nil {
		return Anchor{}, errs.Wrap("audit.Head", err)
	}
	return a, nil
}

func (l *Log) append(ctx context.Context, tx *sqlstore.Tx, r Record) (Entry, error) {
	const op = "audit.Record"
	if err := validate(r); err != nil {
		return Entry{}, err
	}
	detail, err := encodeDetail(r.Detail)
	if err != nil {
		return Entry{}, errs.Wrap(op, err)
	}
	if len(detail) > MaxDetailLen {
		return Entry{}, errs.Ef(errs.Invalid, op, "the detail takes %d bytes, more than %d", len(detail), MaxDetailLen)
	}
	var head Anchor
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+tx.ForUpdate()).Scan(&head.Seq, &head.Hash); err != nil {
		return Entry{}, errs.Wrap(op+": read head", err)
	}
	// The clock is read under the lock, so times do not go backwards along
	// the chain while the clock does not.
	at := sqlstore.Micros(l.clock.Now())
	r.Detail = copyDetail(r.Detail)
	e := Entry{Seq: head.Seq + 1, At: sqlstore.FromMicros(at), Record: r, PrevHash: head.Hash}
	e.Hash = computeHash(e.Seq, at, r, e.PrevHash)
	if _, err := tx.Exec(ctx, `INSERT INTO audit_entries (seq, at, actor, action, subject, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, at, r.Actor, r.Action, r.Subject, detail, e.PrevHash, e.Hash); err != nil {
		return Entry{}, errs.Wrap(op+": insert", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash); err != nil {
		return Entry{}, errs.Wrap(op+": move head", err)
	}
	return e, nil
}

// validate checks a record against the rules in the Max constants.
func validate(r Record) error {
	const op = "audit.Record"
	switch {
	case r.Actor == "":
		return errs.E(errs.Invalid, op, "an audit record needs an actor")
	case r.Action == "":
		return errs.E(errs.Invalid, op, "an audit record needs an action")
	case len(r.Actor) > MaxActorLen:
		return errs.Ef(errs.Invalid, op, "the actor is longer than %d bytes", MaxActorLen)
	case len(r.Action) > MaxActionLen:
		return errs.Ef(errs.Invalid, op, "the action is longer than %d bytes", MaxActionLen)
	case len(r.Subject) > MaxSubjectLen:
		return errs.Ef(errs.Invalid, op, "the subject is longer than %d bytes", MaxSubjectLen)
	case !validLine(r.Actor):
		return errs.E(errs.Invalid, op, "the actor must be UTF-8 text without control characters")
	case !validAction(r.Action, false):
		return errs.Ef(errs.Invalid, op, "the action %q must be lowercase letters, digits, '.', '_' or '-', starting with a letter", r.Action)
	case !validLine(r.Subject):
		return errs.E(errs.Invalid, op, "the subject must be UTF-8 text without control characters")
	case len(r.Detail) > MaxDetailKeys:
		return errs.Ef(errs.Invalid, op, "the detail has %d keys, more than %d", len(r.Detail), MaxDetailKeys)
	}
	for k, v := range r.Detail {
		switch {
		case k == "" || len(k) > MaxDetailKeyLen || !validLine(k):
			return errs.Ef(errs.Invalid, op, "detail key %q must be 1 to %d bytes of UTF-8 text without control characters", k, MaxDetailKeyLen)
		case len(v) > MaxDetailValueLen:
			return errs.Ef(errs.Invalid, op, "detail %q is longer than %d bytes", k, MaxDetailValueLen)
		case !utf8.ValidString(v) || bytes.IndexByte([]byte(v), 0) >= 0:
			return errs.Ef(errs.Invalid, op, "detail %q must be UTF-8 text without NUL bytes", k)
		}
	}
	return nil
}

// validLine reports whether s is valid UTF-8 without control characters.
func validLine(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// validAction reports whether s is an action (or, with prefix, the start
// of one, which may be empty).
func validAction(s string, prefix bool) bool {
	if s == "" {
		return prefix
	}
	if s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// encodeDetail stores the detail as a JSON object with sorted keys and
// without HTML escaping, so a value's text appears in it predictably.
func encodeDetail(d map[string]string) (string, error) {
	if d == nil {
		d = map[string]string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// decodeDetail reads a stored detail; an empty object gives nil.
func decodeDetail(s string) (map[string]string, error) {
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errs.E(errs.Invalid, "audit.decodeDetail", "the detail is not a JSON object")
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}

func copyDetail(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	return maps.Clone(d)
}
