package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
)

const auditUsage = `Usage: cashier audit verify [--anchor SEQ:HASH]
       cashier audit search [--subject S] [--actor A] [--action PREFIX] [--text T]
                            [--from TIME] [--to TIME] [--before SEQ] [--limit N]
Each takes -database-url URL, or CASHIER_DATABASE_URL.

  verify  read the whole audit trail and check its hash chain: each entry
          matches its hash and links to the one before, no entry is
          missing, the head row matches the last entry. Prints the number
          of entries checked, the head as SEQ:HASH and every problem; exit
          code 1 if there is any.
          Keep the head it prints outside the database (a ticket, your log
          shipping) and pass it back with --anchor SEQ:HASH: whoever can
          write to the database could rewrite the whole chain with fresh
          hashes, but not the anchor you kept.
  search  list entries newest first as tab-separated columns SEQ, AT,
          ACTOR, ACTION, SUBJECT, DETAIL (key=value pairs, values quoted
          when they hold spaces or special characters).
          --subject and --actor match exactly, --action as a prefix
          ("withdrawal." for every withdrawal action), --text as a
          case-sensitive substring of a detail value. --from and --to take
          a date (YYYY-MM-DD, UTC; --to includes that day) or an RFC 3339
          time. --limit is at most 1000 (default 50); for the next page pass
          the last SEQ shown as --before.
`

// audit runs `cashier audit verify|search`.
func (m *Main) audit(ctx context.Context, args []string) error {
	m.setup()
	var sub string
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, auditUsage)
		return nil
	case "verify", "search":
	case "":
		fmt.Fprint(m.Stderr, auditUsage)
		return usageError{errors.New("audit needs a command: verify or search")}
	default:
		fmt.Fprint(m.Stderr, auditUsage)
		return usageError{fmt.Errorf("unknown audit command %q", sub)}
	}
	for _, a := range args[1:] {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(m.Stdout, auditUsage)
			return nil
		}
	}
	name := "audit " + sub
	db, rest, err := m.opsDB(ctx, name, args[1:])
	if err != nil {
		return err
	}
	defer db.Close()
	// opsDB checks the schemas cashier lists; check the audit schema by
	// itself too.
	states, err := db.MigrationStatus(ctx, audit.Schema)
	if err != nil {
		return errs.Wrap(name, err)
	}
	for _, s := range states {
		if !s.Applied {
			return errs.E(errs.Conflict, name, "the database is not migrated (run cashier migrate up)")
		}
	}
	log := audit.New(db, nil)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	help := func(w io.Writer) { fmt.Fprint(w, auditUsage) }
	if sub == "verify" {
		return m.auditVerify(ctx, log, fs, rest, help)
	}
	return m.auditSearch(ctx, log, fs, rest, help)
}

func (m *Main) auditVerify(ctx context.Context, log *audit.Log, fs *flag.FlagSet, args []string, help func(io.Writer)) error {
	anchorText := fs.String("anchor", "", "an earlier head SEQ:HASH that must still be in the chain")
	if err := m.parseFlags(fs, args, help); err != nil {
		return err
	}
	var opts audit.VerifyOptions
	if *anchorText != "" {
		a, err := audit.ParseAnchor(*anchorText)
		if err != nil {
			help(m.Stderr)
			return usageError{err}
		}
		opts.Anchor = &a
	}
	rep, err := log.Verify(ctx, opts)
	if err != nil {
		return opsError(err)
	}
	fmt.Fprint(m.Stdout, rep.String())
	if !rep.OK() {
		return errs.Ef(errs.Conflict, "audit verify", "the audit trail has %d problems", int64(len(rep.Problems))+rep.MoreProblems)
	}
	return nil
}

func (m *Main) auditSearch(ctx context.Context, log *audit.Log, fs *flag.FlagSet, args []string, help func(io.Writer)) error {
	var q audit.Query
	var from, to string
	fs.StringVar(&q.Subject, "subject", "", "what was acted on, exactly (wd_…, user:usr_…)")
	fs.StringVar(&q.Actor, "actor", "", "who acted, exactly (staff:…, operator:…, system)")
	fs.StringVar(&q.Action, "action", "", "the start of the action (withdrawal.)")
	fs.StringVar(&q.Text, "text", "", "a substring of a detail value")
	fs.StringVar(&from, "from", "", "the earliest time, YYYY-MM-DD or RFC 3339")
	fs.StringVar(&to, "to", "", "the latest time, YYYY-MM-DD (that day included) or RFC 3339 (excluded)")
	fs.Int64Var(&q.BeforeSeq, "before", 0, "only entries older than this seq")
	fs.IntVar(&q.Limit, "limit", audit.DefaultSearchLimit, "the most entries shown")
	if err := m.parseFlags(fs, args, help); err != nil {
		return err
	}
	var err error
	if q.From, err = parseAuditTime(from, false); err != nil {
		help(m.Stderr)
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	if q.To, err = parseAuditTime(to, true); err != nil {
		help(m.Stderr)
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	if q.Limit == 0 {
		return usageError{errors.New("--limit must be at least 1")}
	}
	entries, err := log.Search(ctx, q)
	if err != nil {
		return opsError(err)
	}
	var b strings.Builder
	b.WriteString("SEQ\tAT\tACTOR\tACTION\tSUBJECT\tDETAIL\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Actor, e.Action, e.Subject, formatDetail(e.Detail))
	}
	if _, err := io.WriteString(m.Stdout, b.String()); err != nil {
		return err
	}
	switch {
	case len(entries) == 0:
		fmt.Fprintln(m.Stderr, "no entries")
	case len(entries) == q.Limit:
		fmt.Fprintf(m.Stderr, "%d entries; older ones may follow: add --before %d\n", len(entries), entries[len(entries)-1].Seq)
	default:
		fmt.Fprintf(m.Stderr, "%d entries\n", len(entries))
	}
	return nil
}

// parseAuditTime reads a date (UTC; with endOfDay the start of the next
// day, so the day is included in an exclusive bound) or an RFC 3339 time;
// "" is no bound.
func parseAuditTime(s string, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 time", s)
	}
	return t, nil
}

// formatDetail renders a detail as key=value pairs in key order, quoting
// values that would break the line or the columns.
func formatDetail(d map[string]string) string {
	parts := make([]string, 0, len(d))
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, quoteIfNeeded(k)+"="+quoteIfNeeded(d[k]))
	}
	return strings.Join(parts, " ")
}

func quoteIfNeeded(s string) string {
	if q := strconv.Quote(s); s == "" || strings.ContainsAny(s, " =") || q[1:len(q)-1] != s {
		return q
	}
	return s
}
