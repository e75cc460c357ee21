package cashierpages

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/web"
)

// accountView is the trading account box at the top of a screen.
type accountView struct {
	Login        int64
	Currency     string
	Balance      string
	Withdrawable string
}

func viewAccount(a AccountView, lang string) accountView {
	v := accountView{Login: a.Login, Currency: a.Currency.Code}
	if a.Balance.Currency().Code != "" {
		v.Balance = a.Balance.Display(lang)
	}
	if a.Withdrawable.Currency().Code != "" {
		v.Withdrawable = a.Withdrawable.Display(lang)
	}
	return v
}

// methodRow is one method in a list.
type methodRow struct {
	ID     string
	Name   string
	Icon   template.HTML
	Limits string
	Fee    string
	URL    string
}

type methodsData struct {
	common
	Account accountView
	Methods []methodRow
	Empty   string
}

// defaultCurrency is the currency a method's form starts with: the
// account's if the method takes it, else its first.
func defaultCurrency(rules *payments.DirectionRules, account string) string {
	curs := rules.Currencies()
	if slices.Contains(curs, account) || len(curs) == 0 {
		return account
	}
	return curs[0]
}

func (s *screens) depositEntry(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("token") {
		s.open(w, r, opDeposit)
		return
	}
	if !r.URL.Query().Has("s") {
		s.problem(w, r, prefsOf(r), http.StatusBadRequest, "cashier.error.no_token", "")
		return
	}
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	if f.h.Login == 0 {
		s.chooseAccountPage(w, r, f, opDeposit)
		return
	}
	opts, err := s.fund.DepositOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		s.fundingError(w, r, f, "deposit options", err, "")
		return
	}
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	d := methodsData{common: s.common(r, f.p, f.raw, opDeposit, 1), Account: viewAccount(opts.Account, lang)}
	for _, m := range opts.Methods {
		rules := m.Rules(payments.Deposit)
		if rules == nil {
			continue
		}
		cur := defaultCurrency(rules, opts.Account.Currency.Code)
		d.Methods = append(d.Methods, methodRow{ID: m.ID, Name: m.Name(lang), Icon: icon(m.Icon),
			Limits: limitText(rules.Limits[cur], tr, lang), Fee: feeText(rules.Fee, cur, tr, lang),
			URL: f.link(s.opt.Prefix+"/deposit/amount", "method", m.ID)})
	}
	if len(d.Methods) == 0 {
		d.Empty = tr.Get("cashier.deposit.no_methods")
	}
	s.render(w, http.StatusOK, "cashier_methods", f.p, "", "", d)
}

// depositForm is the amount step's input.
type depositForm struct {
	Method   payments.Method
	Currency string
	Amount   string // as typed
}

// readDepositForm finds the method (among those the customer may use) and
// the typed currency and amount. It renders the error itself and reports
// false when the method is not offered.
func (s *screens) readDepositForm(w http.ResponseWriter, r *http.Request, f *flow) (DepositOptions, depositForm, bool) {
	opts, err := s.fund.DepositOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		s.fundingError(w, r, f, "deposit options", err, "")
		return opts, depositForm{}, false
	}
	id := r.FormValue("method")
	i := slices.IndexFunc(opts.Methods, func(m payments.Method) bool { return m.ID == id && m.Deposit != nil })
	if i < 0 {
		s.problem(w, r, f.p, http.StatusNotFound, "cashier.error.method", f.link(s.opt.DepositPath))
		return opts, depositForm{}, false
	}
	m := opts.Methods[i]
	df := depositForm{Method: m, Currency: r.FormValue("currency"), Amount: r.FormValue("amount")}
	if len(df.Amount) > 40 {
		df.Amount = df.Amount[:40]
	}
	if !slices.Contains(m.Deposit.Currencies(), df.Currency) {
		df.Currency = defaultCurrency(m.Deposit, opts.Account.Currency.Code)
	}
	return opts, df, true
}

type currencyOption struct {
	Code     string
	Selected bool
	Limits   string
	Fee      string
}

type amountData struct {
	common
	Account    accountView
	Method     methodRow
	Currencies []currencyOption
	Amount     string
	Limits     string
	Fee        string
	QuoteURL   string
	Preview    []line
	Converts   bool
}

// line is one label/value row of a summary.
type line struct {
	Label, Value string
	Strong       bool
}

func (s *screens) depositAmount(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, df, ok := s.readDepositForm(w, r, f)
	if !ok {
		return
	}
	s.amountPage(w, r, f, opts, df, http.StatusOK, "")
}

func (s *screens) amountPage(w http.ResponseWriter, r *http.Request, f *flow, opts DepositOptions, df depositForm, status int, errText string) {
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	rules := df.Method.Deposit
	d := amountData{common: s.common(r, f.p, f.raw, opDeposit, 2), Account: viewAccount(opts.Account, lang), Amount: df.Amount,
		Method:   methodRow{ID: df.Method.ID, Name: df.Method.Name(lang), Icon: icon(df.Method.Icon)},
		QuoteURL: s.opt.Prefix + "/deposit/quote", Limits: limitText(rules.Limits[df.Currency], tr, lang),
		Fee: feeText(rules.Fee, df.Currency, tr, lang)}
	for _, c := range rules.Currencies() {
		d.Currencies = append(d.Currencies, currencyOption{Code: c, Selected: c == df.Currency,
			Limits: limitText(rules.Limits[c], tr, lang), Fee: feeText(rules.Fee, c, tr, lang)})
		if c != opts.Account.Currency.Code {
			d.Converts = true
		}
	}
	if df.Amount != "" && errText == "" {
		if price, msg := s.price(r, f, df, lang); msg == "" {
			d.Preview = previewLines(price, tr, lang)
		}
	}
	s.renderPage(w, status, "cashier_amount", f.p, errText, "", f.link(s.opt.DepositPath), d)
}

// price quotes the form; msg is the translated reason it cannot be priced.
func (s *screens) price(r *http.Request, f *flow, df depositForm, lang string) (payments.Price, string) {
	tr := web.T(lang)
	cur, err := money.LookupCurrency(df.Currency)
	if err != nil {
		return payments.Price{}, tr.Get("cashier.error.currency")
	}
	amount, err := parseAmount(df.Amount, cur)
	if err != nil {
		return payments.Price{}, tr.Get("cashier.error.amount", "Currency", cur.Code, "Digits", cur.Digits)
	}
	p, err := s.fund.QuoteDeposit(r.Context(), f.cust, f.h.Login, df.Method.ID, amount)
	if err != nil {
		if le, ok := payments.AsLimitError(err); ok {
			return payments.Price{}, limitMessage(le, df.Method.Name(lang), tr, lang)
		}
		switch errs.CodeOf(err) {
		case errs.Invalid:
			return payments.Price{}, tr.Get("common.error.invalid")
		case errs.Unavailable:
			s.log.WarnContext(r.Context(), "cashier: quote unavailable", "method", df.Method.ID, "err", err)
			return payments.Price{}, tr.Get("cashier.error.fx")
		default:
			s.log.ErrorContext(r.Context(), "cashier: quote failed", "method", df.Method.ID, "err", err)
			return payments.Price{}, tr.Get("common.error.generic")
		}
	}
	return p, ""
}

func previewLines(p payments.Price, tr web.Translator, lang string) []line {
	out := []line{{Label: tr.Get("cashier.summary.you_pay"), Value: p.Gross.Display(lang)}}
	fee := tr.Get("cashier.fee.none")
	if !p.Fee.IsZero() {
		fee = p.Fee.Display(lang)
		if p.PaidBy == payments.PaidByBroker {
			fee = tr.Get("cashier.fee.broker_pays", "Fee", fee)
		}
	}
	out = append(out, line{Label: tr.Get("cashier.summary.fee"), Value: fee})
	if p.FX != nil {
		out = append(out, line{Label: tr.Get("cashier.summary.rate"), Value: rateText(p.FX, lang)})
	}
	out = append(out, line{Label: tr.Get("cashier.summary.credited"), Value: p.Account.Display(lang), Strong: true})
	return out
}

// quoteAnswer is the live preview's JSON.
type quoteAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Lines []line `json:"lines,omitempty"`
}

// depositQuote answers the amount form's script with the preview as
// ready-to-show text.
func (s *screens) depositQuote(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOfJSON(w, r)
	if !ok {
		return
	}
	opts, err := s.fund.DepositOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		httpx.WriteJSON(w, httpx.StatusOf(err), quoteAnswer{Error: web.T(s.r.Lang(f.p.Lang)).Get("common.error.generic")})
		return
	}
	lang := s.r.Lang(f.p.Lang)
	i := slices.IndexFunc(opts.Methods, func(m payments.Method) bool { return m.ID == r.FormValue("method") && m.Deposit != nil })
	if i < 0 {
		httpx.WriteJSON(w, http.StatusNotFound, quoteAnswer{Error: web.T(lang).Get("cashier.error.method")})
		return
	}
	df := depositForm{Method: opts.Methods[i], Currency: r.FormValue("currency"), Amount: r.FormValue("amount")}
	p, msg := s.price(r, f, df, lang)
	if msg != "" {
		httpx.WriteJSON(w, http.StatusOK, quoteAnswer{Error: msg})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, quoteAnswer{OK: true, Lines: previewLines(p, web.T(lang), lang)})
}

// flowOfJSON is flowOf for the script's calls: errors as JSON.
func (s *screens) flowOfJSON(w http.ResponseWriter, r *http.Request) (*flow, bool) {
	f := &flow{raw: r.FormValue("s")}
	if err := s.seal.open(purposeHandle, f.raw, s.opt.Clock.Now(), &f.h); err != nil {
		httpx.WriteJSON(w, http.StatusGone, quoteAnswer{Error: web.T(s.r.Lang("")).Get("cashier.error.session")})
		return nil, false
	}
	f.p = prefs{Lang: f.h.Lang, Theme: f.h.Theme, Source: f.h.Source}
	sess, err := s.id.Session(r.Context(), f.h.Session)
	if err != nil {
		httpx.WriteJSON(w, http.StatusGone, quoteAnswer{Error: web.T(s.r.Lang(f.p.Lang)).Get("cashier.error.session")})
		return nil, false
	}
	f.sess = sess
	if f.cust, err = s.customer(r, sess.UserID, sess.Email, f.p.Lang); err != nil {
		s.log.ErrorContext(r.Context(), "cashier: read the customer's profile", "err", err)
		httpx.WriteJSON(w, http.StatusInternalServerError, quoteAnswer{Error: web.T(s.r.Lang(f.p.Lang)).Get("common.error.generic")})
		return nil, false
	}
	return f, true
}

type reviewData struct {
	common
	Account  accountView
	Method   methodRow
	Summary  []line
	Currency string
	Amount   string
	FormID   string
	ChangeURL string
}

func (s *screens) depositReview(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, df, ok := s.readDepositForm(w, r, f)
	if !ok {
		return
	}
	s.reviewPage(w, r, f, opts, df, http.StatusOK, "")
}

func (s *screens) reviewPage(w http.ResponseWriter, r *http.Request, f *flow, opts DepositOptions, df depositForm, status int, errText string) {
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	p, msg := s.price(r, f, df, lang)
	if msg != "" {
		s.amountPage(w, r, f, opts, df, http.StatusUnprocessableEntity, msg)
		return
	}
	change := f.link(s.opt.Prefix+"/deposit/amount", "method", df.Method.ID, "currency", df.Currency, "amount", df.Amount)
	d := reviewData{common: s.common(r, f.p, f.raw, opDeposit, 3), Account: viewAccount(opts.Account, lang),
		Method:  methodRow{ID: df.Method.ID, Name: df.Method.Name(lang), Icon: icon(df.Method.Icon)},
		Summary: previewLines(p, tr, lang), Currency: df.Currency, Amount: p.Gross.Decimal(), FormID: "dep_" + newID(),
		ChangeURL: change}
	s.renderPage(w, status, "cashier_review", f.p, errText, "", change, d)
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func (s *screens) depositConfirm(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, df, ok := s.readDepositForm(w, r, f)
	if !ok {
		return
	}
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	id := r.FormValue("id")
	if len(id) < 8 || len(id) > 64 {
		s.reviewPage(w, r, f, opts, df, http.StatusBadRequest, "common.error.invalid")
		return
	}
	cur, err := money.LookupCurrency(df.Currency)
	if err != nil {
		s.amountPage(w, r, f, opts, df, http.StatusBadRequest, tr.Get("cashier.error.currency"))
		return
	}
	amount, err := parseAmount(df.Amount, cur)
	if err != nil {
		s.amountPage(w, r, f, opts, df, http.StatusBadRequest, tr.Get("cashier.error.amount", "Currency", cur.Code, "Digits", cur.Digits))
		return
	}
	req := DepositRequest{ID: id, Customer: f.cust, Login: f.h.Login, MethodID: df.Method.ID, Amount: amount, Lang: lang}
	s.startDeposit(w, r, f.p, req, func(status int, msg string) { s.reviewPage(w, r, f, opts, df, status, msg) },
		func(status int, msg string) { s.amountPage(w, r, f, opts, df, status, msg) })
}

// startDeposit starts a deposit and sends the browser to the provider's
// step or to the status page. onRetryable shows an error the customer may
// retry as is; onFix one they must fix on the form.
func (s *screens) startDeposit(w http.ResponseWriter, r *http.Request, p prefs, req DepositRequest, onRetryable, onFix func(int, string)) {
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	t, err := s.ticketFor("d", req.ID, req.Customer, req.Login, p)
	if err != nil {
		s.internal(w, r, p, "seal a deposit ticket", err)
		return
	}
	statusPath := s.opt.Prefix + "/deposit/status?" + url.Values{"t": {t}}.Encode()
	req.ReturnURL = s.public.String() + statusPath
	dep, err := s.fund.StartDeposit(r.Context(), req)
	if err != nil {
		if le, ok := payments.AsLimitError(err); ok {
			onFix(http.StatusUnprocessableEntity, limitMessage(le, req.MethodID, tr, lang))
			return
		}
		switch errs.CodeOf(err) {
		case errs.Invalid:
			onFix(http.StatusBadRequest, tr.Get("common.error.invalid"))
		case errs.Forbidden, errs.NotFound:
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
	if dep.ID != req.ID {
		// The status page must name the deposit funding made.
		if t, err = s.ticketFor("d", dep.ID, req.Customer, req.Login, p); err != nil {
			s.internal(w, r, p, "seal a deposit ticket", err)
			return
		}
		statusPath = s.opt.Prefix + "/deposit/status?" + url.Values{"t": {t}}.Encode()
	}
	s.log.InfoContext(r.Context(), "deposit started", "deposit", dep.ID, "user", req.Customer.UserID, "account", req.Login,
		"method", req.MethodID, "amount", req.Amount.String(), "status", dep.Status)
	if dep.Next.RedirectURL != "" && !finalDeposit(dep.Status) {
		http.Redirect(w, r, dep.Next.RedirectURL, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, statusPath, http.StatusSeeOther)
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

// depositStates groups funding's deposit statuses for the screens.
func finalDeposit(st string) bool {
	switch st {
	case "completed", "declined", "expired", "failed", "reversed", "processing":
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
	Method    methodRow
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

func (s *screens) renderDepositStatus(w http.ResponseWriter, r *http.Request, t ticket, dep Deposit, status int, errText string) {
	p := t.prefs()
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	raw := r.FormValue("t")
	d := statusData{Kind: "deposit", Status: dep.Status, Ticket: raw, DoneURL: s.opt.SuccessURL}
	d.common = s.common(r, p, "", opDeposit, 4)
	d.Method = methodRow{ID: dep.MethodID, Name: dep.MethodID}
	if m, ok := s.methodName(dep.MethodID, lang); ok {
		d.Method.Name = m
	}
	if !dep.Amount.IsZero() {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.you_pay"), Value: dep.Amount.Display(lang)})
	}
	if !dep.Credit.IsZero() {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.credited"), Value: dep.Credit.Display(lang), Strong: true})
	}
	d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.account"), Value: strconv.FormatInt(dep.Login, 10)})
	switch dep.Status {
	case "completed":
		d.State, d.Headline, d.Text = "success", tr.Get("cashier.deposit.completed"), tr.Get("cashier.deposit.completed_text")
	case "processing":
		d.State, d.Headline, d.Text = "resting", tr.Get("cashier.deposit.processing"), tr.Get("cashier.deposit.processing_text")
	case "paid", "crediting":
		d.State, d.Headline, d.Text = "working", tr.Get("cashier.deposit.crediting"), tr.Get("cashier.deposit.crediting_text")
	case "declined", "failed":
		d.State, d.Headline = "failed", tr.Get("cashier.deposit.failed")
		d.Text = s.failureText(dep.Failure, tr)
		d.Retry = retryable(dep)
	case "expired":
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.deposit.expired"), tr.Get("cashier.deposit.expired_text")
		d.Retry = retryable(dep)
	case "reversed":
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.deposit.reversed"), tr.Get("cashier.deposit.reversed_text")
	default: // created, awaiting_payment
		d.State, d.Headline, d.Text = "waiting", tr.Get("cashier.deposit.waiting"), tr.Get("cashier.deposit.waiting_text")
		if in := dep.Next.Instructions; in != nil {
			d.Text = tr.Get("cashier.deposit.instructions_text")
			d.Bank, d.Crypto = instructionLines(in, tr, lang)
		}
	}
	if finalDeposit(dep.Status) {
		d.Steps = s.common(r, p, "", opDeposit, 5).Steps
	} else {
		d.Refresh = strconv.Itoa(int(s.opt.RefreshEvery.Seconds()))
		d.PollURL = s.opt.Prefix + "/deposit/status.json?" + url.Values{"t": {raw}}.Encode()
	}
	if dep.Status == "completed" && s.opt.ResultDelay > 0 {
		d.RedirectURL, d.RedirectAfter = s.opt.SuccessURL, strconv.Itoa(int(s.opt.ResultDelay.Seconds()))
	}
	s.renderPage(w, status, "cashier_status", p, errText, "", "", d)
}

// retryable reports whether a failed deposit may be tried again as it is
// (PAYMENT_FAILED with retryAllowed).
func retryable(dep Deposit) bool {
	switch dep.Status {
	case "declined", "failed", "expired":
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
	if msg := tr.Get(id); msg != id {
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
		add(&crypto, "cashier.crypto.amount", in.Amount.Display(lang), true)
		add(&crypto, "cashier.crypto.address", in.Address, true)
		add(&crypto, "cashier.crypto.network", in.Network, false)
		if in.RequiredConfirmations > 0 {
			add(&crypto, "cashier.crypto.confirmations", localDigits(strconv.Itoa(in.RequiredConfirmations), lang), false)
		}
		return nil, crypto
	}
	add(&bank, "cashier.bank.amount", in.Amount.Display(lang), true)
	add(&bank, "cashier.bank.reference", in.Reference, true)
	add(&bank, "cashier.bank.holder", in.AccountHolder, false)
	add(&bank, "cashier.bank.iban", in.IBAN, false)
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
	httpx.WriteJSON(w, http.StatusOK, statusAnswer{Status: dep.Status, Final: finalDeposit(dep.Status)})
}

// depositRetry starts the same deposit again after a decline that allows
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
	cust, err := s.customer(r, t.UserID, t.Email, lang)
	if err != nil {
		s.internal(w, r, t.prefs(), "read the customer's profile", err)
		return
	}
	req := DepositRequest{ID: "dep_" + newID(), Customer: cust, Login: dep.Login, MethodID: dep.MethodID, Amount: dep.Amount, Lang: lang}
	show := func(status int, msg string) { s.renderDepositStatus(w, r, t, dep, status, msg) }
	s.startDeposit(w, r, t.prefs(), req, show, show)
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
