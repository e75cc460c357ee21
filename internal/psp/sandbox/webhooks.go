package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

const webhookJobKind = "sandbox.webhook"

// Webhook delivery is retried until the receiver answers 2xx: attempt n+1
// follows attempt n after WebhookRetryBase·2^(n-1), at most
// WebhookRetryMax, for WebhookAttempts attempts in all (about 22 hours).
const (
	WebhookRetryBase = 10 * time.Second
	WebhookRetryMax  = time.Hour
	WebhookAttempts  = 30
)

// webhookRetryAfter is the wait after failed attempt n (1-based).
func webhookRetryAfter(n int) time.Duration {
	d := WebhookRetryBase
	for i := 1; i < n && d < WebhookRetryMax; i++ {
		d *= 2
	}
	return min(d, WebhookRetryMax)
}

// outgoing is one event a delivery posts, with its body, so that a
// delivery reads nothing before it posts.
type outgoing struct {
	ID   string          `json:"id"`
	Body json.RawMessage `json:"body"`
}

// deliveryPayload is a delivery job's: the events it posts, in order.
// Jobs enqueued before deliveries carried their events have EventID only;
// the body is then read.
type deliveryPayload struct {
	Events  []outgoing `json:"events,omitempty"`
	EventID string     `json:"eventId,omitempty"`
}

// enqueueDelivery schedules one delivery of events (in order, one POST
// each); copyKey distinguishes the deliveries of the same events (a
// duplicate, a resend).
func (s *Server) enqueueDelivery(ctx context.Context, tx *sqlstore.Tx, events []outgoing, copyKey string, runAt time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, jobs.NewJob{
		Kind: webhookJobKind, Payload: deliveryPayload{Events: events},
		DedupKey: events[0].ID + ":" + copyKey, RunAt: runAt, MaxAttempts: WebhookAttempts,
	})
	return errs.Wrap("sandbox.enqueueDelivery", err)
}

// resend delivers an event once more, now, whatever the settings say.
func (s *Server) resend(ctx context.Context, eventID string) error {
	copyKey, err := newID("resend_")
	if err != nil {
		return err
	}
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var body []byte
		err := tx.QueryRow(ctx, `SELECT body FROM sandbox_events WHERE id = ?`, eventID).Scan(&body)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.Ef(errs.NotFound, "sandbox.resend", "no event %s", eventID)
		}
		if err != nil {
			return errs.Wrap("sandbox.resend", err)
		}
		if s.opts.Notify != nil {
			tx.AfterCommit(s.opts.Notify)
		}
		return s.enqueueDelivery(ctx, tx, []outgoing{{ID: eventID, Body: body}}, copyKey, time.Time{})
	})
}

// deliverJob posts a delivery's events to the webhook URL in order, each
// signed with the current time, and records each attempt. The first event
// not answered with 2xx stops the delivery, which is retried from there:
// an event is not sent before the ones of its change that come before it
// were acknowledged (a retry skips the events this delivery's earlier
// attempts had delivered, or another delivery of them).
func (s *Server) deliverJob(ctx context.Context, j jobs.Job) error {
	var p deliveryPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(err)
	}
	events := p.Events
	if len(events) == 0 {
		var body []byte
		if err := s.db.QueryRow(ctx, `SELECT body FROM sandbox_events WHERE id = ?`, p.EventID).Scan(&body); err != nil {
			return jobs.Permanent(fmt.Errorf("sandbox: event %s: %w", p.EventID, err))
		}
		events = []outgoing{{ID: p.EventID, Body: body}}
	}
	if j.Attempt > 1 && len(events) > 1 {
		var err error
		if events, err = s.undelivered(ctx, events); err != nil {
			return err
		}
	}
	for _, ev := range events {
		status, sendErr := s.post(ctx, ev.ID, ev.Body)
		var delivered any
		lastErr := ""
		if sendErr == nil {
			delivered = sqlstore.Micros(s.clock.Now())
		} else {
			lastErr = sendErr.Error()
		}
		if _, err := s.db.Exec(ctx, `UPDATE sandbox_events SET deliveries = deliveries + 1, last_status = ?, last_error = ?,
			delivered_at = COALESCE(delivered_at, ?) WHERE id = ?`, status, lastErr, delivered, ev.ID); err != nil {
			return errs.Wrap("sandbox.deliver", err)
		}
		if sendErr != nil {
			s.log.InfoContext(ctx, "webhook not acknowledged; will retry", "event", ev.ID, "attempt", j.Attempt, "status", status, "err", sendErr)
			return jobs.Retry(webhookRetryAfter(j.Attempt), sendErr)
		}
	}
	return nil
}

// undelivered returns the events of a delivery that were not delivered
// yet, in order: from the first one without a delivery on.
func (s *Server) undelivered(ctx context.Context, events []outgoing) ([]outgoing, error) {
	args := make([]any, len(events))
	for i, ev := range events {
		args[i] = ev.ID
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM sandbox_events WHERE delivered_at IS NOT NULL AND id IN (?`+strings.Repeat(", ?", len(events)-1)+`)`, args...)
	if err != nil {
		return nil, errs.Wrap("sandbox.deliver", err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, errs.Wrap("sandbox.deliver", err)
		}
		done[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap("sandbox.deliver", err)
	}
	for i, ev := range events {
		if !done[ev.ID] {
			return events[i:], nil
		}
	}
	return nil, nil
}

// post sends a signed event and returns the HTTP status (0 when there was
// no answer) and an error unless the receiver acknowledged it with 2xx.
func (s *Server) post(ctx context.Context, eventID string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OpenCashier-Sandbox/1")
	req.Header.Set(EventIDHeader, eventID)
	req.Header.Set(SignatureHeader, psp.Sign([]byte(s.opts.WebhookSecret), s.clock.Now(), body))
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sandbox: deliver webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("sandbox: webhook answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
