package reconcile

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func newID(prefix string) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", errs.Wrap("reconcile.newID", err)
	}
	return prefix + u.String(), nil
}

// Run compares the books as RunOptions selects and records the run and its
// cases in one transaction: a case per difference (or the open case of the
// same difference, updated), and the run with its status, counts and
// figures. A run that finds nothing is recorded too, as clean. What the
// platform or a provider could not answer is named in Run.Detail.Skipped
// and makes the run incomplete rather than failing it. It returns an
// errs.Invalid error for a negative login or a window that ends before it
// starts, and a wrapped error when our own records cannot be read or
// written.
func (s *Service) Run(ctx context.Context, opts RunOptions) (Run, error) {
	const op = "reconcile.Run"
	started := s.now()
	if opts.Actor == "" {
		opts.Actor = "system"
	}
	if opts.To.IsZero() {
		opts.To = started.Add(-s.cfg.Settle)
	}
	switch {
	case opts.Login < 0:
		return Run{}, errs.Ef(errs.Invalid, op, "login %d is not a trading account number", opts.Login)
	case !opts.From.IsZero() && opts.To.Before(opts.From):
		return Run{}, errs.E(errs.Invalid, op, "the window ends before it starts")
	}
	id, err := newID("rcn_")
	if err != nil {
		return Run{}, err
	}
	run := Run{ID: id, Actor: opts.Actor, Login: opts.Login, From: opts.From.UTC(), To: opts.To.UTC(), StartedAt: started}

	ps := &platformState{}
	found, err := s.reconcileAccounts(ctx, &run, opts, ps)
	if err != nil {
		return Run{}, errs.Wrap(op, err)
	}
	more, err := s.reconcileProviders(ctx, &run, opts, window{from: opts.From, to: opts.To})
	if err != nil {
		return Run{}, errs.Wrap(op, err)
	}
	found = append(found, more...)
	run.Detail.Notes = append(ps.notes, run.Detail.Notes...)
	run.FinishedAt = s.now()
	if err := s.record(ctx, &run, found); err != nil {
		return Run{}, errs.Wrap(op, err)
	}
	s.log.InfoContext(ctx, "reconciliation", "run", run.ID, "status", run.Status, "accounts", run.Accounts,
		"payments", run.Payments, "differences", run.Differences, "new_cases", run.NewCases, "skipped", len(run.Detail.Skipped))
	return run, nil
}

// record writes the run and its cases in one transaction, with the audit
// records of the run and of each new case.
func (s *Service) record(ctx context.Context, run *Run, found []finding) error {
	const op = "reconcile.record"
	// One finding per difference, in a stable order.
	seen := map[string]bool{}
	var unique []finding
	for _, f := range found {
		if !seen[f.key()] {
			seen[f.key()] = true
			unique = append(unique, f)
		}
	}
	slices.SortStableFunc(unique, func(a, b finding) int {
		if a.Kind != b.Kind {
			if a.Kind < b.Kind {
				return -1
			}
			return 1
		}
		if a.Subject != b.Subject {
			if a.Subject < b.Subject {
				return -1
			}
			return 1
		}
		if a.Ref < b.Ref {
			return -1
		}
		if a.Ref > b.Ref {
			return 1
		}
		return 0
	})
	return s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		r := *run
		r.Differences, r.NewCases, r.Detail.Cases, r.Detail.Accepted = 0, 0, nil, nil
		if _, err := tx.Exec(ctx, `INSERT INTO reconcile_runs (id, actor, login, window_from, window_to, status, accounts, pushes, payments,
			report_lines, differences, new_cases, detail, started_at, finished_at) VALUES (?, ?, ?, ?, ?, 'clean', 0, 0, 0, 0, 0, 0, '{}', ?, ?)`,
			r.ID, r.Actor, r.Login, micros(r.From), sqlstore.Micros(r.To), sqlstore.Micros(r.StartedAt), sqlstore.Micros(r.FinishedAt)); err != nil {
			return errs.Wrap(op, err)
		}
		for _, f := range unique {
			c, outcome, err := s.recordFinding(ctx, tx, r, f)
			if err != nil {
				return err
			}
			switch outcome {
			case caseNew:
				r.NewCases++
				r.Differences++
				r.Detail.Cases = append(r.Detail.Cases, c.ID)
				if err := s.d.Audit.RecordTx(ctx, tx, audit.Record{Actor: r.Actor, Action: "reconcile.case_opened", Subject: c.ID,
					Detail: map[string]string{"run": r.ID, "kind": string(c.Kind), "subject": c.Subject, "ref": c.Ref,
						"expected": c.Expected, "actual": c.Actual}}); err != nil {
					return errs.Wrap(op, err)
				}
			case caseStillOpen:
				r.Differences++
				r.Detail.Cases = append(r.Detail.Cases, c.ID)
			case caseAccepted:
				r.Detail.Accepted = append(r.Detail.Accepted, c.ID)
			}
		}
		switch {
		case r.Differences > 0:
			r.Status = Differences
		case len(r.Detail.Skipped) > 0:
			r.Status = Incomplete
		default:
			r.Status = Clean
		}
		detail, err := json.Marshal(r.Detail)
		if err != nil {
			return errs.Wrap(op, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE reconcile_runs SET status = ?, accounts = ?, pushes = ?, payments = ?, report_lines = ?,
			differences = ?, new_cases = ?, detail = ? WHERE id = ?`,
			string(r.Status), r.Accounts, r.Pushes, r.Payments, r.ReportLine, r.Differences, r.NewCases, string(detail), r.ID); err != nil {
			return errs.Wrap(op, err)
		}
		if err := s.d.Audit.RecordTx(ctx, tx, audit.Record{Actor: r.Actor, Action: "reconcile.run", Subject: r.ID,
			Detail: map[string]string{"status": string(r.Status), "summary": r.Summary(), "accounts": itoa(int64(r.Accounts)),
				"payments": itoa(int64(r.Payments)), "differences": itoa(int64(r.Differences)), "new_cases": itoa(int64(r.NewCases))}}); err != nil {
			return errs.Wrap(op, err)
		}
		tx.AfterCommit(func() { *run = r })
		return nil
	})
}

type caseOutcome int

const (
	caseNew       caseOutcome = iota // a case was opened
	caseStillOpen                    // the open case of the same difference was updated
	caseAccepted                     // an operator resolved exactly this difference before
)

// recordFinding opens a case for a difference, or updates the open case of
// the same difference, or leaves a difference an operator resolved before
// (same expected and actual) alone.
func (s *Service) recordFinding(ctx context.Context, tx *sqlstore.Tx, run Run, f finding) (Case, caseOutcome, error) {
	const op = "reconcile.recordFinding"
	evidence, err := json.Marshal(f.Evidence)
	if err != nil {
		return Case{}, 0, errs.Wrap(op, err)
	}
	now := sqlstore.Micros(run.FinishedAt)
	for range 2 {
		open, err := scanCase(tx.QueryRow(ctx, `SELECT `+caseColumns+` FROM reconcile_cases WHERE kind = ? AND subject = ? AND ref = ? AND status = 'open'`+tx.ForUpdate(),
			string(f.Kind), f.Subject, f.Ref))
		if err == nil {
			if _, err := tx.Exec(ctx, `UPDATE reconcile_cases SET expected = ?, actual = ?, evidence = ?, last_run_id = ?, seen = seen + 1, updated_at = ? WHERE id = ?`,
				f.Expected, f.Actual, string(evidence), run.ID, now, open.ID); err != nil {
				return Case{}, 0, errs.Wrap(op, err)
			}
			return open, caseStillOpen, nil
		}
		if !isNoRows(err) {
			return Case{}, 0, errs.Wrap(op, err)
		}
		var accepted string
		err = tx.QueryRow(ctx, `SELECT id FROM reconcile_cases WHERE kind = ? AND subject = ? AND ref = ? AND status = 'resolved'
			AND expected = ? AND actual = ? ORDER BY id DESC LIMIT 1`, string(f.Kind), f.Subject, f.Ref, f.Expected, f.Actual).Scan(&accepted)
		if err == nil {
			return Case{ID: accepted}, caseAccepted, nil
		}
		if !isNoRows(err) {
			return Case{}, 0, errs.Wrap(op, err)
		}
		id, err := newID("rcc_")
		if err != nil {
			return Case{}, 0, err
		}
		res, err := tx.Exec(ctx, `INSERT INTO reconcile_cases (id, run_id, last_run_id, seen, kind, subject, ref, expected, actual, evidence, status, opened_at, updated_at)
			VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 'open', ?, ?) ON CONFLICT DO NOTHING`,
			id, run.ID, run.ID, string(f.Kind), f.Subject, f.Ref, f.Expected, f.Actual, string(evidence), now, now)
		if err != nil {
			return Case{}, 0, errs.Wrap(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Case{}, 0, errs.Wrap(op, err)
		} else if n == 1 {
			return Case{ID: id, Kind: f.Kind, Subject: f.Subject, Ref: f.Ref, Expected: f.Expected, Actual: f.Actual}, caseNew, nil
		}
		// Another run opened the same case a moment ago: update that one.
	}
	return Case{}, 0, errs.Ef(errs.Conflict, op, "the case of %s %s %s changed twice while recording it", f.Kind, f.Subject, f.Ref)
}
