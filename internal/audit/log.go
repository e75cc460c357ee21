package audit

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"maps"
	"strings"
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
// with the change it describes. It checks r at once: for a record that
// breaks the rules (an actor and an action are required; see the Max
// constants) it returns errs.Invalid and queues nothing. It returns no
// other error, as it writes nothing yet.
//
// A valid record is queued in tx, with its own copy of the detail, and
// written just before tx commits (in sqlstore.StageAudit, after every
// other stage) together with the transaction's other records, in the order
// of the calls, all stamped with one reading of the clock. Only then is
// the chain's head row locked, until the commit; that lock orders all
// appends into one chain. A database error while writing rolls tx back,
// and Transact returns it, wrapped with "audit.Record". Records of a
// transaction that rolls back, or of an attempt that Transact retries, are
// not written. Records of two Logs in one transaction are written per Log,
// in the order the Logs first recorded. Call RecordTx inside the function
// given to Transact (or in a function registered with tx.BeforeCommit): a
// record queued after the commit is never written.
func (l *Log) RecordTx(ctx context.Context, tx *sqlstore.Tx, r Record) error {
	_, err := l.enqueue(tx, r)
	return err
}

// Record appends r to the trail in a transaction of its own and returns
// the entry written. It returns errs.Invalid for a record that breaks the
// rules and a wrapped database error otherwise.
func (l *Log) Record(ctx context.Context, r Record) (Entry, error) {
	var p *pending
	err := l.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		p, err = l.enqueue(tx, r)
		return err
	})
	if err != nil {
		return Entry{}, err
	}
	return p.entry, nil
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

// batchKey is the key of a Log's queue in a transaction's locals. It
// holds the Log, so two Logs (on different databases, or with different
// clocks) never share a queue.
type batchKey struct{ log *Log }

// batch is one Log's queue of records in one transaction (one attempt of
// Transact: a retry gets a new Tx and so a new batch).
type batch struct {
	log    *Log
	queued []*pending
	// flushing reports whether a flush is registered for queued.
	flushing bool
}

// pending is a checked record waiting for the commit, and then the entry
// written for it.
type pending struct {
	record Record // with its own copy of the detail
	detail string // the detail as stored
	entry  Entry  // set by flush
}

// enqueue checks and encodes r and queues it in tx, registering the flush
// with the first record.
func (l *Log) enqueue(tx *sqlstore.Tx, r Record) (*pending, error) {
	const op = "audit.Record"
	if err := validate(r); err != nil {
		return nil, err
	}
	detail, err := encodeDetail(r.Detail)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	if len(detail) > MaxDetailLen {
		return nil, errs.Ef(errs.Invalid, op, "the detail takes %d bytes, more than %d", len(detail), MaxDetailLen)
	}
	// The detail is copied now: the caller may change its map before the
	// commit, and the hash is computed then.
	r.Detail = copyDetail(r.Detail)
	p := &pending{record: r, detail: detail}
	b := tx.Local(batchKey{l}, func() any { return &batch{log: l} }).(*batch)
	b.queued = append(b.queued, p)
	if !b.flushing {
		// A record queued after a flush (by a later BeforeCommit function)
		// gets a flush of its own, which runs before the commit too.
		b.flushing = true
		tx.BeforeCommit(sqlstore.StageAudit, b.flush)
	}
	return p, nil
}

// insertChunks are the row counts of the multi-row INSERTs flush uses; a
// batch is split into the largest that fit, so few statement texts exist
// (for the statement caches) and 8 parameters a row stay far below
// SQLite's limit on parameters.
var insertChunks = []int{64, 32, 16, 8, 4, 2, 1}

// insertQueries holds the INSERT statement for each chunk size.
var insertQueries = func() map[int]string {
	m := make(map[int]string, len(insertChunks))
	for _, n := range insertChunks {
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_entries (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES `)
		for i := range n {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?)`)
		}
		m[n] = q.String()
	}
	return m
}()

// flush writes the queued records: it locks the head row, chains the
// records after it in order, inserts them and moves the head once.
func (b *batch) flush(ctx context.Context, tx *sqlstore.Tx) error {
	const op = "audit.Record"
	queued := b.queued
	b.queued, b.flushing = nil, false
	if len(queued) == 0 {
		return nil
	}
	var head Anchor
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+tx.ForUpdate()).Scan(&head.Seq, &head.Hash); err != nil {
		return errs.Wrap(op+": read head", err)
	}
	// The clock is read under the lock, so times do not go backwards along
	// the chain while the clock does not. The records of one transaction
	// share the time: they are written at the same moment.
	at := sqlstore.Micros(b.log.clock.Now())
	prev := head.Hash
	for i, p := range queued {
		e := Entry{Seq: head.Seq + 1 + int64(i), At: sqlstore.FromMicros(at), Record: p.record, PrevHash: prev}
		e.Hash = computeHash(e.Seq, at, e.Record, e.PrevHash)
		p.entry = e
		prev = e.Hash
	}
	for rest := queued; len(rest) > 0; {
		n := chunkSize(len(rest))
		args := make([]any, 0, 8*n)
		for _, p := range rest[:n] {
			e := p.entry
			args = append(args, e.Seq, at, e.Actor, e.Action, e.Subject, p.detail, e.PrevHash, e.Hash)
		}
		if _, err := tx.Exec(ctx, insertQueries[n], args...); err != nil {
			return errs.Wrap(op+": insert", err)
		}
		rest = rest[n:]
	}
	last := queued[len(queued)-1].entry
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash); err != nil {
		return errs.Wrap(op+": move head", err)
	}
	return nil
}

// chunkSize returns the largest of insertChunks not above n (n > 0).
func chunkSize(n int) int {
	for _, c := range insertChunks {
		if c <= n {
			return c
		}
	}
	return 1
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
