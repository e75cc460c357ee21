package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// ClientOptions configures Client, the cashier's adapter for the sandbox.
type ClientOptions struct {
	// Name is the provider name in the registry and the webhook path
	// (default "sandbox").
	Name string
	// BaseURL is the sandbox's URL, e.g. http://127.0.0.1:8080/sandbox.
	BaseURL string
	// APIKey and WebhookSecret must match the server's Options.
	APIKey        string
	WebhookSecret string
	// HTTPClient calls the API (default: a client with a 15 s timeout).
	HTTPClient *http.Client
	Clock      clock.Clock // checks webhook timestamps (default clock.System)
	// Tolerance is how far a webhook's timestamp may be from Clock
	// (default psp.DefaultTolerance, five minutes).
	Tolerance time.Duration
}

// Client is the psp.Provider for the sandbox. It talks to the sandbox only
// over HTTP, as an adapter for a real provider would, and so doubles as
// the model for writing one.
type Client struct {
	opts ClientOptions
	base string
}

var _ psp.Provider = (*Client)(nil)

// NewClient returns the adapter. It returns an errs.Invalid error for a
// base URL that is not absolute http(s), or an empty API key or webhook
// secret.
func NewClient(opts ClientOptions) (*Client, error) {
	const op = "sandbox.NewClient"
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.Ef(errs.Invalid, op, "sandbox base URL %q must be an absolute http(s) URL", opts.BaseURL)
	}
	if opts.APIKey == "" || opts.WebhookSecret == "" {
		return nil, errs.E(errs.Invalid, op, "the sandbox client needs the API key and the webhook secret")
	}
	if opts.Name == "" {
		opts.Name = "sandbox"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = psp.DefaultTolerance
	}
	return &Client{opts: opts, base: strings.TrimSuffix(opts.BaseURL, "/")}, nil
}

// Name implements psp.Provider.
func (c *Client) Name() string { return c.opts.Name }

// Capabilities implements psp.Provider: every method kind for deposits;
// payouts to cards, bank accounts and e-wallets; any currency, crypto only
// in BTC, ETH and USDT; no refunds.
func (c *Client) Capabilities() psp.Capabilities { return capabilities }

// StartPayment implements psp.Provider with POST /api/payments; the
// request's ID is the reference and idempotency key.
func (c *Client) StartPayment(ctx context.Context, req psp.PaymentRequest) (psp.Payment, error) {
	const op = "sandbox.Client.StartPayment"
	body := createPaymentRequest{
		Reference: req.ID, Method: string(req.Method), Amount: req.Amount.Decimal(), Currency: req.Amount.Currency().Code,
		ReturnURL: req.ReturnURL, Description: req.Description, Lang: req.Lang,
		Customer: wireCustomer{ID: req.Customer.ID, Email: req.Customer.Email, Name: req.Customer.Name, Country: req.Customer.Country},
	}
	w, raw, err := c.call(ctx, http.MethodPost, "/api/payments", req.ID, body)
	if err != nil {
		return psp.Payment{}, errs.Wrap(op, err)
	}
	p, err := toPayment(w, raw)
	return p, errs.Wrap(op, err)
}

// PaymentStatus implements psp.Provider with GET /api/payments/{id}.
func (c *Client) PaymentStatus(ctx context.Context, id string) (psp.Payment, error) {
	const op = "sandbox.Client.PaymentStatus"
	w, raw, err := c.call(ctx, http.MethodGet, "/api/payments/"+url.PathEscape(id), "", nil)
	if err != nil {
		return psp.Payment{}, errs.Wrap(op, err)
	}
	p, err := toPayment(w, raw)
	return p, errs.Wrap(op, err)
}

// StartPayout implements psp.Provider with POST /api/payouts.
func (c *Client) StartPayout(ctx context.Context, req psp.PayoutRequest) (psp.Payout, error) {
	const op = "sandbox.Client.StartPayout"
	d := req.Destination
	body := createPayoutRequest{
		Reference: req.ID, Method: string(req.Method), Amount: req.Amount.Decimal(), Currency: req.Amount.Currency().Code,
		Destination: wireDestination{CardToken: d.CardToken, IBAN: d.IBAN, BIC: d.BIC, HolderName: d.HolderName, WalletID: d.WalletID},
		Description: req.Description,
		Customer:    wireCustomer{ID: req.Customer.ID, Email: req.Customer.Email, Name: req.Customer.Name, Country: req.Customer.Country},
	}
	w, raw, err := c.call(ctx, http.MethodPost, "/api/payouts", req.ID, body)
	if err != nil {
		return psp.Payout{}, errs.Wrap(op, err)
	}
	p, err := toPayout(w, raw)
	return p, errs.Wrap(op, err)
}

// PayoutStatus implements psp.Provider with GET /api/payouts/{id}.
func (c *Client) PayoutStatus(ctx context.Context, id string) (psp.Payout, error) {
	const op = "sandbox.Client.PayoutStatus"
	w, raw, err := c.call(ctx, http.MethodGet, "/api/payouts/"+url.PathEscape(id), "", nil)
	if err != nil {
		return psp.Payout{}, errs.Wrap(op, err)
	}
	p, err := toPayout(w, raw)
	return p, errs.Wrap(op, err)
}

// ParseWebhook implements psp.Provider: it checks the Sandbox-Signature
// header (HMAC-SHA256 over "timestamp.body", five minutes' tolerance by
// default) and parses the event. It returns errs.Unauthorized for a bad or
// missing signature, errs.Expired for a stale timestamp, and errs.Invalid
// for a body that is not a sandbox event.
func (c *Client) ParseWebhook(header http.Header, body []byte) (psp.Event, error) {
	const op = "sandbox.Client.ParseWebhook"
	if err := psp.Verify([]byte(c.opts.WebhookSecret), header.Get(SignatureHeader), body, c.opts.Clock.Now(), c.opts.Tolerance); err != nil {
		return psp.Event{}, errs.Wrap(op, err)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.ID == "" {
		return psp.Event{}, errs.E(errs.Invalid, op, "webhook body is not a sandbox event")
	}
	ev := psp.Event{ID: env.ID, OccurredAt: time.Unix(env.Created, 0).UTC(), Raw: body}
	switch env.Data.Object {
	case "payment":
		p, err := toPayment(env.Data, body)
		if err != nil {
			return psp.Event{}, errs.Wrap(op, err)
		}
		ev.Kind, ev.Payment = psp.PaymentEvent, &p
	case "payout":
		p, err := toPayout(env.Data, body)
		if err != nil {
			return psp.Event{}, errs.Wrap(op, err)
		}
		ev.Kind, ev.Payout = psp.PayoutEvent, &p
	default:
		return psp.Event{}, errs.Ef(errs.Invalid, op, "webhook is about an unknown object %q", env.Data.Object)
	}
	return ev, nil
}

// call sends one API request and decodes the answer. Error statuses map to
// house codes: 400 Invalid, 401/403 Unauthorized, 404 NotFound, 409
// Conflict; 5xx, other statuses and transport failures Unavailable.
func (c *Client) call(ctx context.Context, method, path, idempotencyKey string, body any) (wireObject, []byte, error) {
	const op = "sandbox.Client.call"
	raw, err := c.send(ctx, method, path, idempotencyKey, body)
	if err != nil {
		return wireObject{}, raw, err
	}
	var w wireObject
	if err := json.Unmarshal(raw, &w); err != nil {
		return wireObject{}, raw, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the sandbox provider's answer is not JSON", Err: err}
	}
	return w, raw, nil
}

// send sends one API request and returns the body of a 2xx answer; error
// statuses map to house codes as call describes.
func (c *Client) send(ctx context.Context, method, path, idempotencyKey string, body any) ([]byte, error) {
	const op = "sandbox.Client.call"
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the sandbox provider cannot be reached", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &errs.Error{Code: errs.Unavailable, Op: op, Message: "the sandbox provider's answer was cut off", Err: err}
	}
	if resp.StatusCode >= 300 {
		var problem struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(raw, &problem)
		msg := problem.Detail
		if msg == "" {
			msg = fmt.Sprintf("the sandbox provider answered %d", resp.StatusCode)
		}
		code := errs.Unavailable
		switch {
		case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity:
			code = errs.Invalid
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			code = errs.Unauthorized
		case resp.StatusCode == http.StatusNotFound:
			code = errs.NotFound
		case resp.StatusCode == http.StatusConflict:
			code = errs.Conflict
		}
		return raw, errs.E(code, op, msg)
	}
	return raw, nil
}

func wireAmount(op, amount, code string) (money.Amount, error) {
	cur, err := money.LookupCurrency(code)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	a, err := money.Parse(amount, cur)
	return a, errs.Wrap(op, err)
}

// toStatus maps the sandbox's statuses to psp's.
func toStatus(s string) (psp.Status, error) {
	switch s {
	case StatusRequiresAction, StatusAwaitingFunds, StatusProcessing:
		return psp.Pending, nil
	case StatusAuthorised:
		return psp.Authorised, nil
	case StatusSucceeded, StatusPaid:
		return psp.Succeeded, nil
	case StatusDeclined, StatusRejected:
		return psp.Declined, nil
	case StatusFailed:
		return psp.Failed, nil
	case StatusExpired:
		return psp.Expired, nil
	}
	return "", errs.Ef(errs.Invalid, "sandbox.toStatus", "unknown sandbox status %q", s)
}

func toPayment(w wireObject, raw []byte) (psp.Payment, error) {
	const op = "sandbox.toPayment"
	if w.Object != "payment" {
		return psp.Payment{}, errs.Ef(errs.Invalid, op, "expected a payment, got %q", w.Object)
	}
	status, err := toStatus(w.Status)
	if err != nil {
		return psp.Payment{}, err
	}
	amount, err := wireAmount(op, w.Amount, w.Currency)
	if err != nil {
		return psp.Payment{}, err
	}
	p := psp.Payment{
		ID: w.Reference, ProviderRef: w.ID, Status: status, Amount: amount, DeclineCode: w.DeclineCode, Message: w.Message,
		Seq: w.Seq, UpdatedAt: w.Updated, Raw: raw, Next: psp.NextNone,
	}
	if w.ReceivedAmount != "" {
		if p.Received, err = wireAmount(op, w.ReceivedAmount, w.Currency); err != nil {
			return psp.Payment{}, err
		}
	}
	if w.Card != nil {
		p.Instrument = psp.Instrument{Brand: w.Card.Brand, Last4: w.Card.Last4, Token: w.Card.Token, Country: w.Card.Country}
	}
	if w.Crypto != nil {
		p.Confirmations = w.Crypto.Confirmations
	}
	if w.NextAction != nil {
		switch w.NextAction.Type {
		case "redirect":
			p.Next, p.RedirectURL = psp.NextRedirect, w.NextAction.URL
		case "instructions":
			p.Next = psp.NextInstructions
			in := &psp.Instructions{Amount: amount}
			if w.ExpiresAt != nil {
				in.ExpiresAt = *w.ExpiresAt
			}
			if b := w.BankTransfer; b != nil {
				in.BankName, in.AccountHolder, in.IBAN, in.BIC, in.Reference = b.BankName, b.AccountHolder, b.IBAN, b.BIC, b.Reference
			}
			if cr := w.Crypto; cr != nil {
				in.Address, in.Network, in.RequiredConfirmations = cr.Address, cr.Network, cr.RequiredConfirmations
			}
			p.Instructions = in
		}
	}
	return p, nil
}

func toPayout(w wireObject, raw []byte) (psp.Payout, error) {
	const op = "sandbox.toPayout"
	if w.Object != "payout" {
		return psp.Payout{}, errs.Ef(errs.Invalid, op, "expected a payout, got %q", w.Object)
	}
	status, err := toStatus(w.Status)
	if err != nil {
		return psp.Payout{}, err
	}
	amount, err := wireAmount(op, w.Amount, w.Currency)
	if err != nil {
		return psp.Payout{}, err
	}
	return psp.Payout{
		ID: w.Reference, ProviderRef: w.ID, Status: status, Amount: amount, DeclineCode: w.DeclineCode,
		Message: w.Message, Seq: w.Seq, UpdatedAt: w.Updated, Raw: raw,
	}, nil
}
