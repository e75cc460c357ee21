package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Limits of Query.Limit.
const (
	DefaultSearchLimit = 50
	MaxSearchLimit     = 1000
)

// Query selects entries for Search. Empty fields do not filter; the
// filters that are set must all match.
type Query struct {
	// Actor matches exactly ("staff:stf_…").
	Actor string
	// Action matches as a prefix: "withdrawal." finds every withdrawal
	// action, "withdrawal.approved" that one (and any action it begins).
	Action string
	// Subject matches exactly ("wd_…").
	Subject string
	// Text matches as a case-sensitive substring of any detail value.
	Text string
	// From (inclusive) and To (exclusive) bound the entries' times.
	From, To time.Time
	// BeforeSeq, when positive, returns only entries older than that seq:
	// pass the last seq of a page to get the next.
	BeforeSeq int64
	// Limit is the most entries returned (default DefaultSearchLimit, at
	// most MaxSearchLimit).
	Limit int
}

// Search returns the entries that match q, newest first. It returns
// errs.Invalid for a malformed query (a limit out of range, an action
// prefix with characters no action has, From not before To), errs.Internal
// for an entry whose stored detail cannot be read (run Verify), and a
// wrapped database error otherwise.
func (l *Log) Search(ctx context.Context, q Query) ([]Entry, error) {
	const op = "audit.Search"
	switch {
	case q.Limit < 0 || q.Limit > MaxSearchLimit:
		return nil, errs.Ef(errs.Invalid, op, "the limit must be between 1 and %d", MaxSearchLimit)
	case q.BeforeSeq < 0:
		return nil, errs.E(errs.Invalid, op, "the seq to page before must be positive")
	case !validAction(q.Action, true):
		return nil, errs.Ef(errs.Invalid, op, "no action begins with %q: actions are lowercase letters, digits, '.', '_' and '-'", q.Action)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return nil, errs.E(errs.Invalid, op, "the start of the time range must be before its end")
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	where, args := []string{"1 = 1"}, []any{}
	if q.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, q.Actor)
	}
	if q.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, q.Subject)
	}
	if q.Action != "" {
		// Actions are ASCII, so the entries that begin with the prefix are
		// those from the prefix up to (not including) the prefix with its
		// last byte raised by one, in bytewise order.
		upper := q.Action[:len(q.Action)-1] + string(q.Action[len(q.Action)-1]+1)
		where, args = append(where, "action >= ? AND action < ?"), append(args, q.Action, upper)
	}
	if !q.From.IsZero() {
		where, args = append(where, "at >= ?"), append(args, sqlstore.Micros(q.From))
	}
	if !q.To.IsZero() {
		where, args = append(where, "at < ?"), append(args, sqlstore.Micros(q.To))
	}
	if q.Text != "" {
		// Pre-select on the stored JSON, where the text appears escaped as
		// the encoder escapes it; then keep only entries where it is in a
		// value, not just in a key.
		fn := "instr"
		if l.db.Dialect() == sqlstore.Postgres {
			fn = "strpos"
		}
		where, args = append(where, fn+"(detail, ?) > 0"), append(args, jsonEscaped(q.Text))
	}
	out := make([]Entry, 0, min(limit, 64))
	before := q.BeforeSeq
	for len(out) < limit {
		batch := limit - len(out)
		if q.Text != "" {
			batch = max(batch, 100)
		}
		w, a := where, args
		if before > 0 {
			w, a = append(w[:len(w):len(w)], "seq < ?"), append(a[:len(a):len(a)], before)
		}
		query := `SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_entries WHERE ` +
			strings.Join(w, " AND ") + ` ORDER BY seq DESC LIMIT ?`
		n, err := l.searchBatch(ctx, query, append(a[:len(a):len(a)], batch), func(e Entry) bool {
			before = e.Seq
			if q.Text != "" && !valueContains(e.Detail, q.Text) {
				return true
			}
			out = append(out, e)
			return len(out) < limit
		})
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		if n < batch {
			break
		}
	}
	return out, nil
}

// searchBatch runs one page of a search, giving each entry to keep until
// it returns false, and returns how many rows it read.
func (l *Log) searchBatch(ctx context.Context, query string, args []any, keep func(Entry) bool) (int, error) {
	rows, err := l.db.Query(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var s storedEntry
		if err := rows.Scan(&s.seq, &s.at, &s.actor, &s.action, &s.subject, &s.detail, &s.prevHash, &s.hash); err != nil {
			return n, err
		}
		detail, err := decodeDetail(s.detail)
		if err != nil {
			return n, errs.Ef(errs.Internal, "audit.Search", "entry %d has an unreadable detail (run cashier audit verify): %v", s.seq, err)
		}
		e := Entry{Seq: s.seq, At: sqlstore.FromMicros(s.at), Record: Record{Actor: s.actor, Action: s.action, Subject: s.subject, Detail: detail},
			PrevHash: s.prevHash, Hash: s.hash}
		if !keep(e) {
			break
		}
	}
	return n, rows.Err()
}

// jsonEscaped returns s as encodeDetail writes it inside a JSON string.
func jsonEscaped(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}

func valueContains(d map[string]string, text string) bool {
	for _, v := range d {
		if strings.Contains(v, text) {
			return true
		}
	}
	return false
}
