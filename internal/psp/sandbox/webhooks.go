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

// deliveryPayload is a delivery job's: the event and its body, so that a
// delivery reads nothing before it posts (jobs enqueued before the body
// was carried have only the id; the body is then read).
type deliveryPayload struct {
	EventID string          `json:"eventId"`
	Body    json.RawMessage `json:"body,omitempty"`
}

// enqueueDelivery schedules one delivery of an event with its body;
// copyKey distinguishes the deliveries of one event (a duplicate, a
// resend).
func (s *Server) enqueueDelivery(ctx context.Context, tx *sqlstore.Tx, eventID string, body []byte, copyKey string, runAt time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, jobs.NewJob{
		Kind: webhookJobKind, Payload: deliveryPayload{EventID: eventID, Body: body},
		DedupKey: eventID + ":" + copyKey, RunAt: runAt, MaxAttempts: WebhookAttempts,
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
		return s.enqueueDelivery(ctx, tx, eventID, body, copyKey, time.Time{})
	})
}

// deliverJob posts one event to the webhook URL, signed with the current
// time, and records the attempt. Anything but a 2xx answer is retried.
func (s *Server) deliverJob(ctx context.Context, j jobs.Job) error {
	var p deliveryPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(err)
	}
	body := []byte(p.Body)
	if len(body) == 0 {
		if err := s.db.QueryRow(ctx, `SELECT body FROM sandbox_events WHERE id = ?`, p.EventID).Scan(&body); err != nil {
			return jobs.Permanent(fmt.Errorf("sandbox: event %s: %w", p.EventID, err))
		}
	}
	status, sendErr := s.post(ctx, p.EventID, body)
	now := s.clock.Now()
	var delivered any
	lastErr := ""
	if sendErr == nil {
		delivered = sqlstore.Micros(now)
	} else {
		lastErr = sendErr.Error()
	}
	if _, err := s.db.Exec(ctx, `UPDATE sandbox_events SET deliveries = deliveries + 1, last_status = ?, last_error = ?,
		delivered_at = COALESCE(delivered_at, ?) WHERE id = ?`, status, lastErr, delivered, p.EventID); err != nil {
		return errs.Wrap("sandbox.deliver", err)
	}
	if sendErr != nil {
		s.log.InfoContext(ctx, "webhook not acknowledged; will retry", "event", p.EventID, "attempt", j.Attempt, "status", status, "err", sendErr)
		return jobs.Retry(webhookRetryAfter(j.Attempt), sendErr)
	}
	return nil
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
