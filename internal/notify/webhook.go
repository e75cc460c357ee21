package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// The webhook's types and headers.
const (
	TypeDepositStatusChanged    = "deposit.status_changed"
	TypeWithdrawalStatusChanged = "withdrawal.status_changed"
	// EventIDHeader carries the event's id (the body's "id"), the same on
	// every attempt: the CRM's key to ignore an event it has already taken.
	EventIDHeader = "OpenCashier-Event-Id"
	// AttemptHeader carries the attempt's number, 1 for the first.
	AttemptHeader = "OpenCashier-Attempt"
)

// The retry schedule of webhooks: the delay after failed attempt n is
// firstRetry·2^(n-1), at most maxRetry, plus up to a fifth more.
const (
	firstRetry = 30 * time.Second
	maxRetry   = 6 * time.Hour
)

// WebhookEvent is the JSON body of a CRM webhook.
type WebhookEvent struct {
	ID         string      `json:"id"`         // "evt_…", unique per event, the same on every attempt
	Type       string      `json:"type"`       // TypeDepositStatusChanged or TypeWithdrawalStatusChanged
	OccurredAt string      `json:"occurredAt"` // RFC 3339, UTC
	Data       WebhookData `json:"data"`
}

// WebhookData is what changed.
type WebhookData struct {
	Kind string `json:"kind"` // "deposit" or "withdrawal"
	ID   string `json:"id"`   // "dep_…" or "wd_…"
	// Sequence numbers the webhooks of one deposit or withdrawal 1, 2, …
	// in the order of its changes: deliveries may arrive out of order.
	Sequence int    `json:"sequence"`
	UserID   string `json:"userId"`
	Login    int64  `json:"login"`
	MethodID string `json:"methodId"`
	// Amount is what the customer asked, an exact decimal string: a
	// deposit's in the payment currency, a withdrawal's in the account
	// currency.
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	// Credit is what reaches (deposit) or leaves (withdrawal) the trading
	// account, in its currency; null while not known.
	Credit         *string `json:"credit"`
	CreditCurrency *string `json:"creditCurrency"`
	From           *string `json:"from"` // null for a new deposit or withdrawal
	To             string  `json:"to"`
	Flag           string  `json:"flag"`   // a flag this change set ("platform_refused"), or ""
	Reason         string  `json:"reason"` // funding's reason code for the change, or ""
}

// webhookBody builds the body of e's webhook.
func webhookBody(id string, seq int, e funding.Event) ([]byte, string, error) {
	typ := TypeDepositStatusChanged
	if e.Kind == funding.KindWithdrawal {
		typ = TypeWithdrawalStatusChanged
	}
	data := WebhookData{
		Kind: e.Kind, ID: e.ID, Sequence: seq, UserID: e.UserID, Login: e.Login, MethodID: e.MethodID,
		Amount: e.Amount.Decimal(), Currency: e.Amount.Currency().Code, To: e.To, Flag: e.Flag, Reason: e.Reason,
	}
	if !e.Credit.IsZero() {
		credit, cur := e.Credit.Decimal(), e.Credit.Currency().Code
		data.Credit, data.CreditCurrency = &credit, &cur
	}
	if e.From != "" {
		from := e.From
		data.From = &from
	}
	body, err := json.Marshal(WebhookEvent{ID: id, Type: typ, OccurredAt: e.At.UTC().Format(time.RFC3339Nano), Data: data})
	return body, typ, err
}

// addWebhook records the CRM webhook of e and enqueues it.
func (s *Service) addWebhook(ctx context.Context, tx *sqlstore.Tx, e funding.Event, key string) (bool, error) {
	var seq int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM notify_deliveries WHERE subject_id = ? AND channel = 'webhook'`, e.ID).Scan(&seq); err != nil {
		return false, err
	}
	id := deliveryID(ChannelWebhook, key)
	body, typ, err := webhookBody(id, seq+1, e)
	if err != nil {
		return false, err
	}
	return s.add(ctx, tx, Delivery{
		ID: id, Channel: ChannelWebhook, Type: typ, Kind: e.Kind, SubjectID: e.ID, UserID: e.UserID, From: e.From, To: e.To,
		Sequence: seq + 1, Recipient: s.shownURL, Body: string(body),
	}, JobWebhook, s.cfg.MaxAttempts)
}

// sendWebhook is the JobWebhook handler: it POSTs the recorded body to the
// CRM, signed with the attempt's time. A 2xx answer delivers it; any other
// answer, a timeout or a connection error is retried after retryDelay.
func (s *Service) sendWebhook(ctx context.Context, j jobs.Job) error {
	d, err := s.loadForJob(ctx, j)
	if err != nil {
		return err
	}
	if d.State == Delivered {
		return nil
	}
	if !s.webhooks() {
		err := errors.New("CRM webhooks are switched off (no webhook URL is configured)")
		_ = s.recordAttempt(ctx, d, d.Recipient, 0, err, true)
		return jobs.Permanent(err)
	}
	status, retryAfter, err := s.post(ctx, d, j.Attempt)
	if err == nil {
		// The CRM has it: a failure to record it must not send it again.
		_ = s.recordAttempt(ctx, d, s.shownURL, status, nil, false)
		return nil
	}
	if ctx.Err() != nil {
		return err // shutting down: the runner releases the job uncounted
	}
	_ = s.recordAttempt(ctx, d, s.shownURL, status, err, j.Attempt >= j.MaxAttempts)
	return jobs.Retry(retryDelay(d.ID, j.Attempt, retryAfter), err)
}

// post makes one attempt. It returns the HTTP status (0 without an
// answer), the delay the CRM asked for with Retry-After (0 if none), and an
// error unless the answer was 2xx.
func (s *Service) post(ctx context.Context, d Delivery, attempt int) (int, time.Duration, error) {
	now := s.clock.Now()
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hookURL.String(), bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("building the webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OpenCashier-Webhook/1")
	req.Header.Set(SignatureHeader, Sign(s.cfg.CRMWebhookSecret, now, body))
	req.Header.Set(EventIDHeader, d.ID)
	req.Header.Set(AttemptHeader, strconv.Itoa(attempt))
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("POST to the CRM failed: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	text := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "�"))
	if text == "" {
		text = "(no body)"
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), now),
		fmt.Errorf("the CRM answered %s: %s", resp.Status, text)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(secs)*time.Second, maxRetry)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetry)
	}
	return 0
}

// retryDelay is how long a webhook waits after failed attempt n (1 for the
// first): 30 s doubling up to 6 h, plus up to a fifth more, spread by the
// delivery's id so that webhooks that failed together (the CRM was down)
// do not all come back at the same instant; at least the Retry-After the
// CRM asked for, up to 6 h.
func retryDelay(id string, attempt int, asked time.Duration) time.Duration {
	d := firstRetry
	for i := 1; i < attempt && d < maxRetry; i++ {
		d *= 2
	}
	d = min(d, maxRetry)
	h := fnv.New32a()
	_, _ = h.Write([]byte(id + "#" + strconv.Itoa(attempt)))
	d += d * time.Duration(h.Sum32()%1000) / 5000
	return max(d, min(asked, maxRetry))
}
