// Package callback is a platform.Connector for trading platforms that take
// seed 000's balance-update callback instead of cTrader's changebalance:
//
//	POST {URL}                       (e.g. …/ctrader/callback/balance-update)
//	Authorization: Bearer {token}
//	{"tradingLogin":67890,"newBalance":10500.00,"transactionId":"txn_123456",
//	 "transactionType":"deposit","amount":500.00,"currency":"USD",
//	 "timestamp":"2023-01-01T12:00:00Z"}
//
// The callback protocol has no way to read an account, so the connector is
// given an AccountReader (a WebServices client, or the broker's own view of
// the account). It serves Account from it, and computes newBalance from it:
// newBalance is the balance the reader reports just before the call, plus
// (deposit) or minus (withdrawal) the amount. It is informational: a change
// made elsewhere between the read and the callback makes it stale, and the
// platform applies the amount, not the balance. The connector offers no
// ChangeLookup, because the protocol has none.
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/platform"
)

// AccountReader reads trading accounts. platform.Connector implementations
// (such as the cTrader client) satisfy it.
type AccountReader interface {
	Account(ctx context.Context, login int64) (platform.Account, error)
}

// Config configures a Connector.
type Config struct {
	URL        string        // the callback endpoint, http(s)
	Token      string        // sent as Authorization: Bearer {Token}
	Accounts   AccountReader // required: Account and newBalance come from it
	Timeout    time.Duration // per request; default 10 s
	HTTPClient *http.Client  // default: a client with the default transport
	Clock      clock.Clock   // for the timestamp field; default clock.System
}

// Connector sends balance changes as seed 000 callbacks. It is safe for
// concurrent use.
type Connector struct {
	cfg Config
}

var _ platform.Connector = (*Connector)(nil)

// New returns a connector. It returns an errs.Invalid error for a URL that
// is not http(s), an empty token, or no AccountReader.
func New(cfg Config) (*Connector, error) {
	const op = "callback.New"
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "callback URL %q is not http(s)", cfg.URL)
	}
	if cfg.Token == "" || cfg.Accounts == nil {
		return nil, errs.E(errs.Invalid, op, "a bearer token and an account reader are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	return &Connector{cfg: cfg}, nil
}

// Account returns the account as the AccountReader reports it, with its
// errors (errs.NotFound for an unknown login).
func (c *Connector) Account(ctx context.Context, login int64) (platform.Account, error) {
	return c.cfg.Accounts.Account(ctx, login)
}

type body struct {
	TradingLogin    int64       `json:"tradingLogin"`
	NewBalance      json.Number `json:"newBalance"`
	TransactionID   string      `json:"transactionId"`
	TransactionType string      `json:"transactionType"`
	Amount          json.Number `json:"amount"`
	Currency        string      `json:"currency"`
	Timestamp       string      `json:"timestamp"`
}

// ChangeBalance sends one deposit or withdrawal as a callback with
// transactionId = ch.ExternalID. Errors follow the platform contract:
//   - *platform.RejectedError when nothing was applied: a bonus type (the
//     protocol has none), a failed check, the account unreadable before
//     sending (NOT_SENT), a request that never left (NOT_SENT), or a 4xx
//     answer with a code ({"error","message","code"}); 401, 403 and 429 are
//     Retryable.
//   - *platform.AmbiguousError otherwise: no answer after the request was
//     written, 5xx, 408, or a 4xx without a code.
//
// Any 2xx is success (seed 000 defines no answer body); a balanceHistoryId
// in it is returned when present.
func (c *Connector) ChangeBalance(ctx context.Context, ch platform.BalanceChange) (platform.Applied, error) {
	if err := ch.Validate(); err != nil {
		return platform.Applied{}, &platform.RejectedError{Code: "INVALID_REQUEST", Message: errs.MessageOf(err)}
	}
	var typ string
	switch ch.Type {
	case platform.Deposit:
		typ = "deposit"
	case platform.Withdraw:
		typ = "withdrawal"
	default:
		return platform.Applied{}, &platform.RejectedError{Code: "INVALID_REQUEST",
			Message: fmt.Sprintf("the balance-update callback carries deposits and withdrawals only, not %s", ch.Type)}
	}
	acct, err := c.cfg.Accounts.Account(ctx, ch.Login)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return platform.Applied{}, &platform.RejectedError{Code: "TRADER_NOT_FOUND", Message: errs.MessageOf(err)}
		}
		return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent, Retryable: true,
			Message: "the account could not be read for newBalance, so the change was not sent: " + err.Error()}
	}
	newBalance, err := acct.Balance.Add(ch.Amount)
	if ch.Type == platform.Withdraw {
		newBalance, err = acct.Balance.Sub(ch.Amount)
	}
	if err != nil {
		return platform.Applied{}, &platform.RejectedError{Code: "CURRENCY_MISMATCH",
			Message: fmt.Sprintf("account %d holds %s; the change is %s", ch.Login, acct.Currency, ch.Amount)}
	}
	b := body{TradingLogin: ch.Login, NewBalance: newBalance.JSONNumber(), TransactionID: ch.ExternalID,
		TransactionType: typ, Amount: ch.Amount.JSONNumber(), Currency: ch.Amount.Currency().Code,
		Timestamp: c.cfg.Clock.Now().UTC().Format(time.RFC3339)}
	status, respBody, elapsed, sent, err := c.post(ctx, b)
	evidence := func(what string) string {
		return fmt.Sprintf("POST %s transactionId=%q type=%s amount=%s: %s after %s", c.cfg.URL, ch.ExternalID, typ,
			b.Amount, what, elapsed.Round(time.Millisecond))
	}
	if err != nil {
		if !sent {
			return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent, Retryable: true,
				Message: "the callback never reached the platform: " + err.Error()}
		}
		return platform.Applied{}, &platform.AmbiguousError{Cause: err, Evidence: evidence("no answer")}
	}
	what := fmt.Sprintf("HTTP %d, body %q", status, excerpt(respBody))
	switch {
	case status >= 200 && status <= 299:
		var out struct {
			BalanceHistoryID int64 `json:"balanceHistoryId"`
		}
		_ = json.Unmarshal(respBody, &out) // the seed defines no answer; the id is a bonus
		return platform.Applied{BalanceHistoryID: out.BalanceHistoryID}, nil
	case status >= 400 && status <= 499 && status != http.StatusRequestTimeout:
		var eb struct {
			Error   string `json:"error"`
			Message string `json:"message"`
			Code    string `json:"code"`
		}
		if json.Unmarshal(respBody, &eb) == nil && eb.Code != "" {
			msg := eb.Message
			if msg == "" {
				msg = eb.Error
			}
			return platform.Applied{}, &platform.RejectedError{Code: eb.Code, Message: msg, Status: status,
				Retryable: status == 401 || status == 403 || status == 429}
		}
	}
	return platform.Applied{}, &platform.AmbiguousError{Cause: fmt.Errorf("HTTP %d", status), Evidence: evidence(what)}
}

// post sends the callback. sent reports whether the request's headers were
// written to a connection (when false, it certainly did not arrive).
func (c *Connector) post(ctx context.Context, b body) (status int, respBody []byte, elapsed time.Duration, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	data, err := json.Marshal(b)
	if err != nil {
		return 0, nil, 0, false, err
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(data))
	if err != nil {
		return 0, nil, 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	start := time.Now()
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, time.Since(start), wrote.Load(), err
	}
	defer res.Body.Close()
	respBody, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	elapsed = time.Since(start)
	if err != nil {
		return res.StatusCode, nil, elapsed, true, fmt.Errorf("read the %d answer: %w", res.StatusCode, err)
	}
	return res.StatusCode, respBody, elapsed, true, nil
}

func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}
