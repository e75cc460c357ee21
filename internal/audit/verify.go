package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
)

// Kind says what is wrong with the chain at a Problem's seq.
type Kind string

// The kinds of problem Verify finds.
const (
	// KindEdited: the entry's stored hash does not match its content; one
	// of its fields was changed after it was written.
	KindEdited Kind = "edited"
	// KindMissing: entries are absent from the middle of the chain (a gap
	// in seq); Problem.Seq is the first one absent.
	KindMissing Kind = "missing"
	// KindLink: the entry's previous hash is not the hash of the entry
	// before it; an entry was inserted, replaced or moved.
	KindLink Kind = "link"
	// KindHead: the head row does not match the last entry; entries were
	// removed from the end (Problem.Seq is the first one gone) or added
	// past the head without the log (Problem.Seq is the first one added).
	KindHead Kind = "head"
	// KindAnchor: the entry an operator noted earlier is gone or has
	// another hash; the chain was rewritten from that entry or before.
	KindAnchor Kind = "anchor"
)

// DefaultMaxProblems is how many problems a Report lists unless
// VerifyOptions says otherwise; the rest are only counted.
const DefaultMaxProblems = 1000

// Problem is one thing wrong with the chain.
type Problem struct {
	Seq    int64
	Kind   Kind
	Detail string
}

// String renders the problem as "entry SEQ: KIND: DETAIL".
func (p Problem) String() string {
	return fmt.Sprintf("entry %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Anchor, when set, is an entry noted earlier (the head printed by an
	// earlier verify, kept outside the database); Verify checks that it
	// is still in the chain with the same hash.
	Anchor *Anchor
	// MaxProblems bounds the problems listed (default DefaultMaxProblems);
	// further problems are counted in Report.MoreProblems.
	MaxProblems int
}

// Report is the outcome of Verify.
type Report struct {
	// Checked is the number of entries read.
	Checked int64
	// Head is the last entry of the chain (seq 0 and GenesisHash when it
	// is empty): the anchor to note for the next verify.
	Head Anchor
	// Anchor is the anchor that was checked, if any.
	Anchor *Anchor
	// Problems lists what is wrong, in order of seq (head problems last).
	Problems []Problem
	// MoreProblems counts problems found beyond VerifyOptions.MaxProblems.
	MoreProblems int64
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.MoreProblems == 0 }

// String renders the report for people: entries checked, the head to
// note, and each problem.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit: checked %d entries\n", r.Checked)
	fmt.Fprintf(&b, "audit: head %s\n", r.Head)
	if r.OK() {
		b.WriteString("audit: clean: every entry matches its hash and links to the one before, and the head row matches the last entry\n")
		if r.Anchor != nil {
			fmt.Fprintf(&b, "audit: anchor %s matches\n", *r.Anchor)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "audit: %d problems\n", int64(len(r.Problems))+r.MoreProblems)
	for _, p := range r.Problems {
		b.WriteString("  - " + p.String() + "\n")
	}
	if r.MoreProblems > 0 {
		fmt.Fprintf(&b, "  … and %d more\n", r.MoreProblems)
	}
	return b.String()
}

// Verify reads the whole chain in seq order, one entry at a time, from one
// consistent snapshot that does not block appends, and checks that each
// entry's hash matches its content and links to the entry before, that seq
// has no gaps, that the head row matches the last entry, and that the
// anchor, if given, is still there with its hash. It returns errs.Invalid
// for a malformed anchor, and an error only when the check itself could not
// run; what is wrong with the chain is in the Report.
//
// Anyone who can write to the database can also rewrite the whole chain
// with fresh hashes, which Verify alone cannot tell from the real one: keep
// the head it reports outside the database and pass it back as the anchor.
func (l *Log) Verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	const op = "audit.Verify"
	if a := opts.Anchor; a != nil && (a.Seq < 1 || !validHash(a.Hash)) {
		return Report{}, errs.E(errs.Invalid, op, "the anchor needs a positive seq and a hash of 64 lowercase hex digits")
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = DefaultMaxProblems
	}
	// A read-only transaction is a snapshot on both engines: REPEATABLE
	// READ on PostgreSQL, a deferred read transaction on SQLite in WAL
	// mode. Neither blocks writers.
	tx, err := l.db.SQL().BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Report{}, errs.Wrap(op+": begin", err)
	}
	defer func() { _ = tx.Rollback() }()

	v := verifier{opts: opts, last: Anchor{Hash: GenesisHash}}
	v.report.Anchor = opts.Anchor
	// The first read fixes the snapshot on SQLite; read the head in it.
	var head Anchor
	headFound := true
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash); errors.Is(err, sql.ErrNoRows) {
		headFound = false
	} else if err != nil {
		return Report{}, errs.Wrap(op+": read head", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_entries ORDER BY seq`)
	if err != nil {
		return Report{}, errs.Wrap(op+": read entries", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s storedEntry
		if err := rows.Scan(&s.seq, &s.at, &s.actor, &s.action, &s.subject, &s.detail, &s.prevHash, &s.hash); err != nil {
			return Report{}, errs.Wrap(op+": read entries", err)
		}
		v.check(s)
	}
	if err := rows.Err(); err != nil {
		return Report{}, errs.Wrap(op+": read entries", err)
	}
	v.finish(head, headFound)
	return v.report, nil
}

// storedEntry is a row of audit_entries as stored.
type storedEntry struct {
	seq, at                                        int64
	actor, action, subject, detail, prevHash, hash string
}

// verifier walks the chain in seq order.
type verifier struct {
	opts       VerifyOptions
	report     Report
	last       Anchor // the last entry seen (seq 0, GenesisHash before the first)
	anchorSeen bool
}

func (v *verifier) problem(seq int64, kind Kind, format string, args ...any) {
	if len(v.report.Problems) >= v.opts.MaxProblems {
		v.report.MoreProblems++
		return
	}
	v.report.Problems = append(v.report.Problems, Problem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (v *verifier) check(s storedEntry) {
	v.report.Checked++
	expected := v.last.Seq + 1
	if s.seq < expected {
		// Only possible for seq 0 or below: the chain starts at 1.
		v.problem(s.seq, KindLink, "an entry with seq %d lies before the start of the chain", s.seq)
		return
	}
	gap := s.seq > expected
	if gap {
		if s.seq == expected+1 {
			v.problem(expected, KindMissing, "entry %d is missing (the chain goes from %d to %d)", expected, v.last.Seq, s.seq)
		} else {
			v.problem(expected, KindMissing, "entries %d to %d are missing (the chain goes from %d to %d)", expected, s.seq-1, v.last.Seq, s.seq)
		}
	}
	if a := v.opts.Anchor; a != nil && !v.anchorSeen && s.seq > a.Seq {
		v.anchorSeen = true
		v.problem(a.Seq, KindAnchor, "the anchored entry %s is gone", *a)
	}
	if detail, err := decodeDetail(s.detail); err != nil {
		v.problem(s.seq, KindEdited, "its detail is no longer a JSON object of strings: %v", err)
	} else if got := computeHash(s.seq, s.at, Record{Actor: s.actor, Action: s.action, Subject: s.subject, Detail: detail}, s.prevHash); got != s.hash {
		v.problem(s.seq, KindEdited, "its content hashes to %s, not to its stored hash %s", short(got), short(s.hash))
	}
	// After a gap the link to the entry before is necessarily broken;
	// the gap is the problem to report.
	if !gap && s.prevHash != v.last.Hash {
		if v.last.Seq == 0 {
			v.problem(s.seq, KindLink, "its previous hash %s is not the genesis hash", short(s.prevHash))
		} else {
			v.problem(s.seq, KindLink, "its previous hash %s is not entry %d's hash %s", short(s.prevHash), v.last.Seq, short(v.last.Hash))
		}
	}
	if a := v.opts.Anchor; a != nil && s.seq == a.Seq {
		v.anchorSeen = true
		if s.hash != a.Hash {
			v.problem(s.seq, KindAnchor, "the anchored entry now has hash %s, not %s: the chain was rewritten", short(s.hash), short(a.Hash))
		}
	}
	v.last = Anchor{Seq: s.seq, Hash: s.hash}
}

func (v *verifier) finish(head Anchor, headFound bool) {
	last := v.last
	v.report.Head = last
	if a := v.opts.Anchor; a != nil && !v.anchorSeen {
		v.problem(a.Seq, KindAnchor, "the anchored entry %s is gone: the chain ends at entry %d", *a, last.Seq)
	}
	switch {
	case !headFound:
		v.problem(last.Seq, KindHead, "the head row is missing")
	case head.Seq > last.Seq:
		v.problem(last.Seq+1, KindHead, "the head records entry %d (hash %s) but the chain ends at entry %d: entries were removed from the end", head.Seq, short(head.Hash), last.Seq)
	case head.Seq < last.Seq:
		v.problem(head.Seq+1, KindHead, "the head records entry %d but the chain goes on to entry %d: entries were added without the log", head.Seq, last.Seq)
	case head.Hash != last.Hash:
		v.problem(last.Seq, KindHead, "the head's hash %s is not entry %d's hash %s", short(head.Hash), last.Seq, short(last.Hash))
	}
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
