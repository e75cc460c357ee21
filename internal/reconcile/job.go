package reconcile

import (
	"context"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// JobKind is the job kind of the scheduled run.
const JobKind = "reconcile.run"

// jobAttempts bounds the attempts of one scheduled run; the next slot's run
// exists already, so a run that keeps failing is not retried forever.
const jobAttempts = 3

type jobPayload struct {
	Slot time.Time `json:"slot"`
}

// JobHandlers returns the handler of the scheduled run by kind, for the
// cashier's job runner.
func (s *Service) JobHandlers() map[string]jobs.Handler {
	return map[string]jobs.Handler{JobKind: s.runJob}
}

// NextSlot is when the scheduled run after now is due: the next multiple
// of Config.Interval (since the zero time, so on the hour for an hour).
func (s *Service) NextSlot(now time.Time) time.Time {
	return now.UTC().Truncate(s.cfg.Interval).Add(s.cfg.Interval)
}

// Schedule enqueues the scheduled run of the next slot, unless it is
// enqueued already (the slot is the job's dedup key), and returns the slot.
// Call it once at start-up; each run then enqueues the next. It returns a
// wrapped database error.
func (s *Service) Schedule(ctx context.Context) (time.Time, error) {
	slot := s.NextSlot(s.now())
	err := s.d.DB.Transact(ctx, func(tx *sqlstore.Tx) error {
		_, err := jobs.Enqueue(ctx, tx, jobs.NewJob{Kind: JobKind, Payload: jobPayload{Slot: slot},
			DedupKey: "slot:" + slot.Format(time.RFC3339), RunAt: slot, MaxAttempts: jobAttempts})
		return err
	})
	if err != nil {
		return time.Time{}, errs.Wrap("reconcile.Schedule", err)
	}
	return slot, nil
}

// runJob is the scheduled run: it enqueues the next run first, so a run
// that fails does not break the chain, then runs over everything.
func (s *Service) runJob(ctx context.Context, _ jobs.Job) error {
	if _, err := s.Schedule(ctx); err != nil {
		return err
	}
	_, err := s.Run(ctx, RunOptions{Actor: "system"})
	return err
}
