package twofactor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
)

// SMSSender sends a text message. SendSMS returns errs.Invalid when the
// gateway refuses the message as it is (bad number) and errs.Unavailable when
// the gateway cannot be reached or fails.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// HTTPSMS sends messages to an SMS gateway: a POST of {"to": "+44…",
// "text": "…"} as JSON to URL with "Authorization: Bearer <Token>". Any 2xx
// answer means sent.
type HTTPSMS struct {
	url    string
	token  string
	client *http.Client
}

// NewHTTPSMS returns a sender for the gateway at rawURL (http or https). A
// nil client means one with a 10-second timeout. It returns errs.Invalid for
// a bad URL or an empty token.
func NewHTTPSMS(rawURL, token string, client *http.Client) (*HTTPSMS, error) {
	const op = "twofactor.NewHTTPSMS"
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.E(errs.Invalid, op, "the SMS gateway URL must be an absolute http or https URL")
	}
	if token == "" {
		return nil, errs.E(errs.Invalid, op, "the SMS gateway token is required")
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &HTTPSMS{url: rawURL, token: token, client: client}, nil
}

// SendSMS implements SMSSender.
func (h *HTTPSMS) SendSMS(ctx context.Context, to, text string) error {
	const op = "twofactor.HTTPSMS.SendSMS"
	body, err := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}{to, text})
	if err != nil {
		return errs.Wrap(op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return errs.Wrap(op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return errs.E(errs.Unavailable, op, "the SMS gateway cannot be reached")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return errs.Ef(errs.Invalid, op, "the SMS gateway refused the message (HTTP %d)", resp.StatusCode)
	default:
		return errs.Ef(errs.Unavailable, op, "the SMS gateway failed (HTTP %d)", resp.StatusCode)
	}
}

// SMSMessage is one message an SMSSink kept.
type SMSMessage struct {
	At   time.Time
	To   string
	Text string
}

// SMSSink is an SMSSender that keeps messages in memory instead of sending
// them: the demo's phone and the tests'. It is safe for concurrent use.
type SMSSink struct {
	mu    sync.Mutex
	clock clock.Clock
	msgs  []SMSMessage
}

// NewSMSSink returns an empty sink.
func NewSMSSink(c clock.Clock) *SMSSink { return &SMSSink{clock: c} }

// SendSMS implements SMSSender; it never fails.
func (s *SMSSink) SendSMS(_ context.Context, to, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, SMSMessage{At: s.clock.Now(), To: to, Text: text})
	return nil
}

// Messages returns the messages kept, oldest first.
func (s *SMSSink) Messages() []SMSMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMSMessage(nil), s.msgs...)
}

// Last returns the newest message to a number.
func (s *SMSSink) Last(to string) (SMSMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].To == to {
			return s.msgs[i], true
		}
	}
	return SMSMessage{}, false
}
