package reconcile

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// micros stores an instant, zero as 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return sqlstore.Micros(t)
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return sqlstore.FromMicros(v)
}

const caseColumns = `id, run_id, last_run_id, seen, kind, subject, ref, expected, actual, evidence, status, resolved_by, note, opened_at, updated_at, resolved_at`

type scanner interface{ Scan(dest ...any) error }

func scanCase(row scanner) (Case, error) {
	var (
		c                Case
		kind, status, ev string
		opened, updated  int64
		resolved         sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.RunID, &c.LastRunID, &c.Seen, &kind, &c.Subject, &c.Ref, &c.Expected, &c.Actual, &ev, &status,
		&c.ResolvedBy, &c.Note, &opened, &updated, &resolved); err != nil {
		return Case{}, err
	}
	c.Kind, c.Status, c.Evidence = Kind(kind), CaseStatus(status), json.RawMessage(ev)
	c.OpenedAt, c.UpdatedAt, c.ResolvedAt = sqlstore.FromMicros(opened), sqlstore.FromMicros(updated), sqlstore.FromNullMicros(resolved)
	return c, nil
}

// CaseFilter selects cases. Empty fields match every case.
type CaseFilter struct {
	Status  CaseStatus
	Kind    Kind
	Subject string // a login or a payment id
	RunID   string // cases a run opened or found again
	// BeforeID pages backwards: only cases with a smaller (older) id.
	BeforeID string
	// Limit caps the result; zero means 100, at most 1000.
	Limit int
}

// Cases returns the cases that match f, newest first. It returns an
// errs.Invalid error for a negative limit or an unknown status, and a
// wrapped database error otherwise.
func (s *Service) Cases(ctx context.Context, f CaseFilter) ([]Case, error) {
	const op = "reconcile.Cases"
	var (
		where []string
		args  []any
	)
	add := func(cond string, vs ...any) { where, args = append(where, cond), append(args, vs...) }
	switch f.Status {
	case "":
	case Open, Resolved:
		add("status = ?", string(f.Status))
	default:
		return nil, errs.Ef(errs.Invalid, op, "case status %q is not open or resolved", f.Status)
	}
	if f.Kind != "" {
		add("kind = ?", string(f.Kind))
	}
	if f.Subject != "" {
		add("subject = ?", f.Subject)
	}
	if f.RunID != "" {
		add("(run_id = ? OR last_run_id = ?)", f.RunID, f.RunID)
	}
	if f.BeforeID != "" {
		add("id < ?", f.BeforeID)
	}
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, errs.E(errs.Invalid, op, "limit must not be negative")
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	q := `SELECT ` + caseColumns + ` FROM reconcile_cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.d.DB.Query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, c)
	}
	return out, errs.Wrap(op, rows.Err())
}

// Case returns one case. It returns an errs.NotFound error for an unknown
// id.
func (s *Service) Case(ctx context.Context, id string) (Case, error) {
	const op = "reconcile.Case"
	c, err := scanCase(s.d.DB.QueryRow(ctx, `SELECT `+caseColumns+` FROM reconcile_cases WHERE id = ?`, id))
	if isNoRows(err) {
		return Case{}, errs.Ef(errs.NotFound, op, "no reconciliation case %s", id)
	}
	return c, errs.Wrap(op, err)
}

// Resolve closes an open case with the actor who resolved it and a note
// saying how (what was booked or corrected, or why the difference is
// right), and records it in the audit trail in the same transaction. It
// returns an errs.Invalid error without an actor or a note, errs.NotFound
// for an unknown case, and errs.Conflict for a case already resolved.
func (s *Service) Resolve(ctx context.Context, id, actor, note string) (Case, error) {
	const op = "reconcile.Resolve"
	actor, note = strings.TrimSpace(actor), strings.TrimSpace(note)
	switch {
	case actor == "":
		return Case{}, errs.E(errs.Invalid, op, "who resolves the case is required")
	case note == "":
		return Case{}, errs.E(errs.Invalid, op, "a note saying how the case was resolved is required")
	}
	var out Case
	err := s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		c, err := scanCase(tx.QueryRow(ctx, `SELECT `+caseColumns+` FROM reconcile_cases WHERE id = ?`+tx.ForUpdate(), id))
		if isNoRows(err) {
			return errs.Ef(errs.NotFound, op, "no reconciliation case %s", id)
		}
		if err != nil {
			return errs.Wrap(op, err)
		}
		if c.Status != Open {
			return errs.Ef(errs.Conflict, op, "case %s was resolved by %s", id, c.ResolvedBy)
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE reconcile_cases SET status = 'resolved', resolved_by = ?, note = ?, resolved_at = ?, updated_at = ? WHERE id = ? AND status = 'open'`,
			actor, note, sqlstore.Micros(now), sqlstore.Micros(now), id); err != nil {
			return errs.Wrap(op, err)
		}
		if err := s.d.Audit.RecordTx(ctx, tx, audit.Record{Actor: actor, Action: "reconcile.case_resolved", Subject: id,
			Detail: map[string]string{"kind": string(c.Kind), "subject": c.Subject, "ref": c.Ref, "expected": c.Expected,
				"actual": c.Actual, "note": note}}); err != nil {
			return errs.Wrap(op, err)
		}
		c.Status, c.ResolvedBy, c.Note, c.ResolvedAt, c.UpdatedAt = Resolved, actor, note, now, now
		out = c
		return nil
	})
	return out, err
}

const runColumns = `id, actor, login, window_from, window_to, status, accounts, pushes, payments, report_lines, differences, new_cases, detail, started_at, finished_at`

func scanRun(row scanner) (Run, error) {
	var (
		r                         Run
		status, detail            string
		from, to, started, finish int64
	)
	if err := row.Scan(&r.ID, &r.Actor, &r.Login, &from, &to, &status, &r.Accounts, &r.Pushes, &r.Payments, &r.ReportLine,
		&r.Differences, &r.NewCases, &detail, &started, &finish); err != nil {
		return Run{}, err
	}
	if err := json.Unmarshal([]byte(detail), &r.Detail); err != nil {
		return Run{}, err
	}
	r.Status, r.From, r.To = RunStatus(status), fromMicros(from), sqlstore.FromMicros(to)
	r.StartedAt, r.FinishedAt = sqlstore.FromMicros(started), sqlstore.FromMicros(finish)
	return r, nil
}

// Runs returns the latest runs, newest first; limit zero means 20, at most
// 500. It returns a wrapped database error if the query fails.
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	const op = "reconcile.Runs"
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 500)
	rows, err := s.d.DB.Query(ctx, `SELECT `+runColumns+` FROM reconcile_runs ORDER BY started_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out = append(out, r)
	}
	return out, errs.Wrap(op, rows.Err())
}

// GetRun returns one run. It returns an errs.NotFound error for an unknown
// id.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	const op = "reconcile.GetRun"
	r, err := scanRun(s.d.DB.QueryRow(ctx, `SELECT `+runColumns+` FROM reconcile_runs WHERE id = ?`, id))
	if isNoRows(err) {
		return Run{}, errs.Ef(errs.NotFound, op, "no reconciliation run %s", id)
	}
	return r, errs.Wrap(op, err)
}
