package cashierpages

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/payments"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/web"
)

// Details keys a withdrawal request carries, by method kind.
const (
	fieldHolder = funding.DetailHolderName
	fieldIBAN   = funding.DetailIBAN
	fieldBIC    = funding.DetailBIC
	fieldWallet = funding.DetailWalletID
	fieldCard   = funding.DetailCard
)

// fieldSpec is one method-specific input of the withdrawal form.
type fieldSpec struct {
	Name         string
	Label        string // message id
	Hint         string // message id
	Bad          string // message id of the error
	Check        string // the script's live check: iban, bic, wallet, name
	Required     bool
	Autocomplete string
	InputMode    string
}

// fieldsFor returns the inputs a method kind needs.
func fieldsFor(kind psp.MethodKind) []fieldSpec {
	switch kind {
	case psp.BankTransfer:
		return []fieldSpec{
			{Name: fieldHolder, Label: "cashier.field.holder", Hint: "cashier.field.holder_hint", Bad: "cashier.field.holder_error", Check: "name", Required: true, Autocomplete: "name"},
			{Name: fieldIBAN, Label: "cashier.field.iban", Hint: "cashier.field.iban_hint", Bad: "cashier.field.iban_error", Check: "iban", Required: true, Autocomplete: "off"},
			{Name: fieldBIC, Label: "cashier.field.bic", Hint: "cashier.field.bic_hint", Bad: "cashier.field.bic_error", Check: "bic", Autocomplete: "off"},
		}
	case psp.EWallet:
		return []fieldSpec{{Name: fieldWallet, Label: "cashier.field.wallet", Hint: "cashier.field.wallet_hint", Bad: "cashier.field.wallet_error", Check: "wallet", Required: true, Autocomplete: "email", InputMode: "email"}}
	}
	return nil
}

var (
	bicRe    = regexp.MustCompile(`^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$`)
	walletRe = regexp.MustCompile(`^[^\s@]{1,64}(@[^\s@]{1,100})?$`)
)

// checkField validates and normalises one input; it returns the message id
// of the problem, or "".
func checkField(name, v string) (string, string) {
	v = strings.TrimSpace(v)
	switch name {
	case fieldHolder:
		if n := len([]rune(v)); n < 2 || n > 100 || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return v, "cashier.field.holder_error"
		}
	case fieldIBAN:
		v = psp.NormalizeIBAN(v)
		if !psp.ValidIBAN(v) {
			return v, "cashier.field.iban_error"
		}
	case fieldBIC:
		v = strings.ToUpper(strings.ReplaceAll(v, " ", ""))
		if v != "" && !bicRe.MatchString(v) {
			return v, "cashier.field.bic_error"
		}
	case fieldWallet:
		if len(v) < 3 || !walletRe.MatchString(v) {
			return v, "cashier.field.wallet_error"
		}
	}
	return v, ""
}

func (s *screens) withdrawEntry(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("token") {
		s.open(w, r, opWithdraw)
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
		s.chooseAccountPage(w, r, f, opWithdraw)
		return
	}
	opts, err := s.fund.WithdrawalOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		s.fundingError(w, r, f, "withdrawal options", err, "")
		return
	}
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	d := methodsData{common: s.common(r, f.p, f.raw, opWithdraw, 1), Account: viewAccount(opts.Account, lang)}
	for _, m := range opts.Methods {
		rules := m.Rules(payments.Withdrawal)
		if rules == nil {
			continue
		}
		cur := defaultCurrency(rules, opts.Account.Currency.Code)
		d.Methods = append(d.Methods, methodRow{ID: m.ID, Name: m.Name(lang), Icon: icon(m.Icon),
			Limits: limitText(rules.Limits[cur], tr, lang), Fee: feeText(rules.Fee, cur, tr, lang),
			URL: f.link(s.opt.Prefix+"/withdraw/details", "method", m.ID)})
	}
	switch {
	case len(d.Methods) == 0:
		d.Empty = tr.Get("cashier.withdraw.no_methods")
	case opts.Account.Withdrawable.Sign() <= 0:
		d.Empty = tr.Get("cashier.withdraw.nothing")
		d.Methods = nil
	}
	s.render(w, http.StatusOK, "cashier_methods", f.p, "", "", d)
}

// withdrawForm is the details step's input.
type withdrawForm struct {
	Method payments.Method
	Amount string
	Values map[string]string
	Errors map[string]string // field → message id
}

func (s *screens) readWithdrawForm(w http.ResponseWriter, r *http.Request, f *flow) (funding.WithdrawalOptions, withdrawForm, bool) {
	opts, err := s.fund.WithdrawalOptions(r.Context(), f.cust, f.h.Login)
	if err != nil {
		s.fundingError(w, r, f, "withdrawal options", err, "")
		return opts, withdrawForm{}, false
	}
	id := r.FormValue("method")
	i := slices.IndexFunc(opts.Methods, func(m payments.Method) bool { return m.ID == id && m.Withdrawal != nil })
	if i < 0 {
		s.problem(w, r, f.p, http.StatusNotFound, "cashier.error.method", f.link(s.opt.WithdrawPath))
		return opts, withdrawForm{}, false
	}
	wf := withdrawForm{Method: opts.Methods[i], Amount: r.FormValue("amount"), Values: map[string]string{}, Errors: map[string]string{}}
	if len(wf.Amount) > 40 {
		wf.Amount = wf.Amount[:40]
	}
	for _, fs := range fieldsFor(wf.Method.Kind) {
		v := r.FormValue(fs.Name)
		if len(v) > 200 {
			v = v[:200]
		}
		wf.Values[fs.Name] = v
	}
	if wf.Method.Kind == psp.Card && len(opts.Cards) > 0 {
		wf.Values[fieldCard] = opts.Cards[0].ID
		if c := r.FormValue(fieldCard); slices.ContainsFunc(opts.Cards, func(sc funding.SavedCard) bool { return sc.ID == c }) {
			wf.Values[fieldCard] = c
		}
	}
	return opts, wf, true
}

// check validates the form on the server: the amount in the account's
// currency, within the method's limits and the withdrawable amount, and
// each field. It returns the amount and the form-level message, if any.
func (wf *withdrawForm) check(opts funding.WithdrawalOptions, tr web.Translator, lang string) (money.Amount, string) {
	for _, fs := range fieldsFor(wf.Method.Kind) {
		v, problem := checkField(fs.Name, wf.Values[fs.Name])
		wf.Values[fs.Name] = v
		if v == "" && !fs.Required {
			continue
		}
		if problem != "" {
			wf.Errors[fs.Name] = problem
		}
	}
	if wf.Method.Kind == psp.Card && len(opts.Cards) == 0 {
		return money.Amount{}, tr.Get("cashier.withdraw.no_card")
	}
	cur := opts.Account.Currency
	amount, err := parseAmount(wf.Amount, cur)
	if err != nil {
		return amount, tr.Get("cashier.error.amount", "Currency", cur.Code, "Digits", cur.Digits)
	}
	if l, ok := wf.Method.Withdrawal.Limits[cur.Code]; ok {
		if c, _ := amount.Cmp(l.Min); !l.Min.IsZero() && c < 0 {
			return amount, tr.Get("cashier.error.below_min", "Method", wf.Method.Name(lang), "Limit", display(l.Min, lang))
		}
		if c, _ := amount.Cmp(l.Max); !l.Max.IsZero() && c > 0 {
			return amount, tr.Get("cashier.error.above_max", "Method", wf.Method.Name(lang), "Limit", display(l.Max, lang))
		}
	}
	if c, err := amount.Cmp(opts.Account.Withdrawable); err == nil && c > 0 {
		return amount, tr.Get("cashier.error.insufficient", "Available", display(opts.Account.Withdrawable, lang), "Requested", display(amount, lang))
	}
	if len(wf.Errors) > 0 {
		return amount, tr.Get("common.error.invalid")
	}
	return amount, ""
}

type fieldView struct {
	fieldSpec
	Label   string
	Hint    string
	Value   string
	Error   string // the server's finding
	BadText string // what the script says when the check fails
}

type detailsData struct {
	common
	Account  accountView
	Method   methodRow
	Amount   string
	Currency string
	Limits   string
	Fee      string
	Fields   []fieldView
	CardNote bool
	Cards    []cardView
	NoCard   bool
}

// cardView is a saved card to pay a card withdrawal out to.
type cardView struct {
	ID, Label string
	Checked   bool
}

func cardLabel(c funding.SavedCard) string {
	return strings.TrimSpace(c.Brand + " •••• " + c.Last4)
}

func (s *screens) withdrawDetails(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, wf, ok := s.readWithdrawForm(w, r, f)
	if !ok {
		return
	}
	s.detailsPage(w, r, f, opts, wf, http.StatusOK, "")
}

func (s *screens) detailsPage(w http.ResponseWriter, r *http.Request, f *flow, opts funding.WithdrawalOptions, wf withdrawForm, status int, errText string) {
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	rules := wf.Method.Withdrawal
	cur := opts.Account.Currency.Code
	d := detailsData{common: s.common(r, f.p, f.raw, opWithdraw, 2), Account: viewAccount(opts.Account, lang), Amount: wf.Amount, Currency: cur,
		Method: methodRow{ID: wf.Method.ID, Name: wf.Method.Name(lang), Icon: icon(wf.Method.Icon)},
		Limits: limitText(rules.Limits[cur], tr, lang), Fee: feeText(rules.Fee, cur, tr, lang), CardNote: wf.Method.Kind == psp.Card}
	for _, fs := range fieldsFor(wf.Method.Kind) {
		fv := fieldView{fieldSpec: fs, Label: tr.Get(fs.Label), Hint: tr.Get(fs.Hint), Value: wf.Values[fs.Name], BadText: tr.Get(fs.Bad)}
		if e := wf.Errors[fs.Name]; e != "" {
			fv.Error = tr.Get(e)
		}
		d.Fields = append(d.Fields, fv)
	}
	if d.CardNote {
		for _, c := range opts.Cards {
			d.Cards = append(d.Cards, cardView{ID: c.ID, Label: cardLabel(c), Checked: c.ID == wf.Values[fieldCard]})
		}
		d.NoCard = len(d.Cards) == 0
	}
	s.renderPage(w, status, "cashier_details", f.p, errText, "", f.link(s.opt.WithdrawPath), d)
}

type wReviewData struct {
	common
	Account accountView
	Method  methodRow
	Summary []line
	Amount  string
	Hidden  []field
	FormID  string
}

// field is a hidden form field.
type field struct{ Name, Value string }

func (s *screens) withdrawReview(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, wf, ok := s.readWithdrawForm(w, r, f)
	if !ok {
		return
	}
	s.wReviewPage(w, r, f, opts, wf, http.StatusOK, "")
}

func (s *screens) wReviewPage(w http.ResponseWriter, r *http.Request, f *flow, opts funding.WithdrawalOptions, wf withdrawForm, status int, errText string) {
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	amount, msg := wf.check(opts, tr, lang)
	if msg != "" {
		code := http.StatusUnprocessableEntity
		if len(wf.Errors) > 0 {
			code = http.StatusBadRequest
		}
		s.detailsPage(w, r, f, opts, wf, code, msg)
		return
	}
	d := wReviewData{common: s.common(r, f.p, f.raw, opWithdraw, 3), Account: viewAccount(opts.Account, lang), Amount: amount.Decimal(),
		Method: methodRow{ID: wf.Method.ID, Name: wf.Method.Name(lang), Icon: icon(wf.Method.Icon)}, FormID: formID(r)}
	d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.account"), Value: strconv.FormatInt(opts.Account.Login, 10)},
		line{Label: tr.Get("cashier.summary.method"), Value: d.Method.Name},
		line{Label: tr.Get("cashier.summary.withdraw_amount"), Value: display(amount, lang), Strong: true},
		line{Label: tr.Get("cashier.summary.fee"), Value: feeText(wf.Method.Withdrawal.Fee, opts.Account.Currency.Code, tr, lang)})
	if id := wf.Values[fieldCard]; id != "" {
		d.Hidden = append(d.Hidden, field{fieldCard, id})
		for _, c := range opts.Cards {
			if c.ID == id {
				d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.destination"), Value: cardLabel(c)})
			}
		}
	}
	for _, fs := range fieldsFor(wf.Method.Kind) {
		v := wf.Values[fs.Name]
		d.Hidden = append(d.Hidden, field{fs.Name, v})
		if v != "" {
			if fs.Name == fieldIBAN {
				v = groupIBAN(v)
			}
			d.Summary = append(d.Summary, line{Label: tr.Get(fs.Label), Value: v})
		}
	}
	s.renderPage(w, status, "cashier_wreview", f.p, errText, "", "", d)
}

// groupIBAN writes an IBAN in groups of four for reading.
func groupIBAN(iban string) string {
	var b strings.Builder
	for i, r := range iban {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *screens) withdrawConfirm(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	opts, wf, ok := s.readWithdrawForm(w, r, f)
	if !ok {
		return
	}
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	amount, msg := wf.check(opts, tr, lang)
	if msg != "" {
		s.detailsPage(w, r, f, opts, wf, http.StatusUnprocessableEntity, msg)
		return
	}
	id := r.FormValue("id")
	if !validFormID(id) {
		s.wReviewPage(w, r, f, opts, wf, http.StatusBadRequest, "common.error.invalid")
		return
	}
	details := map[string]string{}
	for k, v := range wf.Values {
		if v != "" {
			details[k] = v
		}
	}
	wd, err := s.fund.RequestWithdrawal(r.Context(), funding.WithdrawalRequest{ID: id, Customer: f.cust, Login: f.h.Login,
		MethodID: wf.Method.ID, Amount: amount, Details: details})
	if err != nil && wd.ID != "" && errs.Is(err, errs.Unavailable) {
		// Recorded, but the code e-mail failed: the status page offers the
		// code form; confirming again with the same id sends it again.
		s.log.WarnContext(r.Context(), "cashier: withdrawal code not sent", "withdrawal", wd.ID, "err", err)
		err = nil
	}
	if err != nil {
		s.withdrawError(w, r, f, opts, wf, amount, err)
		return
	}
	s.log.InfoContext(r.Context(), "withdrawal requested", "withdrawal", wd.ID, "user", f.cust.UserID, "account", f.h.Login,
		"method", wf.Method.ID, "amount", amount.String(), "status", wd.Status)
	t, err := s.ticketFor("w", wd.ID, f.cust, f.h.Login, f.p)
	if err != nil {
		s.internal(w, r, f.p, "seal a withdrawal ticket", err)
		return
	}
	http.Redirect(w, r, s.opt.Prefix+"/withdraw/status?"+url.Values{"t": {t}}.Encode(), http.StatusSeeOther)
}

// withdrawError shows why a withdrawal was not accepted, on the form when
// the customer can fix it.
func (s *screens) withdrawError(w http.ResponseWriter, r *http.Request, f *flow, opts funding.WithdrawalOptions, wf withdrawForm, amount money.Amount, err error) {
	lang := s.r.Lang(f.p.Lang)
	tr := web.T(lang)
	if body, ok := funding.AsInsufficient(err); ok {
		s.detailsPage(w, r, f, opts, wf, http.StatusUnprocessableEntity, insufficientText(body, opts.Account.Currency, amount, tr, lang))
		return
	}
	if le, ok := payments.AsLimitError(err); ok {
		s.detailsPage(w, r, f, opts, wf, http.StatusUnprocessableEntity, limitMessage(le, wf.Method.Name(lang), tr, lang))
		return
	}
	var fe *funding.FieldError
	if errors.As(err, &fe) {
		if spec, ok := specOf(wf.Method.Kind, fe.Field); ok {
			wf.Errors[fe.Field] = spec.Bad
		} else if fe.Field == fieldCard {
			wf.Errors[fieldCard] = "cashier.withdraw.card_error"
		}
		s.detailsPage(w, r, f, opts, wf, http.StatusBadRequest, tr.Get("common.error.invalid"))
		return
	}
	switch errs.CodeOf(err) {
	case errs.Invalid:
		s.detailsPage(w, r, f, opts, wf, http.StatusBadRequest, tr.Get("common.error.invalid"))
	case errs.Forbidden, errs.NotFound:
		s.problem(w, r, f.p, http.StatusForbidden, "cashier.error.not_allowed", f.link(s.opt.WithdrawPath))
	case errs.Conflict:
		s.problem(w, r, f.p, http.StatusConflict, "cashier.error.form_used", f.link(s.opt.WithdrawPath))
	case errs.Unavailable:
		s.log.WarnContext(r.Context(), "cashier: withdrawal not requested", "err", err)
		s.wReviewPage(w, r, f, opts, wf, http.StatusServiceUnavailable, tr.Get("common.error.unavailable"))
	default:
		s.log.ErrorContext(r.Context(), "cashier: withdrawal not requested", "err", err)
		s.wReviewPage(w, r, f, opts, wf, http.StatusInternalServerError, tr.Get("common.error.generic"))
	}
}

func specOf(kind psp.MethodKind, name string) (fieldSpec, bool) {
	for _, fs := range fieldsFor(kind) {
		if fs.Name == name {
			return fs, true
		}
	}
	return fieldSpec{}, false
}

// insufficientText words an INSUFFICIENT_FUNDS refusal with its amounts.
func insufficientText(b *payments.ErrorBody, cur money.Currency, requested money.Amount, tr web.Translator, lang string) string {
	avail := b.AvailableBalance.String()
	if c, err := money.LookupCurrency(b.Currency); err == nil {
		cur = c
	}
	if a, err := money.ParseNumber(b.AvailableBalance, cur); err == nil {
		avail = display(a, lang)
	}
	if q, err := money.ParseNumber(b.RequestedAmount, cur); err == nil {
		requested = q
	}
	return tr.Get("cashier.error.insufficient", "Available", avail, "Requested", display(requested, lang))
}

// --- status ---

// settledWithdrawal reports whether a withdrawal's page can stop asking
// for news.
func settledWithdrawal(st funding.WithdrawalStatus) bool {
	switch st {
	case funding.WithdrawalCompleted, funding.WithdrawalReturned, funding.WithdrawalAwaiting2FA:
		return true
	}
	return false
}

func (s *screens) withdrawStatus(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticketOf(w, r, "w")
	if !ok {
		return
	}
	wd, err := s.fund.Withdrawal(r.Context(), t.UserID, t.ID)
	if err != nil {
		s.statusError(w, r, t, err)
		return
	}
	s.renderWithdrawStatus(w, r, t, wd, http.StatusOK, "", "")
}

func (s *screens) renderWithdrawStatus(w http.ResponseWriter, r *http.Request, t ticket, wd funding.Withdrawal, status int, errText, codeErr string) {
	p := t.prefs()
	lang := s.r.Lang(p.Lang)
	tr := web.T(lang)
	raw := r.FormValue("t")
	d := statusData{Kind: "withdraw", Status: string(wd.Status), Ticket: raw, DoneURL: s.opt.SuccessURL, CodeError: codeErr}
	d.common = s.common(r, p, "", opWithdraw, 4)
	method := wd.MethodID
	if m, ok := s.methodName(wd.MethodID, lang); ok {
		method = m
	}
	d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.account"), Value: strconv.FormatInt(wd.Login, 10)},
		line{Label: tr.Get("cashier.summary.method"), Value: method})
	if wd.Destination != "" {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.destination"), Value: wd.Destination})
	}
	if !wd.Amount.IsZero() {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.withdraw_amount"), Value: display(wd.Amount, lang), Strong: true})
	}
	if !wd.Net.IsZero() && !wd.Net.Equal(wd.Amount) {
		d.Summary = append(d.Summary, line{Label: tr.Get("cashier.summary.payout"), Value: display(wd.Net, lang)})
	}
	switch wd.Status {
	case funding.WithdrawalAwaiting2FA:
		d.State, d.Headline, d.Text, d.Code = "waiting", tr.Get("cashier.withdraw.code"), tr.Get("cashier.withdraw.code_text"), true
		if c := wd.Code; c != nil {
			d.CodeNote = tr.Get("cashier.withdraw.code_attempts", "Attempts", localDigits(strconv.Itoa(c.AttemptsLeft), lang))
		}
	case funding.WithdrawalAwaitingApproval:
		d.State, d.Headline, d.Text = "resting", tr.Get("cashier.withdraw.approval"), tr.Get("cashier.withdraw.approval_text")
	case funding.WithdrawalApproved, funding.WithdrawalPayoutSent:
		d.State, d.Headline, d.Text = "working", tr.Get("cashier.withdraw.paying"), tr.Get("cashier.withdraw.paying_text")
	case funding.WithdrawalProcessing:
		d.State, d.Headline, d.Text = "resting", tr.Get("cashier.withdraw.processing"), tr.Get("cashier.withdraw.processing_text")
	case funding.WithdrawalCompleted:
		d.State, d.Headline, d.Text = "success", tr.Get("cashier.withdraw.completed"), tr.Get("cashier.withdraw.completed_text")
	case funding.WithdrawalRejected:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.withdraw.rejected"), tr.Get("cashier.withdraw.returning_text")
	case funding.WithdrawalFailed:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.withdraw.failed"), tr.Get("cashier.withdraw.returning_text")
		if wd.ReturnPushID == "" {
			d.Text = tr.Get("cashier.withdraw.not_taken_text")
		}
	case funding.WithdrawalReturned:
		d.State, d.Headline, d.Text = "failed", tr.Get("cashier.withdraw.failed"), tr.Get("cashier.withdraw.returned_text")
		if wd.DecidedBy != "" {
			d.Headline = tr.Get("cashier.withdraw.rejected")
		}
	default: // requested, debiting, held
		d.State, d.Headline, d.Text = "working", tr.Get("cashier.withdraw.requested"), tr.Get("cashier.withdraw.requested_text")
	}
	if !settledWithdrawal(wd.Status) {
		every := s.opt.RefreshEvery
		if d.State == "resting" {
			every *= 5
		}
		d.Refresh = strconv.Itoa(int(every.Seconds()))
		d.PollURL = s.opt.Prefix + "/withdraw/status.json?" + url.Values{"t": {raw}}.Encode()
	}
	if wd.Status == funding.WithdrawalCompleted && s.opt.ResultDelay > 0 {
		d.RedirectURL, d.RedirectAfter = s.opt.SuccessURL, strconv.Itoa(int(s.opt.ResultDelay.Seconds()))
	}
	s.renderPage(w, status, "cashier_status", p, errText, "", "", d)
}

func (s *screens) withdrawStatusJSON(w http.ResponseWriter, r *http.Request) {
	var t ticket
	if err := s.seal.open(purposeTicket, r.FormValue("t"), s.opt.Clock.Now(), &t); err != nil || t.Kind != "w" {
		httpx.WriteJSON(w, http.StatusGone, statusAnswer{Status: "unknown", Final: true})
		return
	}
	wd, err := s.fund.Withdrawal(r.Context(), t.UserID, t.ID)
	if err != nil {
		httpx.WriteJSON(w, httpx.StatusOf(err), statusAnswer{Status: "unknown"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, statusAnswer{Status: string(wd.Status), Final: settledWithdrawal(wd.Status)})
}

// withdrawCode takes the e-mailed code of a withdrawal.
func (s *screens) withdrawCode(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticketOf(w, r, "w")
	if !ok {
		return
	}
	code := strings.TrimSpace(r.FormValue("code"))
	wd, err := s.fund.ConfirmWithdrawal(r.Context(), t.UserID, t.ID, code)
	if err != nil {
		cur, gerr := s.fund.Withdrawal(r.Context(), t.UserID, t.ID)
		if gerr != nil {
			s.statusError(w, r, t, gerr)
			return
		}
		tr := web.T(s.r.Lang(t.Lang))
		switch errs.CodeOf(err) {
		case errs.Invalid:
			s.renderWithdrawStatus(w, r, t, cur, http.StatusUnprocessableEntity, "", tr.Get("cashier.withdraw.code_wrong"))
		case errs.RateLimited:
			s.renderWithdrawStatus(w, r, t, cur, http.StatusTooManyRequests, "cashier.withdraw.code_used_up", "")
		case errs.Expired:
			s.renderWithdrawStatus(w, r, t, cur, http.StatusGone, "cashier.withdraw.code_expired", "")
		case errs.Conflict:
			s.renderWithdrawStatus(w, r, t, cur, http.StatusConflict, "", "")
		case errs.NotFound:
			s.statusError(w, r, t, err)
		default:
			s.log.ErrorContext(r.Context(), "cashier: withdrawal code not checked", "err", err)
			s.renderWithdrawStatus(w, r, t, cur, http.StatusInternalServerError, "common.error.generic", "")
		}
		return
	}
	s.log.InfoContext(r.Context(), "withdrawal confirmed", "withdrawal", wd.ID, "user", t.UserID, "status", wd.Status)
	http.Redirect(w, r, s.opt.Prefix+"/withdraw/status?"+url.Values{"t": {r.FormValue("t")}}.Encode(), http.StatusSeeOther)
}
