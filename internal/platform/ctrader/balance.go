package ctrader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
)

var (
	_ platform.Connector    = (*Client)(nil)
	_ platform.ChangeLookup = (*Client)(nil)
)

// changeBalanceBody is the changebalance request (spec §5.1).
type changeBalanceBody struct {
	Login         int64       `json:"login"`
	PreciseAmount json.Number `json:"preciseAmount"`
	Type          string      `json:"type"`
	Comment       string      `json:"comment,omitempty"`
	ExternalNote  string      `json:"externalNote,omitempty"`
	ExternalID    string      `json:"externalId,omitempty"`
	Source        string      `json:"source,omitempty"`
}

// retryableCodes are refusals after which the same change may succeed later.
var retryableCodes = map[string]bool{"REQUEST_FREQUENCY_EXCEEDED": true, "NOT_ENOUGH_RIGHTS": true}

// ChangeBalance applies one balance change with
// POST /v2/webserv/traders/{login}/changebalance, externalId = c.ExternalID.
//
// Before sending, it checks the change (platform.BalanceChange.Validate) and
// that its currency is the account's (preciseAmount carries no currency, so
// cTrader could not tell); the currency is read once per login with GetTrader
// and cached, since a trading account's currency never changes.
//
// Errors follow the platform contract:
//   - *platform.RejectedError when nothing was applied: a 4xx with a
//     WebServices code other than UNKNOWN_ERROR (after one re-login on
//     401/403); a failed pre-check (INVALID_REQUEST or CURRENCY_MISMATCH
//     with Status 0, TRADER_NOT_FOUND from the account read); or a
//     request that never left (Code platform.CodeNotSent, Retryable).
//   - *platform.AmbiguousError for everything else: no answer after the
//     request was written (timeout, reset), 5xx, 408, a 4xx without a code or
//     with UNKNOWN_ERROR, or a 2xx whose body has no balanceHistoryId. Its
//     Evidence names the request, status, body excerpt and elapsed time.
func (c *Client) ChangeBalance(ctx context.Context, ch platform.BalanceChange) (platform.Applied, error) {
	if err := ch.Validate(); err != nil {
		return platform.Applied{}, &platform.RejectedError{Code: "INVALID_REQUEST", Message: errs.MessageOf(err)}
	}
	cur, err := c.currency(ctx, ch.Login)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return platform.Applied{}, &platform.RejectedError{Code: "TRADER_NOT_FOUND", Message: errs.MessageOf(err), Status: http.StatusNotFound}
		}
		return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent, Retryable: true,
			Message: "the account could not be read before the change, so the change was not sent: " + err.Error()}
	}
	if cur != ch.Amount.Currency() {
		return platform.Applied{}, &platform.RejectedError{Code: "CURRENCY_MISMATCH",
			Message: fmt.Sprintf("account %d holds %s; the change is %s", ch.Login, cur, ch.Amount)}
	}

	path := "/v2/webserv/traders/" + strconv.FormatInt(ch.Login, 10) + "/changebalance"
	body := changeBalanceBody{Login: ch.Login, PreciseAmount: ch.Amount.JSONNumber(), Type: string(ch.Type),
		Comment: ch.Comment, ExternalNote: ch.ExternalNote, ExternalID: ch.ExternalID, Source: ch.Source}
	res, err := c.do(ctx, call{endpoint: "changebalance", method: http.MethodPost, path: path, body: body})
	evidence := func(what string) string {
		return fmt.Sprintf("POST %s externalId=%q type=%s preciseAmount=%s: %s after %s", path, ch.ExternalID, ch.Type,
			body.PreciseAmount, what, res.elapsed.Round(time.Millisecond))
	}
	if err != nil {
		var le *loginError
		switch {
		case errors.As(err, &le):
			rej := &platform.RejectedError{Code: platform.CodeNotSent, Retryable: true, Message: "manager login failed, the change was not sent: " + le.err.Error()}
			var ae *APIError
			if errors.As(le.err, &ae) && ae.Code != "" && ae.Status >= 400 && ae.Status < 500 {
				rej.Code, rej.Status = ae.Code, ae.Status
			}
			return platform.Applied{}, rej
		case !res.sent:
			return platform.Applied{}, &platform.RejectedError{Code: platform.CodeNotSent, Retryable: true,
				Message: "the request never reached cTrader: " + err.Error()}
		}
		return platform.Applied{}, &platform.AmbiguousError{Cause: err, Evidence: evidence("no answer")}
	}
	status := fmt.Sprintf("HTTP %d, body %q", res.status, excerpt(res.body))
	switch {
	case res.status >= 200 && res.status <= 299:
		var out struct {
			BalanceHistoryID *int64 `json:"balanceHistoryId"`
		}
		trimmed := bytes.TrimSpace(res.body)
		if err := decode(trimmed, &out); err != nil && !(ch.Type.IsBonus() && len(trimmed) == 0) {
			return platform.Applied{}, &platform.AmbiguousError{Cause: fmt.Errorf("unreadable answer: %w", err), Evidence: evidence(status)}
		}
		if out.BalanceHistoryID != nil && *out.BalanceHistoryID > 0 {
			return platform.Applied{BalanceHistoryID: *out.BalanceHistoryID}, nil
		}
		if ch.Type.IsBonus() { // bonus moves are kept out of the balance history: no id
			return platform.Applied{}, nil
		}
		return platform.Applied{}, &platform.AmbiguousError{Cause: errors.New("answer has no balanceHistoryId"), Evidence: evidence(status)}
	case res.status >= 400 && res.status <= 499 && res.status != http.StatusRequestTimeout:
		ae := parseAPIError(res.status, res.body)
		if ae.Code != "" && ae.Code != "UNKNOWN_ERROR" {
			return platform.Applied{}, &platform.RejectedError{Code: ae.Code, Message: ae.Message, Status: ae.Status, Retryable: retryableCodes[ae.Code]}
		}
		return platform.Applied{}, &platform.AmbiguousError{Cause: ae, Evidence: evidence(status)}
	}
	return platform.Applied{}, &platform.AmbiguousError{Cause: parseAPIError(res.status, res.body), Evidence: evidence(status)}
}

// currency returns the currency of a login, reading the trader once.
func (c *Client) currency(ctx context.Context, login int64) (money.Currency, error) {
	c.mu.Lock()
	cur, ok := c.accts[login]
	c.mu.Unlock()
	if ok {
		return cur, nil
	}
	t, err := c.GetTrader(ctx, login)
	if err != nil {
		return money.Currency{}, err
	}
	return t.Currency, nil
}

// Account reads a trading account for the funding code. Withdrawable is the
// cash equity capped at the balance and the free margin, never below zero.
// It returns the errors of GetTrader (errs.NotFound for an unknown login).
func (c *Client) Account(ctx context.Context, login int64) (platform.Account, error) {
	t, err := c.GetTrader(ctx, login)
	if err != nil {
		return platform.Account{}, err
	}
	w, err := withdrawable(t.CashEquity, t.Balance, t.FreeMargin)
	if err != nil {
		return platform.Account{}, errs.Wrap("ctrader.Account", err)
	}
	return platform.Account{Login: t.Login, Currency: t.Currency, Balance: t.Balance, Equity: t.Equity,
		FreeMargin: t.FreeMargin, Withdrawable: w}, nil
}

// withdrawable is the smallest of the amounts, and at least zero.
func withdrawable(first money.Amount, rest ...money.Amount) (money.Amount, error) {
	low := first
	for _, a := range rest {
		c, err := a.Cmp(low)
		if err != nil {
			return money.Amount{}, err
		}
		if c < 0 {
			low = a
		}
	}
	if low.IsNegative() {
		return money.Zero(low.Currency()), nil
	}
	return low, nil
}

// HistoryEntry is one entry of a trader's balance history, as the
// simulator's extension reports it.
type HistoryEntry struct {
	BalanceHistoryID int64 // 0 for bonus moves
	Type             platform.ChangeType
	Delta            money.Amount // signed
	Balance          money.Amount // after the change
	ExternalID       string
	Comment          string
	ExternalNote     string
	Source           string
	Time             time.Time
}

type historyWire struct {
	BalanceHistoryID int64  `json:"balanceHistoryId"`
	Type             string `json:"type"`
	Delta            int64  `json:"delta"`
	Balance          int64  `json:"balance"`
	MoneyDigits      int    `json:"moneyDigits"`
	ExternalID       string `json:"externalId"`
	Comment          string `json:"comment"`
	ExternalNote     string `json:"externalNote"`
	Source           string `json:"source"`
	Timestamp        int64  `json:"changeTimestamp"`
}

// BalanceHistory reads a trader's balance history, filtered by externalID
// when it is not empty. It uses the simulator's extension
// GET /v2/webserv/traders/{login}/balancehistory; against a server without
// it, it returns an error that errors.Is ErrLookupUnsupported. Other errors
// are those of GetTrader.
func (c *Client) BalanceHistory(ctx context.Context, login int64, externalID string) ([]HistoryEntry, error) {
	const op = "ctrader.BalanceHistory"
	cur, err := c.currency(ctx, login)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if externalID != "" {
		q.Set("externalId", externalID)
	}
	var out struct {
		BalanceHistory []historyWire `json:"balanceHistory"`
	}
	err = c.call(ctx, op, call{endpoint: "balancehistory", method: http.MethodGet,
		path: "/v2/webserv/traders/" + strconv.FormatInt(login, 10) + "/balancehistory", query: q}, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code != "TRADER_NOT_FOUND" {
		return nil, fmt.Errorf("%s: %w", op, ErrLookupUnsupported)
	}
	if err != nil {
		return nil, err
	}
	entries := make([]HistoryEntry, 0, len(out.BalanceHistory))
	for _, h := range out.BalanceHistory {
		delta, err1 := money.FromScaled(h.Delta, h.MoneyDigits, cur)
		bal, err2 := money.FromScaled(h.Balance, h.MoneyDigits, cur)
		if err := errors.Join(err1, err2); err != nil {
			return nil, &errs.Error{Code: errs.Internal, Op: op, Message: "a history entry does not fit the account's currency", Err: err}
		}
		entries = append(entries, HistoryEntry{BalanceHistoryID: h.BalanceHistoryID, Type: platform.ChangeType(h.Type),
			Delta: delta, Balance: bal, ExternalID: h.ExternalID, Comment: h.Comment, ExternalNote: h.ExternalNote,
			Source: h.Source, Time: time.UnixMilli(h.Timestamp).UTC()})
	}
	return entries, nil
}

// FindChange looks a change up by our externalId (platform.ChangeLookup).
// It reports the first entry with that id. Against a server without the
// simulator's history extension it returns an error that errors.Is
// ErrLookupUnsupported; other errors are those of GetTrader.
func (c *Client) FindChange(ctx context.Context, login int64, externalID string) (platform.Applied, bool, error) {
	if externalID == "" {
		return platform.Applied{}, false, errs.E(errs.Invalid, "ctrader.FindChange", "external id is empty")
	}
	entries, err := c.BalanceHistory(ctx, login, externalID)
	if err != nil {
		return platform.Applied{}, false, err
	}
	for _, e := range entries {
		if e.ExternalID == externalID {
			return platform.Applied{BalanceHistoryID: e.BalanceHistoryID}, true, nil
		}
	}
	return platform.Applied{}, false, nil
}
