package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// maxForm bounds the body of every sandbox page form.
const maxForm = 16 << 10

var templateFuncs = template.FuncMap{
	"display": func(a money.Amount) string {
		if a.Currency().Code == "" {
			return ""
		}
		return a.Display("en")
	},
	"cardnum": FormatCardNumber,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"final": finalStatus,
	// dict builds a map from alternating keys and values, to pass
	// several values to a nested template.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errs.E(errs.Internal, "sandbox.dict", "dict needs key-value pairs")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errs.E(errs.Internal, "sandbox.dict", "dict keys must be strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

// render writes a page; a template error is logged and answered 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "sandbox page failed", "page", name, "err", err)
		http.Error(w, "sandbox page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "Something went wrong in the sandbox."
	switch errs.CodeOf(err) {
	case errs.NotFound:
		status, msg = http.StatusNotFound, "There is no such sandbox payment."
	case errs.Invalid, errs.Conflict:
		status, msg = http.StatusBadRequest, errs.MessageOf(err)
	default:
		s.log.ErrorContext(r.Context(), "sandbox page failed", "path", r.URL.Path, "err", err)
	}
	s.render(w, r, status, "message.html", map[string]any{"Title": "Sandbox", "Message": msg, "Base": s.base.Path})
}

// returnURL is the merchant's return URL with the merchant's reference
// added, so its page knows which payment the customer comes back from.
func returnURL(o object) string {
	u, err := url.Parse(o.ReturnURL)
	if err != nil {
		return o.ReturnURL
	}
	q := u.Query()
	q.Set("payment", o.Reference)
	u.RawQuery = q.Encode()
	return u.String()
}

type checkoutData struct {
	P         object
	Bank      BankAccount
	Error     string
	Cards     []TestCard
	Attempts  int
	ReturnURL string
	Base      string
}

func (s *Server) checkoutData(o object, msg string) checkoutData {
	return checkoutData{P: o, Bank: s.opts.Bank, Error: msg, Cards: TestCards, Attempts: MaxOTPAttempts - o.OTPAttempts,
		ReturnURL: returnURL(o), Base: s.base.Path}
}

func (s *Server) payment(ctx context.Context, id string) (object, error) {
	o, err := s.byID(ctx, id)
	if err == nil && o.Object != "payment" {
		err = errs.E(errs.NotFound, "sandbox.payment", "not a payment")
	}
	return o, err
}

// checkoutPage is GET /sandbox/checkout/{id}: the hosted page for the
// payment in whatever state it is.
func (s *Server) checkoutPage(w http.ResponseWriter, r *http.Request) {
	o, err := s.payment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	switch {
	case o.Status == StatusRequiresAction && o.Method == psp.Card && o.Scenario == string(CardThreeDS):
		http.Redirect(w, r, s.base.Path+"/checkout/"+o.ID+"/3ds", http.StatusSeeOther)
	case o.Status == StatusRequiresAction && o.Method == psp.Card:
		s.render(w, r, http.StatusOK, "card.html", s.checkoutData(o, ""))
	case o.Status == StatusRequiresAction && o.Method == psp.EWallet:
		s.render(w, r, http.StatusOK, "wallet.html", s.checkoutData(o, ""))
	case o.Status == StatusAwaitingFunds:
		s.render(w, r, http.StatusOK, "instructions.html", s.checkoutData(o, ""))
	default:
		s.render(w, r, http.StatusOK, "done.html", s.checkoutData(o, ""))
	}
}

// cardForm checks the hosted card form and returns the test card. The
// card number is used only here, to choose the test card, and is never
// stored, logged or written back into a page.
func (s *Server) cardForm(r *http.Request) (TestCard, string) {
	number := cleanCardNumber(r.PostFormValue("number"))
	if !luhn(number) {
		return TestCard{}, "The card number is not valid."
	}
	card, ok := lookupTestCard(number)
	if !ok {
		return TestCard{}, "This is not a sandbox test card. Use one of the test cards listed on this page; real cards are never accepted."
	}
	month, year, ok := parseExpiry(r.PostFormValue("expiry"))
	if !ok {
		return TestCard{}, "Enter the expiry date as MM/YY."
	}
	now := s.clock.Now()
	if endOfMonth := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC); !now.Before(endOfMonth) {
		return TestCard{}, "The expiry date is in the past."
	}
	cvc := strings.TrimSpace(r.PostFormValue("cvc"))
	if len(cvc) < 3 || len(cvc) > 4 || strings.Trim(cvc, "0123456789") != "" {
		return TestCard{}, "Enter the 3- or 4-digit security code."
	}
	return card, ""
}

// parseExpiry reads "MM/YY" or "MM/YYYY".
func parseExpiry(s string) (month, year int, ok bool) {
	mm, yy, found := strings.Cut(strings.ReplaceAll(s, " ", ""), "/")
	if !found {
		return 0, 0, false
	}
	m, err1 := strconv.Atoi(mm)
	y, err2 := strconv.Atoi(yy)
	if err1 != nil || err2 != nil || m < 1 || m > 12 {
		return 0, 0, false
	}
	switch len(yy) {
	case 2:
		y += 2000
	case 4:
	default:
		return 0, 0, false
	}
	return m, y, true
}

// checkoutCard is POST /sandbox/checkout/{id}/card.
//
// A valid card goes straight to the payment under its lock (which checks
// that the payment waits for a card); the payment is read first only to
// show the form again with what is wrong.
func (s *Server) checkoutCard(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	card, problem := s.cardForm(r)
	if problem != "" {
		o, err := s.payment(r.Context(), r.PathValue("id"))
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		if o.Status != StatusRequiresAction || o.Method != psp.Card {
			http.Redirect(w, r, s.base.Path+"/checkout/"+o.ID, http.StatusSeeOther)
			return
		}
		s.render(w, r, http.StatusUnprocessableEntity, "card.html", s.checkoutData(o, problem))
		return
	}
	o, err := s.mutate(r.Context(), r.PathValue("id"), func(c *change) error {
		if c.obj.Object != "payment" {
			return errs.E(errs.NotFound, "sandbox.payment", "not a payment")
		}
		return s.cardSubmitted(c, card)
	})
	if errs.Is(err, errs.Conflict) {
		http.Redirect(w, r, s.base.Path+"/checkout/"+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if o.Status == StatusRequiresAction {
		http.Redirect(w, r, s.base.Path+"/checkout/"+o.ID+"/3ds", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, returnURL(o), http.StatusSeeOther)
}

// threeDSPage is GET /sandbox/checkout/{id}/3ds: the one-time-code page.
func (s *Server) threeDSPage(w http.ResponseWriter, r *http.Request) {
	o, err := s.payment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if o.Status != StatusRequiresAction || o.Scenario != string(CardThreeDS) {
		http.Redirect(w, r, s.base.Path+"/checkout/"+o.ID, http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "threeds.html", s.checkoutData(o, ""))
}

// threeDSSubmit is POST /sandbox/checkout/{id}/3ds.
func (s *Server) threeDSSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	code := strings.TrimSpace(r.PostFormValue("code"))
	cancel := r.PostFormValue("action") == "cancel"
	o, err := s.mutate(r.Context(), r.PathValue("id"), func(c *change) error { return s.threeDSAnswered(c, code, cancel) })
	if errs.Is(err, errs.Conflict) {
		http.Redirect(w, r, s.base.Path+"/checkout/"+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if o.Status == StatusRequiresAction {
		msg := "That code is not right. " + strconv.Itoa(MaxOTPAttempts-o.OTPAttempts) + " attempts left."
		s.render(w, r, http.StatusUnprocessableEntity, "threeds.html", s.checkoutData(o, msg))
		return
	}
	http.Redirect(w, r, returnURL(o), http.StatusSeeOther)
}

// walletSubmit is POST /sandbox/checkout/{id}/wallet (approve or cancel).
func (s *Server) walletSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	approve := r.PostFormValue("action") == "approve"
	o, err := s.mutate(r.Context(), r.PathValue("id"), func(c *change) error { return s.walletAnswered(c, approve) })
	if errs.Is(err, errs.Conflict) {
		http.Redirect(w, r, s.base.Path+"/checkout/"+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, returnURL(o), http.StatusSeeOther)
}

// Control page.

// action is a button on the control page.
type action struct {
	Name  string
	Label string
	// Amount asks for an amount field.
	Amount bool
}

// actionsFor lists what the control page can do to an object now.
func actionsFor(o object) []action {
	var out []action
	switch {
	case o.Status == StatusAwaitingFunds && o.Method == psp.BankTransfer:
		out = append(out, action{"arrive", "Money arrived (in full)", false}, action{"arrive-partial", "Half arrived", false},
			action{"arrive-over", "10 % too much arrived", false}, action{"arrive-amount", "This much arrived", true})
	case o.Status == StatusAwaitingFunds && o.Method == psp.Crypto:
		out = append(out, action{"arrive", "Transaction seen (in full)", false}, action{"arrive-partial", "Half sent", false},
			action{"arrive-over", "10 % too much sent", false}, action{"arrive-amount", "This much sent", true})
	case o.Status == StatusProcessing && o.Method == psp.Crypto:
		out = append(out, action{"confirm", "Add a confirmation", false}, action{"complete", "Confirm fully", false})
	case o.Status == StatusProcessing && o.Object == "payout":
		out = append(out, action{"complete", "Pay out now", false}, action{"reject", "Reject", false})
	case o.Status == StatusProcessing:
		out = append(out, action{"complete", "Complete now", false})
	}
	if o.Status == StatusRequiresAction || o.Status == StatusAwaitingFunds {
		out = append(out, action{"expire", "Expire", false})
	}
	return out
}

type controlRow struct {
	P       object
	Actions []action
}

type eventRow struct {
	ID          string
	Type        string
	Seq         int64
	Created     time.Time
	Deliveries  int
	DeliveredAt time.Time
	LastStatus  int
	LastError   string
}

func (s *Server) controlRows(ctx context.Context) ([]controlRow, error) {
	rows, err := s.db.Query(ctx, `SELECT `+objectColumns+` FROM sandbox_payments ORDER BY created_at DESC, id DESC LIMIT 200`)
	if err != nil {
		return nil, errs.Wrap("sandbox.control", err)
	}
	defer rows.Close()
	var out []controlRow
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, errs.Wrap("sandbox.control", err)
		}
		out = append(out, controlRow{P: o, Actions: actionsFor(o)})
	}
	return out, errs.Wrap("sandbox.control", rows.Err())
}

// controlPage is GET /sandbox/control: the sandbox's payments and payouts
// with buttons, the webhook settings and the test data.
func (s *Server) controlPage(w http.ResponseWriter, r *http.Request) {
	list, err := s.controlRows(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	st, err := loadSettings(r.Context(), s.db, s.opts)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "control.html", map[string]any{
		"Rows": list, "Settings": st, "Cards": TestCards, "Base": s.base.Path, "WebhookURL": s.opts.WebhookURL,
		"Error": r.URL.Query().Get("error"), "Opts": s.opts,
		"RejectedIBAN": RejectedIBAN, "DelayedIBAN": DelayedIBAN, "RejectedWallet": RejectedWallet, "DelayedWallet": DelayedWallet,
	})
}

// controlDetail is GET /sandbox/control/{id}: one object and its events.
func (s *Server) controlDetail(w http.ResponseWriter, r *http.Request) {
	o, err := s.byID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rows, err := s.db.Query(r.Context(), `SELECT id, type, seq, created_at, deliveries, delivered_at, last_status, last_error
		FROM sandbox_events WHERE payment_id = ? ORDER BY id`, o.ID)
	if err != nil {
		s.pageError(w, r, errs.Wrap("sandbox.controlDetail", err))
		return
	}
	defer rows.Close()
	var events []eventRow
	for rows.Next() {
		var (
			e         eventRow
			created   int64
			delivered sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.Seq, &created, &e.Deliveries, &delivered, &e.LastStatus, &e.LastError); err != nil {
			s.pageError(w, r, errs.Wrap("sandbox.controlDetail", err))
			return
		}
		e.Created, e.DeliveredAt = sqlstore.FromMicros(created), sqlstore.FromNullMicros(delivered)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		s.pageError(w, r, errs.Wrap("sandbox.controlDetail", err))
		return
	}
	s.render(w, r, http.StatusOK, "detail.html", map[string]any{
		"Row": controlRow{P: o, Actions: actionsFor(o)}, "Events": events, "Base": s.base.Path,
		"Error": r.URL.Query().Get("error"), "Checkout": s.base.Path + "/checkout/" + o.ID,
	})
}

// controlAction is POST /sandbox/control/{id}/{action}.
func (s *Server) controlAction(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	id, name := r.PathValue("id"), r.PathValue("action")
	back := s.base.Path + "/control/" + id
	if r.PostFormValue("back") == "list" {
		back = s.base.Path + "/control"
	}
	var err error
	if name == "resend" {
		err = s.resend(r.Context(), r.PostFormValue("event"))
	} else {
		amountText := strings.TrimSpace(r.PostFormValue("amount"))
		_, err = s.mutate(r.Context(), id, func(c *change) error { return s.controlChange(c, name, amountText) })
	}
	if err != nil {
		if errs.CodeOf(err) == errs.Internal {
			s.pageError(w, r, err)
			return
		}
		back += "?error=" + url.QueryEscape(errs.MessageOf(err))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) controlChange(c *change, name, amountText string) error {
	const op = "sandbox.control"
	allowed := false
	for _, a := range actionsFor(c.obj) {
		allowed = allowed || a.Name == name
	}
	if !allowed {
		return errs.Ef(errs.Conflict, op, "%q is not possible for a %s %s that is %s", name, c.obj.Method, c.obj.Object, c.obj.Status)
	}
	amount := c.obj.Amount
	switch name {
	case "arrive":
		return s.arrive(c, amount)
	case "arrive-partial":
		half, err := amount.MulRatio(1, 2, money.RoundDown)
		if err != nil {
			return err
		}
		if half.IsZero() {
			half = money.New(1, amount.Currency())
		}
		return s.arrive(c, half)
	case "arrive-over":
		over, err := amount.MulRatio(11, 10, money.RoundDown)
		if err != nil {
			return err
		}
		if over == amount {
			over = money.New(amount.Minor()+1, amount.Currency())
		}
		return s.arrive(c, over)
	case "arrive-amount":
		a, err := money.ParsePositive(amountText, amount.Currency())
		if err != nil {
			return errs.Wrap(op, err)
		}
		return s.arrive(c, a)
	case "confirm":
		return s.confirm(c)
	case "complete":
		return s.complete(c)
	case "reject":
		return s.rejectPayout(c)
	case "expire":
		return s.expire(c)
	}
	return errs.Ef(errs.Invalid, op, "unknown action %q", name)
}

// controlSettings is POST /sandbox/control/settings.
func (s *Server) controlSettings(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	st := settings{
		Duplicate:  r.PostFormValue("duplicate_webhooks") == "on",
		OutOfOrder: r.PostFormValue("out_of_order_webhooks") == "on",
		Drop:       r.PostFormValue("drop_webhooks") == "on",
	}
	if err := s.saveSettings(r.Context(), st); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, s.base.Path+"/control", http.StatusSeeOther)
}
