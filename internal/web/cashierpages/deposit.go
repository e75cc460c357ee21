package cashierpages

import (
	"html/template"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/web"
)

// accountView is the trading account box at the top of a screen.
type accountView struct {
	Login        int64
	Currency     string
	Balance      string
	Withdrawable string
}

func viewAccount(a funding.AccountView, lang string) accountView {
	v := accountView{Login: a.Login, Currency: a.Currency.Code}
	if a.Balance.Currency().Code != "" {
		v.Balance = display(a.Balance, lang)
	}
	if a.Withdrawable.Currency().Code != "" {
		v.Withdrawable = display(a.Withdrawable, lang)
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
func (s *screens) readDepositForm(w http.ResponseWriter, r *http.Request, f *flow) (funding.DepositOptions, depositForm, bool) {
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

func (s *screens) amountPage(w http.ResponseWriter, r *http.Request, f *flow, opts funding.DepositOptions, df depositForm, status int, errText string) {
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
	out := []line{{Label: tr.Get("cashier.summary.you_pay"), Value: display(p.Gross, lang)}}
	fee := tr.Get("cashier.fee.none")
	if !p.Fee.IsZero() {
		fee = display(p.Fee, lang)
		if p.PaidBy == payments.PaidByBroker {
			fee = tr.Get("cashier.fee.broker_pays", "Fee", fee)
		}
	}
	out = append(out, line{Label: tr.Get("cashier.summary.fee"), Value: fee})
	if p.FX != nil {
		out = append(out, line{Label: tr.Get("cashier.summary.rate"), Value: rateText(p.FX, lang)})
	}
	out = append(out, line{Label: tr.Get("cashier.summary.credited"), Value: display(p.Account, lang), Strong: true})
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
	if !slices.Contains(df.Method.Deposit.Currencies(), df.Currency) {
		df.Currency = defaultCurrency(df.Method.Deposit, opts.Account.Currency.Code)
	}
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
	sess, err := s.session(r, f.h.Session)
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
	Account   accountView
	Method    methodRow
	Summary   []line
	Currency  string
	Amount    string
	FormID    string
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

func (s *screens) reviewPage(w http.ResponseWriter, r *http.Request, f *flow, opts funding.DepositOptions, df depositForm, status int, errText string) {
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
		Summary: previewLines(p, tr, lang), Currency: df.Currency, Amount: p.Gross.Decimal(), FormID: formID(r),
		ChangeURL: change}
	s.renderPage(w, status, "cashier_review", f.p, errText, "", change, d)
}

// formID is the idempotency key of a confirmation form: the one the
// customer just sent when the form is shown again after a failure (so that
// confirming again cannot start a second operation), otherwise a new one.
func formID(r *http.Request) string {
	if id := r.PostFormValue("id"); validFormID(id) {
		return id
	}
	return "req_" + newID()
}

func validFormID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
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
	df, opts, ok := s.confirmForm(w, r, f)
	if !ok {
		return
	}
	// The account (with its balance from the platform) is read only when a
	// page must show it again: funding checks the account, the method and
	// the amount when it starts the deposit.
	options := func() (funding.DepositOptions, bool) {
		if opts == nil {
			o, err := s.fund.DepositOptions(r.Context(), f.cust, f.h.Login)
			if err != nil {
				s.fundingError(w, r, f, "deposit options", err, "")
				return funding.DepositOptions{}, false
			}
			opts = &o
		}
		return *opts, true
	}
	review := func(status int, msg string) {
		if o, ok := options(); ok {
			s.reviewPage(w, r, f, o, df, status, msg)
		}
	}
	amountPage := func(status int, msg string) {
		if o, ok := options(); ok {
			s.amountPage(w, r, f, o, df, status, msg)
		}
	}
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	id := r.FormValue("id")
	if !validFormID(id) {
		review(http.StatusBadRequest, "common.error.invalid")
		return
	}
	cur, err := money.LookupCurrency(df.Currency)
	if err != nil {
		amountPage(http.StatusBadRequest, tr.Get("cashier.error.currency"))
		return
	}
	amount, err := parseAmount(df.Amount, cur)
	if err != nil {
		amountPage(http.StatusBadRequest, tr.Get("cashier.error.amount", "Currency", cur.Code, "Digits", cur.Digits))
		return
	}
	req := funding.DepositRequest{ID: id, Customer: f.cust, Login: f.h.Login, MethodID: df.Method.ID, Amount: amount, Lang: lang}
	// A refusal that is about the account (no longer the customer's) is
	// explained as the other steps explain it.
	refused := func() bool {
		_, ok := options()
		return !ok
	}
	s.startDeposit(w, r, f.p, req, review, amountPage, refused)
}

// confirmForm reads the confirmation form: the method among those the
// customer may use, and the typed currency and amount. With a method
// catalog (Deps.Methods) it needs no read of the account unless the
// currency must be chosen for the customer; otherwise it reads the deposit
// options as the other steps do. opts is the options when they were read.
// It renders the error itself and reports false when the form cannot be
// used.
func (s *screens) confirmForm(w http.ResponseWriter, r *http.Request, f *flow) (df depositForm, opts *funding.DepositOptions, ok bool) {
	if s.methods == nil {
		o, df, ok := s.readDepositForm(w, r, f)
		return df, &o, ok
	}
	id := r.FormValue("method")
	avail := s.methods.Available(payments.Filter{Direction: payments.Deposit, Country: f.cust.Country, KYCLevel: f.cust.KYCLevel})
	i := slices.IndexFunc(avail, func(m payments.Method) bool { return m.ID == id && m.Deposit != nil })
	if i < 0 {
		s.problem(w, r, f.p, http.StatusNotFound, "cashier.error.method", f.link(s.opt.DepositPath))
		return depositForm{}, nil, false
	}
	m := avail[i]
	df = depositForm{Method: m, Currency: r.FormValue("currency"), Amount: r.FormValue("amount")}
	if len(df.Amount) > 40 {
		df.Amount = df.Amount[:40]
	}
	if slices.Contains(m.Deposit.Currencies(), df.Currency) {
		return df, nil, true
	}
	o, err := s.fund.DepositOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		s.fundingError(w, r, f, "deposit options", err, "")
		return depositForm{}, nil, false
	}
	df.Currency = defaultCurrency(m.Deposit, o.Account.Currency.Code)
	return df, &o, true
}
