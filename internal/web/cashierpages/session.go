package cashierpages

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/identity"
	"github.com/opencashier/cashier/internal/web"
)

// prefs are the screen's language, theme and source (spec §8.2).
type prefs struct {
	Lang, Theme, Source string
}

// prefsOf reads prefs from the query of a first request.
func prefsOf(r *http.Request) prefs {
	get := func(k string) string {
		v := strings.TrimSpace(r.URL.Query().Get(k))
		if len(v) > 40 {
			v = v[:40]
		}
		return v
	}
	return prefs{Lang: get("lang"), Theme: web.NormalizeTheme(get("theme")), Source: get("source")}
}

// flow is a request inside a cashier session: its sealed handle, the
// session and the customer.
type flow struct {
	raw  string
	h    handle
	sess identity.CashierSession
	cust funding.Customer
	p    prefs
}

// operation names the screen a session was opened for.
type operation string

const (
	opDeposit  operation = "deposit"
	opWithdraw operation = "withdraw"
)

func (s *screens) entryPath(op operation) string {
	if op == opWithdraw {
		return s.opt.WithdrawPath
	}
	return s.opt.DepositPath
}

// link returns path with the handle (and extra key/value pairs) in its query.
func (f *flow) link(path string, kv ...string) string {
	q := url.Values{"s": {f.raw}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return path + "?" + q.Encode()
}

// open consumes the one-time token of a first request, opens the cashier
// session and redirects to the same screen without the token.
func (s *screens) open(w http.ResponseWriter, r *http.Request, op operation) {
	ps := prefsOf(r)
	q := r.URL.Query()
	var account int64
	if a := strings.TrimSpace(q.Get("account")); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n <= 0 {
			s.problem(w, r, ps, http.StatusBadRequest, "cashier.error.account_param", "")
			return
		}
		account = n
	}
	sess, err := s.id.OpenInApp(r.Context(), q.Get("token"), account)
	if err != nil {
		s.tokenError(w, r, ps, err)
		return
	}
	if ps.Lang == "" {
		ps.Lang = sess.Language
	}
	h := handle{Session: sess.Token, Login: sess.Account, Lang: s.r.Lang(ps.Lang), Theme: ps.Theme, Source: ps.Source, Expires: sess.ExpiresAt}
	raw, err := s.seal.seal(purposeHandle, h)
	if err != nil {
		s.internal(w, r, ps, "seal a session handle", err)
		return
	}
	s.log.InfoContext(r.Context(), "cashier opened", "screen", op, "user", sess.UserID, "account", sess.Account,
		"mode", sess.Mode, "source", ps.Source)
	canonical := s.entryPath(op) + "?" + url.Values{"s": {raw}}.Encode()
	if s.opt.RedirectAfterOpen {
		http.Redirect(w, r, canonical, http.StatusSeeOther)
		return
	}
	// Show the first screen at once, as if the browser had been redirected
	// to the token-less URL: the page's script replaces the address (no
	// round trip), and without JavaScript a <meta> refresh goes there.
	ctx := context.WithValue(context.WithValue(r.Context(), canonicalKey{}, canonical), openedKey{}, sess)
	r2 := r.Clone(ctx)
	r2.URL.RawQuery = url.Values{"s": {raw}}.Encode()
	r2.RequestURI = canonical
	r2.Form = nil
	if op == opWithdraw {
		s.withdrawEntry(w, r2)
	} else {
		s.depositEntry(w, r2)
	}
}

// canonicalKey marks a first screen shown in answer to the token URL; its
// value is the URL the page stands for.
type canonicalKey struct{}

// openedKey carries the session just opened to the first screen, which
// then needs no read to resolve it.
type openedKey struct{}

// session resolves the session of a handle: the one this request opened,
// or the stored one.
func (s *screens) session(r *http.Request, token string) (identity.CashierSession, error) {
	if sess, ok := r.Context().Value(openedKey{}).(identity.CashierSession); ok && sess.Token == token {
		sess.Token = ""
		return sess, nil
	}
	return s.id.Session(r.Context(), token)
}

// tokenError explains why the token of a first request did not open the
// cashier: a clear page with a 4xx status.
func (s *screens) tokenError(w http.ResponseWriter, r *http.Request, ps prefs, err error) {
	switch errs.CodeOf(err) {
	case errs.Invalid:
		s.problem(w, r, ps, http.StatusBadRequest, "cashier.error.token_invalid", "")
	case errs.NotFound:
		s.problem(w, r, ps, http.StatusGone, "cashier.error.token_used", "")
	case errs.Expired:
		s.problem(w, r, ps, http.StatusGone, "cashier.error.token_expired", "")
	case errs.Forbidden:
		s.problem(w, r, ps, http.StatusForbidden, "cashier.error.not_yours", "")
	case errs.Unavailable:
		s.log.WarnContext(r.Context(), "cashier: token not checked", "err", err)
		s.problem(w, r, ps, http.StatusServiceUnavailable, "common.error.unavailable", "")
	default:
		s.internal(w, r, ps, "open a cashier session", err)
	}
}

// flowOf resolves the handle of a request inside a session. It renders the
// error page itself and reports false when the handle does not work.
func (s *screens) flowOf(w http.ResponseWriter, r *http.Request) (*flow, bool) {
	raw := r.FormValue("s")
	f := &flow{raw: raw}
	ps := prefsOf(r)
	if err := s.seal.open(purposeHandle, raw, s.opt.Clock.Now(), &f.h); err != nil {
		if errs.Is(err, errs.Expired) {
			s.problem(w, r, ps, http.StatusGone, "cashier.error.session", "")
		} else {
			s.problem(w, r, ps, http.StatusBadRequest, "cashier.error.session", "")
		}
		return nil, false
	}
	f.p = prefs{Lang: f.h.Lang, Theme: f.h.Theme, Source: f.h.Source}
	sess, err := s.session(r, f.h.Session)
	if err != nil {
		switch errs.CodeOf(err) {
		case errs.Invalid, errs.NotFound, errs.Expired:
			s.problem(w, r, f.p, http.StatusGone, "cashier.error.session", "")
		case errs.Forbidden:
			s.problem(w, r, f.p, http.StatusForbidden, "cashier.error.disabled", "")
		default:
			s.internal(w, r, f.p, "resolve a cashier session", err)
		}
		return nil, false
	}
	f.sess = sess
	cust, err := s.customer(r, sess.UserID, sess.Email, f.p.Lang)
	if err != nil {
		s.internal(w, r, f.p, "read the customer's profile", err)
		return nil, false
	}
	f.cust = cust
	return f, true
}

func (s *screens) customer(r *http.Request, userID, email, lang string) (funding.Customer, error) {
	c := funding.Customer{UserID: userID, Email: email, Lang: lang, Country: s.opt.DefaultCountry, KYCLevel: s.opt.DefaultKYCLevel}
	if s.prof != nil {
		p, err := s.prof.Profile(r.Context(), userID)
		if err != nil {
			return funding.Customer{}, err
		}
		c.Country, c.KYCLevel = strings.ToUpper(p.Country), p.KYCLevel
	}
	return c, nil
}

// --- account choice ---

type accountChoice struct {
	common
	Next     string
	Accounts []accountRow
}

type accountRow struct {
	Login    int64
	Currency string
	Kind     string
}

// chooseAccountPage lists the user's accounts when the screen was opened
// without one and the user has several.
func (s *screens) chooseAccountPage(w http.ResponseWriter, r *http.Request, f *flow, op operation) {
	accs, err := s.id.Accounts(r.Context(), f.sess.UserID)
	if err != nil {
		s.internal(w, r, f.p, "list the user's accounts", err)
		return
	}
	d := accountChoice{common: s.common(r, f.p, f.raw, op, 0), Next: string(op)}
	for _, a := range accs {
		d.Accounts = append(d.Accounts, accountRow{Login: a.Login, Currency: a.Currency, Kind: string(a.Kind)})
	}
	if len(d.Accounts) == 0 {
		s.problem(w, r, f.p, http.StatusNotFound, "cashier.error.no_account", "")
		return
	}
	s.render(w, http.StatusOK, "cashier_account", f.p, "", "", d)
}

func (s *screens) chooseAccount(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowOf(w, r)
	if !ok {
		return
	}
	op := operation(r.FormValue("next"))
	if op != opWithdraw {
		op = opDeposit
	}
	login, err := strconv.ParseInt(r.FormValue("account"), 10, 64)
	if err != nil || login <= 0 {
		s.chooseAccountPage(w, r, f, op)
		return
	}
	if _, err := s.id.AccountOf(r.Context(), f.sess.UserID, login); err != nil {
		switch errs.CodeOf(err) {
		case errs.Forbidden, errs.NotFound:
			s.problem(w, r, f.p, http.StatusForbidden, "cashier.error.not_yours", "")
		default:
			s.internal(w, r, f.p, "check the chosen account", err)
		}
		return
	}
	h := f.h
	h.Login = login
	raw, err := s.seal.seal(purposeHandle, h)
	if err != nil {
		s.internal(w, r, f.p, "seal a session handle", err)
		return
	}
	http.Redirect(w, r, s.entryPath(op)+"?"+url.Values{"s": {raw}}.Encode(), http.StatusSeeOther)
}

// --- tickets ---

// ticketFor seals the status address of one deposit or withdrawal.
func (s *screens) ticketFor(kind, id string, c funding.Customer, login int64, p prefs) (string, error) {
	return s.seal.seal(purposeTicket, ticket{Kind: kind, ID: id, UserID: c.UserID, Email: c.Email, Login: login, Lang: p.Lang, Theme: p.Theme,
		Source: p.Source, Expires: s.opt.Clock.Now().Add(s.opt.TicketTTL)})
}

// ticketOf opens the ticket `t` of a request; it renders the error page
// itself and reports false when the ticket does not work.
func (s *screens) ticketOf(w http.ResponseWriter, r *http.Request, kind string) (ticket, bool) {
	var t ticket
	err := s.seal.open(purposeTicket, r.FormValue("t"), s.opt.Clock.Now(), &t)
	if err == nil && t.Kind != kind {
		err = errs.E(errs.Invalid, "cashierpages.ticketOf", "ticket of another kind")
	}
	if err != nil {
		status := http.StatusBadRequest
		if errs.Is(err, errs.Expired) {
			status = http.StatusGone
		}
		s.problem(w, r, prefsOf(r), status, "cashier.error.ticket", "")
		return ticket{}, false
	}
	return t, true
}

func (t ticket) prefs() prefs { return prefs{Lang: t.Lang, Theme: t.Theme, Source: t.Source} }
