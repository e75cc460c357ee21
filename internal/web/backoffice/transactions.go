package backoffice

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// Statuses are the deposit and withdrawal statuses the search offers.
var Statuses = []string{
	"created", "awaiting_payment", "paid", "crediting", "completed", "declined", "expired", "failed", "reversed",
	"requested", "awaiting_2fa", "debiting", "held", "awaiting_approval", "approved", "payout_sent", "rejected", "returned",
}

var decimalRe = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,18})?$`)

// ParseTxFilter reads a transaction search from query parameters: q (an
// e-mail address, a user id, or a transaction id, which is returned as
// txID for the caller to open), user, login, kind, status, method, from
// and to (dates, YYYY-MM-DD, both included), currency, min and max (exact
// decimals in currency), cursor. It returns an errs.Invalid error naming
// the first bad parameter.
func ParseTxFilter(q url.Values) (f TxFilter, txID string, err error) {
	const op = "backoffice.ParseTxFilter"
	f = TxFilter{UserID: strings.TrimSpace(q.Get("user")), Kind: q.Get("kind"), MethodID: strings.TrimSpace(q.Get("method")),
		Currency: strings.ToUpper(strings.TrimSpace(q.Get("currency"))), Cursor: q.Get("cursor")}
	switch v := strings.TrimSpace(q.Get("q")); {
	case v == "":
	case strings.Contains(v, "@"):
		f.Email = v
	case strings.HasPrefix(v, "dep_") || strings.HasPrefix(v, "wd_"):
		txID = v
	default:
		if f.UserID != "" && f.UserID != v {
			return TxFilter{}, "", errs.E(errs.Invalid, op, "search for one user at a time")
		}
		f.UserID = v
	}
	if v := strings.TrimSpace(q.Get("login")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return TxFilter{}, "", errs.E(errs.Invalid, op, "the trading account must be a login number")
		}
		f.Login = n
	}
	switch f.Kind {
	case "", "deposit", "withdrawal":
	default:
		return TxFilter{}, "", errs.E(errs.Invalid, op, "the kind must be deposit or withdrawal")
	}
	if v := q.Get("status"); v != "" {
		if !contains(Statuses, v) {
			return TxFilter{}, "", errs.E(errs.Invalid, op, "unknown status")
		}
		f.Status = []string{v}
	}
	for _, d := range []struct {
		name string
		into *time.Time
		end  bool
	}{{"from", &f.From, false}, {"to", &f.To, true}} {
		v := strings.TrimSpace(q.Get(d.name))
		if v == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return TxFilter{}, "", errs.Ef(errs.Invalid, op, "the %s date must be written YYYY-MM-DD", d.name)
		}
		if d.end {
			t = t.AddDate(0, 0, 1)
		}
		*d.into = t
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return TxFilter{}, "", errs.E(errs.Invalid, op, "the from date must not be after the to date")
	}
	var cur money.Currency
	if f.Currency != "" {
		if cur, err = money.LookupCurrency(f.Currency); err != nil {
			return TxFilter{}, "", errs.Ef(errs.Invalid, op, "%q is not a currency code", f.Currency)
		}
	}
	for _, a := range []struct {
		name, param string
		into        *money.Amount
	}{{"minimum amount", "min", &f.MinAmount}, {"maximum amount", "max", &f.MaxAmount}} {
		v := strings.TrimSpace(q.Get(a.param))
		if v == "" {
			continue
		}
		if f.Currency == "" {
			return TxFilter{}, "", errs.E(errs.Invalid, op, "choose the currency of the amount range")
		}
		amt, err := money.Parse(v, cur)
		if err != nil || amt.IsNegative() || !decimalRe.MatchString(v) {
			return TxFilter{}, "", errs.Ef(errs.Invalid, op, "the %s must be a plain decimal in %s such as 1500.00", a.name, cur.Code)
		}
		*a.into = amt
	}
	if !f.MinAmount.IsZero() && !f.MaxAmount.IsZero() && f.MinAmount.Minor() > f.MaxAmount.Minor() {
		return TxFilter{}, "", errs.E(errs.Invalid, op, "the minimum amount is above the maximum")
	}
	if len(f.Cursor) > 500 {
		return TxFilter{}, "", errs.E(errs.Invalid, op, "bad page cursor")
	}
	return f, txID, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// txRow is a transaction as a row of a list.
type txRow struct {
	ID      string
	URL     string
	Kind    string
	User    string
	UserURL string
	Login   string
	Method  string
	Status  string
	Amount  string
	Credit  string
	Flag    string
	Created string
}

func (s *server) txRow(c *call, t TxRow) txRow {
	row := txRow{ID: t.ID, URL: s.opt.Prefix + "/transactions/" + pathEscape(t.ID), Kind: t.Kind, User: t.Email,
		Login: strconv.FormatInt(t.Login, 10), Method: t.MethodID, Status: words(t.State), Amount: amount(t.Amount), Credit: amount(t.Credit), Flag: words(t.Flag),
		Created: when(t.CreatedAt)}
	if row.User == "" {
		row.User = t.UserID
	}
	if t.Login == 0 {
		row.Login = ""
	}
	if s.d.Users != nil && t.UserID != "" && c.can(PermUsersView) {
		row.UserURL = s.opt.Prefix + "/users/" + pathEscape(t.UserID)
	}
	return row
}

type txSearchData struct {
	chrome
	Form      url.Values
	Statuses  []string
	Rows      []txRow
	Searched  bool
	NextURL   string
	FirstURL  string
	CSVURL    string
	CanExport bool
}

// F is a form field's value as the member typed it.
func (d txSearchData) F(name string) string { return d.Form.Get(name) }

// searchParams are the query parameters of the search form.
var searchParams = []string{"q", "user", "login", "kind", "status", "method", "from", "to", "currency", "min", "max"}

func formValues(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range searchParams {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

func (s *server) transactions(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	form := formValues(q)
	d := txSearchData{chrome: s.chrome(c, "transactions", ""), Form: form, Statuses: Statuses, CanExport: c.can(PermExport)}
	f, txID, err := ParseTxFilter(q)
	if err != nil {
		s.render(w, http.StatusBadRequest, "bo_transactions", errs.MessageOf(err), "", d)
		return
	}
	if txID != "" {
		redirect(w, r, s.opt.Prefix+"/transactions/"+pathEscape(txID))
		return
	}
	f.Limit = s.opt.PageSize
	page, err := s.d.Reports.Search(r.Context(), f)
	if err != nil {
		if status, msg := s.userError(r, "search", err); status < 500 {
			s.render(w, status, "bo_transactions", msg, "", d)
			return
		}
		s.failed(w, r, c, "search", err)
		return
	}
	d.Searched = true
	for _, t := range page.Rows {
		d.Rows = append(d.Rows, s.txRow(c, t))
	}
	base := s.opt.Prefix + "/transactions"
	link := func(cursor string) string {
		v := url.Values{}
		for k, vs := range form {
			v[k] = vs
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if page.Next != "" {
		d.NextURL = link(page.Next)
	}
	if f.Cursor != "" {
		d.FirstURL = link("")
	}
	d.CSVURL = base + ".csv"
	if len(form) > 0 {
		d.CSVURL += "?" + form.Encode()
	}
	s.render(w, http.StatusOK, "bo_transactions", "", "", d)
}

// lazyWriter sends the CSV headers with the first byte, so that an error
// before any row can still be answered with an error page.
type lazyWriter struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		h := l.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+l.name+`"`)
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// transactionsCSV streams every match of the search as CSV.
func (s *server) transactionsCSV(w http.ResponseWriter, r *http.Request, c *call) {
	f, txID, err := ParseTxFilter(r.URL.Query())
	if err != nil {
		s.problem(w, c, http.StatusBadRequest, "That did not work", errs.MessageOf(err))
		return
	}
	if txID != "" {
		s.problem(w, c, http.StatusBadRequest, "That did not work", "Export searches by user, account or the other fields, not one transaction id.")
		return
	}
	f.Cursor, f.Limit = "", 0
	lw := &lazyWriter{w: w, name: "transactions-" + s.opt.Clock.Now().UTC().Format("20060102-1504") + ".csv"}
	if err := s.d.Reports.WriteCSV(r.Context(), lw, f); err != nil {
		if !lw.started {
			s.failed(w, r, c, "export", err)
			return
		}
		// The rows already sent cannot be taken back: cut the connection so
		// that the download is seen to be incomplete.
		s.log.ErrorContext(r.Context(), "backoffice: export broke off", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !lw.started {
		_, _ = lw.Write(nil)
	}
}

type timelineRow struct {
	At     string
	Source string
	Title  string
	Detail string
	Actor  string
}

type txDetailData struct {
	chrome
	txRow
	PaymentID  string
	PaymentURL string
	Provider   string
	Fee        string
	Pushes     []pushLink
	HoldRule   string
	HoldNote   string
	Updated    string
	Timeline   []timelineRow
}

type pushLink struct {
	ID  string
	URL string
}

func (s *server) transaction(w http.ResponseWriter, r *http.Request, c *call) {
	t, err := s.d.Reports.Timeline(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failed(w, r, c, "transaction", err)
		return
	}
	d := txDetailData{chrome: s.chrome(c, "transactions", ""), txRow: s.txRow(c, t.Row), PaymentID: t.PaymentID,
		Provider: t.Row.Provider, Fee: amount(t.Row.Fee), Updated: when(t.Row.UpdatedAt)}
	if d.Fee != "" && t.Row.Fee.IsZero() {
		d.Fee = ""
	}
	if s.d.Payments != nil && t.PaymentID != "" {
		d.PaymentURL = s.opt.Prefix + "/queues/payments/" + pathEscape(t.PaymentID)
	}
	for _, id := range t.PushIDs {
		pl := pushLink{ID: id}
		if s.d.Pushes != nil {
			pl.URL = s.opt.Prefix + "/queues/pushes/" + pathEscape(id)
		}
		d.Pushes = append(d.Pushes, pl)
	}
	if s.d.Compliance != nil {
		h, err := s.d.Compliance.Hold(r.Context(), t.Row.ID)
		switch {
		case err == nil:
			d.HoldRule, d.HoldNote = words(h.Rule), h.Explanation
		case !errs.Is(err, errs.NotFound):
			s.failed(w, r, c, "hold", err)
			return
		}
	}
	names := s.names(r.Context())
	for _, e := range t.Timeline {
		d.Timeline = append(d.Timeline, timelineRow{At: whenSec(e.At), Source: e.Source, Title: e.What, Detail: e.Detail, Actor: who(names, e.Actor)})
	}
	s.render(w, http.StatusOK, "bo_transaction", "", "", d)
}
