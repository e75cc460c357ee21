package sandbox

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// The wire format of the sandbox API and its webhooks. It is the sandbox's
// own, like any provider's; Client translates it into psp types.

type wireObject struct {
	ID             string           `json:"id"`
	Object         string           `json:"object"`
	Reference      string           `json:"reference"`
	Method         string           `json:"method"`
	Status         string           `json:"status"`
	Amount         string           `json:"amount"`
	Currency       string           `json:"currency"`
	ReceivedAmount string           `json:"receivedAmount,omitempty"`
	DeclineCode    string           `json:"declineCode,omitempty"`
	Message        string           `json:"message,omitempty"`
	NextAction     *wireNextAction  `json:"nextAction,omitempty"`
	Card           *wireCard        `json:"card,omitempty"`
	BankTransfer   *wireBank        `json:"bankTransfer,omitempty"`
	Crypto         *wireCrypto      `json:"crypto,omitempty"`
	Destination    *wireDestination `json:"destination,omitempty"`
	Seq            int64            `json:"seq"`
	Created        time.Time        `json:"created"`
	Updated        time.Time        `json:"updated"`
	ExpiresAt      *time.Time       `json:"expiresAt,omitempty"`
}

type wireNextAction struct {
	Type string `json:"type"` // redirect or instructions
	URL  string `json:"url,omitempty"`
}

type wireCard struct {
	Brand   string `json:"brand,omitempty"`
	Last4   string `json:"last4,omitempty"`
	Token   string `json:"token,omitempty"`
	Country string `json:"country,omitempty"` // issuing country, ISO 3166-1 alpha-2
}

type wireBank struct {
	BankName      string `json:"bankName"`
	AccountHolder string `json:"accountHolder"`
	IBAN          string `json:"iban"`
	BIC           string `json:"bic"`
	Reference     string `json:"reference"`
}

type wireCrypto struct {
	Address               string `json:"address"`
	Network               string `json:"network"`
	Confirmations         int    `json:"confirmations"`
	RequiredConfirmations int    `json:"requiredConfirmations"`
}

type wireDestination struct {
	CardToken  string `json:"cardToken,omitempty"`
	IBAN       string `json:"iban,omitempty"`
	BIC        string `json:"bic,omitempty"`
	HolderName string `json:"holderName,omitempty"`
	WalletID   string `json:"walletId,omitempty"`
}

type envelope struct {
	ID      string     `json:"id"`
	Type    string     `json:"type"`
	Created int64      `json:"created"`
	Data    wireObject `json:"data"`
}

func (s *Server) wire(o object) wireObject {
	w := wireObject{
		ID: o.ID, Object: o.Object, Reference: o.Reference, Method: string(o.Method), Status: o.Status,
		Amount: o.Amount.Decimal(), Currency: o.Amount.Currency().Code, DeclineCode: o.DeclineCode, Message: o.Message,
		Seq: o.Seq, Created: o.CreatedAt, Updated: o.UpdatedAt,
	}
	if o.Received.Currency().Code != "" {
		w.ReceivedAmount = o.Received.Decimal()
	}
	if !o.ExpiresAt.IsZero() && !o.final() {
		at := o.ExpiresAt
		w.ExpiresAt = &at
	}
	switch o.Status {
	case StatusRequiresAction:
		w.NextAction = &wireNextAction{Type: "redirect", URL: s.url("/checkout/" + o.ID)}
	case StatusAwaitingFunds:
		w.NextAction = &wireNextAction{Type: "instructions"}
	}
	if o.CardLast4 != "" {
		w.Card = &wireCard{Brand: o.CardBrand, Last4: o.CardLast4, Token: o.CardToken, Country: o.CardCountry}
	}
	if o.BankReference != "" {
		b := s.opts.Bank
		w.BankTransfer = &wireBank{BankName: b.Name, AccountHolder: b.Holder, IBAN: b.IBAN, BIC: b.BIC, Reference: o.BankReference}
	}
	if o.CryptoAddress != "" {
		w.Crypto = &wireCrypto{Address: o.CryptoAddress, Network: o.Network, Confirmations: o.Confirmations, RequiredConfirmations: o.RequiredConfs}
	}
	if o.Object == "payout" {
		d := o.Destination
		w.Destination = &wireDestination{CardToken: d.CardToken, IBAN: d.IBAN, BIC: d.BIC, HolderName: d.HolderName, WalletID: d.WalletID}
	}
	return w
}

type wireCustomer struct {
	ID      string `json:"id"`
	Email   string `json:"email"`
	Name    string `json:"name"`
	Country string `json:"country"`
}

type createPaymentRequest struct {
	Reference   string       `json:"reference"`
	Method      string       `json:"method"`
	Amount      string       `json:"amount"`
	Currency    string       `json:"currency"`
	ReturnURL   string       `json:"returnUrl"`
	Description string       `json:"description"`
	Customer    wireCustomer `json:"customer"`
	Lang        string       `json:"lang"`
}

type createPayoutRequest struct {
	Reference   string          `json:"reference"`
	Method      string          `json:"method"`
	Amount      string          `json:"amount"`
	Currency    string          `json:"currency"`
	Destination wireDestination `json:"destination"`
	Description string          `json:"description"`
	Customer    wireCustomer    `json:"customer"`
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseAmount reads a positive amount in a known currency.
func parseAmount(op, amount, currency string) (money.Amount, error) {
	cur, err := money.LookupCurrency(currency)
	if err != nil {
		return money.Amount{}, errs.Wrap(op, err)
	}
	a, err := money.ParsePositive(amount, cur)
	return a, errs.Wrap(op, err)
}

// apiCreatePayment is POST /sandbox/api/payments. The reference is the
// idempotency key: the same reference with the same method, amount,
// currency and return URL answers 200 with the existing payment; with
// different ones 409.
func (s *Server) apiCreatePayment(w http.ResponseWriter, r *http.Request) {
	const op = "sandbox.createPayment"
	var req createPaymentRequest
	if err := httpx.DecodeJSON(w, r, &req, httpx.DecodeOptions{}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	o, err := s.newPayment(req)
	if err != nil {
		httpx.WriteProblem(w, r, errs.Wrap(op, err))
		return
	}
	out, created, err := s.create(r.Context(), o, func(c *change) { s.opening(c) })
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	s.answerCreate(w, r, out, created, o.RequestHash)
}

func (s *Server) answerCreate(w http.ResponseWriter, r *http.Request, out object, created bool, hash string) {
	if !created && out.RequestHash != hash {
		httpx.WriteProblem(w, r, errs.Ef(errs.Conflict, "sandbox.create", "reference %s was used for another %s", out.Reference, out.Object))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.WriteJSON(w, status, s.wire(out))
}

func checkReference(op, ref string) error {
	if ref == "" || len(ref) > 100 || strings.ContainsAny(ref, "/?#% ") {
		return errs.E(errs.Invalid, op, "reference must be 1-100 characters without spaces, '/', '?', '#' or '%'")
	}
	return nil
}

// newPayment validates a payment request and builds its object.
func (s *Server) newPayment(req createPaymentRequest) (object, error) {
	const op = "sandbox.newPayment"
	if err := checkReference(op, req.Reference); err != nil {
		return object{}, err
	}
	kind := psp.MethodKind(req.Method)
	if !capabilities.Supports(kind, req.Currency, false) {
		return object{}, errs.Ef(errs.Invalid, op, "the sandbox does not take %q payments in %q", req.Method, req.Currency)
	}
	amount, err := parseAmount(op, req.Amount, req.Currency)
	if err != nil {
		return object{}, err
	}
	if kind == psp.Card || kind == psp.EWallet {
		u, err := url.Parse(req.ReturnURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return object{}, errs.E(errs.Invalid, op, "returnUrl must be an absolute http(s) URL")
		}
	}
	id, err := newID("sbp_")
	if err != nil {
		return object{}, err
	}
	o := object{
		ID: id, Object: "payment", Reference: req.Reference, Method: kind, Amount: amount,
		ReturnURL: req.ReturnURL, Description: req.Description, CustomerEmail: req.Customer.Email,
		RequestHash: hashOf(req.Method, amount.String(), req.ReturnURL),
	}
	switch kind {
	case psp.BankTransfer:
		code, err := randomCode(10)
		if err != nil {
			return object{}, err
		}
		o.BankReference = "SBX-" + code[:5] + "-" + code[5:]
	case psp.Crypto:
		o.Network, o.CryptoAddress, err = cryptoAddress(amount.Currency().Code)
		if err != nil {
			return object{}, err
		}
		o.RequiredConfs = s.opts.CryptoConfirmations
	}
	return o, nil
}

// opening sets a new payment's first status, its expiry and its timers.
func (s *Server) opening(c *change) {
	switch c.obj.Method {
	case psp.Card, psp.EWallet:
		c.obj.ExpiresAt = c.now.Add(s.opts.CheckoutTTL)
		c.to(StatusRequiresAction)
		c.after(s.opts.CheckoutTTL, timerExpire)
	case psp.BankTransfer:
		c.obj.ExpiresAt = c.now.Add(s.opts.BankTransferTTL)
		c.to(StatusAwaitingFunds)
		c.after(s.opts.BankTransferTTL, timerExpire)
		if s.opts.BankArrivalDelay > 0 {
			c.after(s.opts.BankArrivalDelay, timerArrive)
		}
	case psp.Crypto:
		c.obj.ExpiresAt = c.now.Add(s.opts.CryptoTTL)
		c.to(StatusAwaitingFunds)
		c.after(s.opts.CryptoTTL, timerExpire)
	}
}

func cryptoAddress(code string) (network, address string, err error) {
	switch code {
	case "BTC":
		hex, err := randomCode(38)
		return "bitcoin-testnet", "tb1q" + strings.ToLower(hex), err
	default:
		hex, err := randomHex(40)
		network := "ethereum-sepolia"
		if code == "USDT" {
			network = "ethereum-sepolia (ERC-20 USDT)"
		}
		return network, "0x" + hex, err
	}
}

// apiCreatePayout is POST /sandbox/api/payouts, idempotent by reference
// like apiCreatePayment. The destination decides the outcome (see
// TestCards, RejectedIBAN, DelayedIBAN, RejectedWallet, DelayedWallet).
func (s *Server) apiCreatePayout(w http.ResponseWriter, r *http.Request) {
	const op = "sandbox.createPayout"
	var req createPayoutRequest
	if err := httpx.DecodeJSON(w, r, &req, httpx.DecodeOptions{}); err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	o, err := s.newPayout(r, req)
	if err != nil {
		httpx.WriteProblem(w, r, errs.Wrap(op, err))
		return
	}
	out, created, err := s.create(r.Context(), o, func(c *change) {
		switch o.Scenario {
		case PayoutPaid:
			c.to(StatusPaid)
		case PayoutRejected:
			c.obj.DeclineCode = psp.DeclineAccountClosed
			if c.obj.Method == psp.Card {
				c.obj.DeclineCode = psp.DeclineDoNotHonour
			}
			c.obj.Message = declineMessages[c.obj.DeclineCode]
			c.to(StatusRejected)
		default:
			c.to(StatusProcessing)
			c.after(s.opts.DelayedOutcome, timerComplete)
		}
	})
	if err != nil {
		httpx.WriteProblem(w, r, err)
		return
	}
	s.answerCreate(w, r, out, created, o.RequestHash)
}

func (s *Server) newPayout(r *http.Request, req createPayoutRequest) (object, error) {
	const op = "sandbox.newPayout"
	if err := checkReference(op, req.Reference); err != nil {
		return object{}, err
	}
	kind := psp.MethodKind(req.Method)
	if !capabilities.Supports(kind, req.Currency, true) {
		return object{}, errs.Ef(errs.Invalid, op, "the sandbox does not pay out by %q in %q", req.Method, req.Currency)
	}
	amount, err := parseAmount(op, req.Amount, req.Currency)
	if err != nil {
		return object{}, err
	}
	d := psp.Destination{CardToken: req.Destination.CardToken, IBAN: psp.NormalizeIBAN(req.Destination.IBAN),
		HolderName: req.Destination.HolderName, WalletID: strings.ToLower(strings.TrimSpace(req.Destination.WalletID))}
	outcome := PayoutPaid
	switch kind {
	case psp.Card:
		var payout string
		err := s.db.QueryRow(r.Context(), `SELECT payout_outcome FROM sandbox_cards WHERE token = ?`, d.CardToken).Scan(&payout)
		if errors.Is(err, sql.ErrNoRows) {
			return object{}, errs.Ef(errs.Invalid, op, "card token %q is not a sandbox card", d.CardToken)
		}
		if err != nil {
			return object{}, errs.Wrap(op, err)
		}
		outcome = payout
		d = psp.Destination{CardToken: d.CardToken}
	case psp.BankTransfer:
		if !psp.ValidIBAN(d.IBAN) || d.HolderName == "" {
			return object{}, errs.E(errs.Invalid, op, "a bank payout needs a valid IBAN and the holder's name")
		}
		switch d.IBAN {
		case RejectedIBAN:
			outcome = PayoutRejected
		case DelayedIBAN:
			outcome = PayoutDelayed
		}
		d = psp.Destination{IBAN: d.IBAN, BIC: strings.ToUpper(req.Destination.BIC), HolderName: d.HolderName}
	case psp.EWallet:
		if d.WalletID == "" {
			return object{}, errs.E(errs.Invalid, op, "an e-wallet payout needs the wallet id")
		}
		switch d.WalletID {
		case RejectedWallet:
			outcome = PayoutRejected
		case DelayedWallet:
			outcome = PayoutDelayed
		}
		d = psp.Destination{WalletID: d.WalletID}
	}
	id, err := newID("sbo_")
	if err != nil {
		return object{}, err
	}
	return object{
		ID: id, Object: "payout", Reference: req.Reference, Method: kind, Amount: amount, Scenario: outcome,
		Destination: d, Description: req.Description, CustomerEmail: req.Customer.Email,
		RequestHash: hashOf(req.Method, amount.String(), d.CardToken, d.IBAN, d.WalletID),
	}, nil
}

// apiGet is GET /sandbox/api/payments/{reference} and
// /sandbox/api/payouts/{reference}: the status endpoint for polling.
func (s *Server) apiGet(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, err := s.load(r.Context(), s.db, `object = ? AND reference = ?`, kind, r.PathValue("reference"))
		if err != nil {
			httpx.WriteProblem(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, s.wire(o))
	}
}
