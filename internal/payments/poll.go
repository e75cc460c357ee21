package payments

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// PollJobKind is the job kind of the status poll (see JobHandlers).
const PollJobKind = "payments.poll"

type pollPayload struct {
	PaymentID string `json:"paymentId"`
	N         int    `json:"n"` // 1 for the first poll
}

// JobHandlers returns the service's job handlers by kind (the status
// poll), for the cashier's job runner.
func (s *Service) JobHandlers() map[string]jobs.Handler {
	return map[string]jobs.Handler{PollJobKind: s.pollJob}
}

// pollInterval is the wait before poll n: PollAfter·2^(n-1), at most PollMax.
func (s *Service) pollInterval(n int) time.Duration {
	d := s.pollAfter
	for i := 1; i < n && d < s.pollMax; i++ {
		d *= 2
	}
	return min(d, s.pollMax)
}

// schedulePoll enqueues poll n of a payment in tx. The dedup key makes a
// repeated run of the previous poll enqueue it only once.
func (s *Service) schedulePoll(ctx context.Context, tx *sqlstore.Tx, id string, n int) error {
	_, err := jobs.Enqueue(ctx, tx, jobs.NewJob{
		Kind:        PollJobKind,
		Payload:     pollPayload{PaymentID: id, N: n},
		DedupKey:    fmt.Sprintf("%s:%d", id, n),
		RunAt:       s.clock.Now().Add(s.pollInterval(n)),
		MaxAttempts: 20,
	})
	return errs.Wrap("payments.schedulePoll", err)
}

func (s *Service) pollJob(ctx context.Context, j jobs.Job) error {
	var pl pollPayload
	if err := json.Unmarshal(j.Payload, &pl); err != nil || pl.PaymentID == "" {
		return jobs.Permanent(fmt.Errorf("payments.poll: malformed payload %s", j.Payload))
	}
	p, err := s.Poll(ctx, pl.PaymentID)
	switch {
	case errs.Is(err, errs.NotFound):
		return jobs.Permanent(err)
	case errs.Is(err, errs.Internal):
		return err // our own failure: retry this poll
	case err != nil:
		// The provider failed to answer; the next poll asks again.
		s.log.WarnContext(ctx, "status poll failed", "payment", pl.PaymentID, "poll", pl.N, "err", err)
	}
	if p.Status.Final() || p.Status == Review {
		return nil
	}
	if pl.N >= s.maxPolls {
		s.log.WarnContext(ctx, "payment still not settled after the last status poll; it needs an operator",
			"payment", p.ID, "status", p.Status, "polls", pl.N)
		return nil
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		return s.schedulePoll(ctx, tx, p.ID, pl.N+1)
	})
}

// Poll asks the payment's provider for its status now and applies the
// answer like an event (stored verbatim, monotonic). A payment that is
// final or under review is returned unchanged without asking. A created
// payment the provider does not know never reached it: it becomes Expired
// with reason not_started. The status poll job calls Poll; operators may
// too. It returns an errs.NotFound error for an unknown payment and the
// provider's errors (errs.Unavailable when it cannot be reached).
func (s *Service) Poll(ctx context.Context, id string) (Payment, error) {
	const op = "payments.Service.Poll"
	p, err := s.Get(ctx, id)
	if err != nil {
		return Payment{}, errs.Wrap(op, err)
	}
	if p.Status.Final() || p.Status == Review {
		return p, nil
	}
	prov, err := s.providers.Get(p.Provider)
	if err != nil {
		return p, errs.Wrap(op, err)
	}
	var snap snapshot
	if p.Direction == Deposit {
		res, err2 := prov.PaymentStatus(ctx, id)
		snap, err = paymentSnapshot(res), err2
	} else {
		res, err2 := prov.PayoutStatus(ctx, id)
		snap, err = payoutSnapshot(res), err2
	}
	if errs.Is(err, errs.NotFound) {
		if p.Status == Created {
			return s.transition(ctx, id, Expired, ReasonNotStarted, "the payment never reached the provider", SourcePoll, "", Created)
		}
		s.log.WarnContext(ctx, "provider does not know a started payment", "payment", id, "provider", p.Provider, "status", p.Status)
		return p, nil
	}
	if err != nil {
		return p, errs.Wrap(op, err)
	}
	p, _, err = s.apply(ctx, p.Provider, snap, SourcePoll, "")
	return p, errs.Wrap(op, err)
}
