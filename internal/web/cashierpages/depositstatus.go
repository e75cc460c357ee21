package cashierpages

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/web"
)

// startDeposit starts a deposit and sends the browser to the provider's
// step or to the status page. onRetryable shows an error the customer may
// retry as is (with the same form id); onFix one they must fix on the form.
//
// onRefused, when set, is asked first when funding refuses the request
// (errs.Forbidden or errs.NotFound); it reports whether it answered.
func (s *screens) startDeposit(w http.ResponseWriter, r *http.Request, p prefs, req funding.DepositRequest, onRetryable, onFix func(int, string), onRefused func() bool) {
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	rt, err := s.seal.seal(purposeTicket, ticket{Kind: "r", ID: req.ID, UserID: req.Customer.UserID, Email: req.Customer.Email,
		Login: req.Login, Lang: p.Lang, Theme: p.Theme, Source: p.Source, Expires: s.opt.Clock.Now().Add(s.opt.TicketTTL),
		Method: req.MethodID, Amount: req.Amount.Decimal(), Currency: req.Amount.Currency().Code,
		Profiled: true, Country: req.Customer.Country, KYCLevel: req.Customer.KYCLevel})
	if err != nil {
		s.internal(w, r, p, "seal a return ticket", err)
		return
	}
	req.ReturnURL = s.public.String() + s.opt.Prefix + "/deposit/return?" + url.Values{"t": {rt}}.Encode()
	dep, err := s.fund.StartDeposit(r.Context(), req)
	if err != nil {
		if le, ok := payments.AsLimitError(err); ok {
			name := req.MethodID
			if n, ok := s.methodName(req.MethodID, lang); ok {
				name = n
			}
			onFix(http.StatusUnprocessableEntity, limitMessage(le, name, tr, lang))
			return
		}
		switch errs.CodeOf(err) {
		case errs.Invalid:
			onFix(http.StatusBadRequest, tr.Get("common.error.invalid"))
		case errs.Forbidden, errs.NotFound:
			if onRefused != nil && onRefused() {
				return
			}
			s.problem(w, r, p, http.StatusForbidden, "cashier.error.method", "")
		case errs.Conflict:
			s.problem(w, r, p, http.StatusConflict, "cashier.error.form_used", "")
		case errs.Unavailable:
			s.log.WarnContext(r.Context(), "cashier: deposit not started", "err", err)
			onRetryable(http.StatusServiceUnavailable, tr.Get("common.error.unavailable"))
		default:
			s.log.ErrorContext(r.Context(), "cashier: deposit not started", "err", err)
			onRetryable(http.StatusInternalServerError, tr.Get("common.error.generic"))
		}
		return
	}
	s.log.InfoContext(r.Context(), "deposit started", "deposit", dep.ID, "user", req.Customer.UserID, "account", req.Login,
		"method", req.MethodID, "amount", req.Amount.String(), "status", dep.Status)
	s.afterStart(w, r, p, req.Customer, dep)
}

// afterStart sends the browser on: to the provider's hosted page while the
// deposit waits for it, otherwise to the status page (instructions or the
// outcome).
func (s *screens) afterStart(w http.ResponseWriter, r *http.Request, p prefs, c funding.Customer, dep funding.Deposit) {
	if dep.Next.RedirectURL != "" && dep.Status == funding.DepositAwaitingPayment {
		http.Redirect(w, r, dep.Next.RedirectURL, http.StatusSeeOther)
		return
	}
	t, err := s.ticketFor("d", dep.ID, c, dep.Login, p)
	if err != nil {
		s.internal(w, r, p, "seal a deposit ticket", err)
		return
	}
	http.Redirect(w, r, s.opt.Prefix+"/deposit/status?"+url.Values{"t": {t}}.Encode(), http.StatusSeeOther)
}

// depositReturn is where the provider's hosted page sends the browser
// back. The deposit is found again by its request (StartDeposit is
// idempotent and only reads a deposit that has started), and the browser
// goes on to its status page.
func (s *screens) depositReturn(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticketOf(w, r, "r")
	if !ok {
		return
	}
	p := t.prefs()
	cur, err := money.LookupCurrency(t.Currency)
	if err != nil {
		s.problem(w, r, p, http.StatusBadRequest, "cashier.error.ticket", "")
		return
	}
	amount, err := money.Parse(t.Amount, cur)
	if err != nil {
		s.problem(w, r, p, http.StatusBadRequest, "cashier.error.ticket", "")
		return
	}
	c := funding.Customer{UserID: t.UserID, Email: t.Email, Lang: s.r.Lang(t.Lang), Country: t.Country, KYCLevel: t.KYCLevel}
	if !t.Profiled {
		if c, err = s.customer(r, t.UserID, t.Email, s.r.Lang(t.Lang)); err != nil {
			s.internal(w, r, p, "read the customer's profile", err)
			return
		}
	}
	dep, err := s.fund.StartDeposit(r.Context(), funding.DepositRequest{ID: t.ID, Customer: c, Login: t.Login, MethodID: t.Method,
		Amount: amount, Lang: s.r.Lang(t.Lang)})
	if err != nil {
		switch errs.CodeOf(err) {
		case errs.Unavailable:
			s.log.WarnContext(r.Context(), "cashier: deposit not found again", "err", err)
			s.problem(w, r, p, http.StatusServiceUnavailable, "common.error.unavailable", r.URL.RequestURI())
		case errs.Conflict, errs.Invalid, errs.NotFound, errs.Forbidden:
			s.problem(w, r, p, http.StatusNotFound, "cashier.error.not_found", "")
		default:
			s.internal(w, r, p, "find a deposit again", err)
		}
		return
	}
	dt, err := s.ticketFor("d", dep.ID, c, dep.Login, p)
	if err != nil {
		s.internal(w, r, p, "seal a deposit ticket", err)
		return
	}
	http.Redirect(w, r, s.opt.Prefix+"/deposit/status?"+url.Values{"t": {dt}}.Encode(), http.StatusSeeOther)
}

// fundingError shows a funding failure outside a form.
func (s *screens) fundingError(w http.ResponseWriter, r *http.Request, f *flow, what string, err error, back string) {
	switch errs.CodeOf(err) {
	case errs.Forbidden:
		s.problem(w, r, f.p, http.StatusForbidden, "cashier.error.not_allowed", back)
	case errs.NotFound:
		s.problem(w, r, f.p, http.StatusNotFound, "cashier.error.not_found", back)
	case errs.Unavailable:
		s.log.WarnContext(r.Context(), "cashier: "+what, "err", err)
		retry := back
		if r.Method == http.MethodGet {
			retry = r.URL.RequestURI()
		}
		s.problem(w, r, f.p, http.StatusServiceUnavailable, "common.error.unavailable", retry)
	default:
		s.internal(w, r, f.p, what, err)
	}
}

// --- status ---

// settledDeposit reports whether a deposit's page can stop asking for
// news: an outcome the customer can act on. Processing (an operator or the
// platform must answer) keeps refreshing, slowly.
func settledDeposit(st funding.DepositStatus) bool {
	switch st {
	case funding.DepositCompleted, funding.DepositDeclined, funding.DepositExpired, funding.DepositFailed, funding.DepositReversed, funding.DepositRejected:
		return true
	}
	return false
}

type statusData struct {
	common
	Kind      string // deposit or withdraw
	State     string // waiting, working, success, resting, failed
	Status    string // funding's status
	Headline  string
	Text      string
	Summary   []line
	Bank      []line
	Crypto    []line
	Retry     bool
	Ticket    string
	PollURL   string
	DoneURL   string
	Code      bool // the 2FA code form
	CodeError string
	CodeNote  string
}

func (s *screens) depositStatus(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticketOf(w, r, "d")
	if !ok {
		return
	}
	dep, err := s.fund.Deposit(r.Context(), t.UserID, t.ID)
	if err != nil {
		s.statusError(w, r, t, err)
		return
	}
	s.renderDepositStatus(w, r, t, dep, http.StatusOK, "")
}

func (s *screens) statusError(w http.ResponseWriter, r *http.Request, t ticket, err error) {
	switch errs.CodeOf(err) {
	case errs.NotFound, errs.Forbidden:
		s.problem(w, r, t.prefs(), http.StatusNotFound, "cashier.error.not_found", "")
	case errs.Unavailable:
		s.log.WarnContext(r.Context(), "cashier: status unavailable", "err", err)
		s.problem(w, r, t.prefs(), http.StatusServiceUnavailable, "common.error.unavailable", r.URL.RequestURI())
	default:
		s.internal(w, r, t.prefs(), "read a status", err)
	}
}

func (s *screens) renderDepositStatus(w http.ResponseWriter, r *http.Request, t ticket, dep funding.Deposit, status int, errText string) {
	p := t.prefs()
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	raw := r.FormValue("t")
	d := statusData{Kind: "deposit", Status: string(dep.Status), Ticket: raw, DoneURL: s.opt.SuccessURL}
	d.common = s.common(r, p, "", opDeposit, 4)
	method := dep.MethodID
	if m, ok := s.methodName(dep.MethodID, lang); ok {
		method = m
	}
	d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.account"), Value: strconv.FormatInt(dep.Login, 10)},
		line{Label: tr.Get("cashier.summary.method"), Value: method})
	if !dep.Amount.IsZero() {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.you_pay"), Value: display(dep.Amount, lang)})
	}
	if !dep.Credit.IsZero() {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.credited"), Value: display(dep.Credit, lang), Strong: true})
	}
	switch dep.Status {
	case funding.DepositCompleted:
		d.State, d.Headline, d.Text = "success", tr.Get("cashier.deposit.completed"), tr.Get("cashier.deposit.completed_text")
	case funding.DepositProcessing:
		d.State, d.Headline, d.Text = "resting", tr.Get("cashier.deposit.processing"), tr.Get("cashier.deposit.processing_text")
	case funding.DepositPaid, funding.DepositCrediting:
		d.State, d.Headline, d.Text = "working", tr.Get("cashier.deposit.crediting"), tr.Get("cashier.deposit.crediting_text")
	case funding.DepositDeclined, funding.DepositFailed:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.deposit.failed"), s.failureText(dep.Failure, tr)
		d.Retry = retryable(dep)
	case funding.DepositExpired:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.deposit.expired"), tr.Get("cashier.deposit.expired_text")
		d.Retry = retryable(dep)
	case funding.DepositReversed, funding.DepositRejected:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.deposit.reversed"), tr.Get("cashier.deposit.reversed_text")
	default: // created, awaiting_payment
		d.State, d.Headline, d.Text = "waiting", tr.Get("cashier.deposit.waiting"), tr.Get("cashier.deposit.waiting_text")
		if in := dep.Next.Instructions; in != nil {
			d.State, d.Text = "resting", tr.Get("cashier.deposit.instructions_text")
			d.Bank, d.Crypto = instructionLines(in, tr, lang)
		}
	}
	if settledDeposit(dep.Status) {
		d.Steps = s.common(r, p, "", opDeposit, 5).Steps
	} else {
		every := s.opt.RefreshEvery
		if d.State == "resting" {
			every *= 5
		}
		d.Refresh = strconv.Itoa(int(every.Seconds()))
		d.PollURL = s.opt.Prefix + "/deposit/status.json?" + url.Values{"t": {raw}}.Encode()
	}
	if dep.Status == funding.DepositCompleted && s.opt.ResultDelay > 0 {
		d.RedirectURL, d.RedirectAfter = s.opt.SuccessURL, strconv.Itoa(int(s.opt.ResultDelay.Seconds()))
	}
	s.renderPage(w, status, "cashier_status", p, errText, "", "", d)
}

// retryable reports whether a failed deposit may be tried again as it is
// (PAYMENT_FAILED with retryAllowed).
func retryable(dep funding.Deposit) bool {
	switch dep.Status {
	case funding.DepositDeclined, funding.DepositFailed, funding.DepositExpired:
		return dep.Failure != nil && dep.Failure.RetryAllowed != nil && *dep.Failure.RetryAllowed
	}
	return false
}

// failureText words a PAYMENT_FAILED body by its reason.
func (s *screens) failureText(fb *payments.ErrorBody, tr web.Translator) string {
	if fb == nil {
		return tr.Get("cashier.failure.generic")
	}
	id := "cashier.failure." + fb.Reason
	if msg := tr.Get(id); msg != id && fb.Reason != "" {
		return msg
	}
	return tr.Get("cashier.failure.generic")
}

func instructionLines(in *psp.Instructions, tr web.Translator, lang string) (bank, crypto []line) {
	add := func(out *[]line, id, v string, strong bool) {
		if v != "" {
			*out = append(*out, line{Label: tr.Get(id), Value: v, Strong: strong})
		}
	}
	if in.Address != "" {
		add(&crypto, "cashier.crypto.amount", display(in.Amount, lang), true)
		add(&crypto, "cashier.crypto.address", in.Address, true)
		add(&crypto, "cashier.crypto.network", in.Network, false)
		if in.RequiredConfirmations > 0 {
			add(&crypto, "cashier.crypto.confirmations", localDigits(strconv.Itoa(in.RequiredConfirmations), lang), false)
		}
		return nil, crypto
	}
	add(&bank, "cashier.bank.amount", display(in.Amount, lang), true)
	add(&bank, "cashier.bank.reference", in.Reference, true)
	add(&bank, "cashier.bank.holder", in.AccountHolder, false)
	add(&bank, "cashier.bank.iban", groupIBAN(in.IBAN), false)
	add(&bank, "cashier.bank.bic", in.BIC, false)
	add(&bank, "cashier.bank.name", in.BankName, false)
	return bank, nil
}

// statusAnswer is the status page script's JSON.
type statusAnswer struct {
	Status string `json:"status"`
	Final  bool   `json:"final"`
}

func (s *screens) depositStatusJSON(w http.ResponseWriter, r *http.Request) {
	var t ticket
	if err := s.seal.open(purposeTicket, r.FormValue("t"), s.opt.Clock.Now(), &t); err != nil || t.Kind != "d" {
		httpx.WriteJSON(w, http.StatusGone, statusAnswer{Status: "unknown", Final: true})
		return
	}
	dep, err := s.fund.Deposit(r.Context(), t.UserID, t.ID)
	if err != nil {
		httpx.WriteJSON(w, httpx.StatusOf(err), statusAnswer{Status: "unknown"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, statusAnswer{Status: string(dep.Status), Final: settledDeposit(dep.Status)})
}

// depositRetry starts the same deposit again after a failure that allows
// a retry; the customer pays on the provider's page again (with another
// card, say).
func (s *screens) depositRetry(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticketOf(w, r, "d")
	if !ok {
		return
	}
	dep, err := s.fund.Deposit(r.Context(), t.UserID, t.ID)
	if err != nil {
		s.statusError(w, r, t, err)
		return
	}
	if !retryable(dep) {
		s.renderDepositStatus(w, r, t, dep, http.StatusConflict, "cashier.error.no_retry")
		return
	}
	lang := s.r.Lang(t.Lang)
	c, err := s.customer(r, t.UserID, t.Email, lang)
	if err != nil {
		s.internal(w, r, t.prefs(), "read the customer's profile", err)
		return
	}
	// The retry's request id is derived from the failed deposit, so that a
	// double click starts one new deposit, not two.
	req := funding.DepositRequest{ID: "retry_" + dep.ID, Customer: c, Login: dep.Login, MethodID: dep.MethodID, Amount: dep.Amount, Lang: lang}
	show := func(status int, msg string) { s.renderDepositStatus(w, r, t, dep, status, msg) }
	s.startDeposit(w, r, t.prefs(), req, show, show, nil)
}

// methodName finds a method's display name in the catalogue funding uses.
func (s *screens) methodName(id, lang string) (string, bool) {
	if s.methods == nil {
		return "", false
	}
	m, err := s.methods.Method(id)
	if err != nil {
		return "", false
	}
	return m.Name(lang), true
}
