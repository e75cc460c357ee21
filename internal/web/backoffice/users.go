package backoffice

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/identity"
)

type usersData struct {
	chrome
	Query    string
	NotFound bool
}

// users is the user search: an e-mail address or a user id leads to the
// user's page.
func (s *server) users(w http.ResponseWriter, r *http.Request, c *call) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := usersData{chrome: s.chrome(c, "users", ""), Query: q}
	if q == "" {
		s.render(w, http.StatusOK, "bo_users", "", "", d)
		return
	}
	var (
		u   identity.User
		err error
	)
	if strings.Contains(q, "@") {
		u, err = s.d.Users.UserByEmail(r.Context(), q)
	} else {
		u, err = s.d.Users.UserByID(r.Context(), q)
	}
	switch {
	case errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid):
		d.NotFound = true
		s.render(w, http.StatusNotFound, "bo_users", "", "", d)
	case err != nil:
		s.failed(w, r, c, "user search", err)
	default:
		redirect(w, r, s.opt.Prefix+"/users/"+pathEscape(u.ID))
	}
}

type accountRow struct {
	Login       string
	Currency    string
	Kind        string
	Environment string
	Opened      string
	TxURL       string
}

type kycData struct {
	Level     int
	Country   string
	Source    string
	By        string
	Reference string
	UpdatedAt string
	Never     bool
	History   []kycChangeRow
}

type kycChangeRow struct {
	At        string
	Change    string
	Source    string
	By        string
	Reference string
}

type holdRow struct {
	ID          string
	TxURL       string
	Rule        string
	Explanation string
	At          string
	State       string
}

type userData struct {
	chrome
	ID        string
	Email     string
	Status    string
	Language  string
	CTID      string
	Created   string
	Accounts  []accountRow
	KYC       *kycData
	CanSetKYC bool
	Levels    []int
	Form      KYCUpdate // what the form shows
	Holds     []holdRow
	Txs       []txRow
	TxsURL    string
	MoreTxs   bool
}

func (s *server) user(w http.ResponseWriter, r *http.Request, c *call) {
	s.showUser(w, r, c, http.StatusOK, "", nil)
}

// showUser shows a user's page; form, if set, is a KYC change to show
// again after an error.
func (s *server) showUser(w http.ResponseWriter, r *http.Request, c *call, status int, errText string, form *KYCUpdate) {
	ctx := r.Context()
	id := r.PathValue("id")
	u, err := s.d.Users.UserByID(ctx, id)
	if err != nil {
		s.failed(w, r, c, "user", err)
		return
	}
	accts, err := s.d.Users.Accounts(ctx, u.ID)
	if err != nil {
		s.failed(w, r, c, "user's accounts", err)
		return
	}
	d := userData{chrome: s.chrome(c, "users", ""), ID: u.ID, Email: u.Email, Status: string(u.Status), Language: u.Language,
		Created: when(u.CreatedAt)}
	for l := 0; l <= MaxKYCLevel; l++ {
		d.Levels = append(d.Levels, l)
	}
	if u.CTIDUserID != 0 {
		d.CTID = strconv.FormatInt(u.CTIDUserID, 10)
	}
	for _, a := range accts {
		row := accountRow{Login: strconv.FormatInt(a.Login, 10), Currency: a.Currency, Kind: string(a.Kind), Environment: string(a.Environment), Opened: when(a.CreatedAt)}
		if s.d.Reports != nil && c.can(PermView) {
			row.TxURL = s.opt.Prefix + "/transactions?login=" + row.Login
		}
		d.Accounts = append(d.Accounts, row)
	}
	if s.d.Compliance != nil {
		p, err := s.d.Compliance.Profile(ctx, u.ID)
		if err != nil {
			s.failed(w, r, c, "KYC profile", err)
			return
		}
		hist, err := s.d.Compliance.KYCHistory(ctx, u.ID)
		if err != nil {
			s.failed(w, r, c, "KYC history", err)
			return
		}
		names := s.names(ctx)
		k := &kycData{Level: p.Level, Country: p.Country, Source: p.Source, By: who(names, p.UpdatedBy), Reference: p.Reference,
			UpdatedAt: when(p.UpdatedAt), Never: !p.Stored}
		for _, h := range hist {
			change := "level " + strconv.Itoa(h.Level) + ", " + h.Country
			if h.PreviousLevel >= 0 {
				change = "level " + strconv.Itoa(h.PreviousLevel) + " → " + strconv.Itoa(h.Level) + ", " + h.PreviousCountry + " → " + h.Country
			}
			k.History = append(k.History, kycChangeRow{At: when(h.At), Change: change, Source: h.Source, By: who(names, h.Actor), Reference: h.Reference})
		}
		d.KYC = k
		d.CanSetKYC = c.can(PermKYCSet)
		d.Form = KYCUpdate{Level: p.Level, Country: p.Country}
		if form != nil {
			d.Form = *form
		}
		holds, err := s.d.Compliance.Holds(ctx, false)
		if err != nil {
			s.failed(w, r, c, "holds", err)
			return
		}
		for _, h := range holds {
			if h.UserID != u.ID {
				continue
			}
			row := holdRow{ID: h.TxnID, Rule: words(h.Rule), Explanation: h.Explanation, At: when(h.CreatedAt), State: h.State}
			if h.State == HoldResolved {
				row.State = "resolved: " + words(h.Resolution)
				if h.ResolvedBy != "" {
					row.State += " by " + who(names, h.ResolvedBy)
				}
			}
			if s.d.Reports != nil {
				row.TxURL = s.opt.Prefix + "/transactions/" + pathEscape(h.TxnID)
			}
			d.Holds = append(d.Holds, row)
		}
	}
	if s.d.Reports != nil && c.can(PermView) {
		page, err := s.d.Reports.Search(ctx, TxFilter{UserID: u.ID, Limit: 20})
		if err != nil {
			s.failed(w, r, c, "transactions", err)
			return
		}
		for _, t := range page.Rows {
			d.Txs = append(d.Txs, s.txRow(c, t))
		}
		d.TxsURL = s.opt.Prefix + "/transactions?user=" + url.QueryEscape(u.ID)
		d.MoreTxs = page.Next != ""
	}
	s.render(w, status, "bo_user", errText, notice(r), d)
}

func (s *server) setKYC(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	level, err := strconv.Atoi(r.PostForm.Get("level"))
	u := KYCUpdate{Level: level, Country: strings.ToUpper(strings.TrimSpace(r.PostForm.Get("country"))), Reference: strings.TrimSpace(r.PostForm.Get("reason"))}
	if err != nil || level < 0 || level > MaxKYCLevel {
		s.showUser(w, r, c, http.StatusBadRequest, "Choose a KYC level.", &u)
		return
	}
	reason, ok := text(r, "reason")
	if !ok {
		s.showUser(w, r, c, http.StatusBadRequest, "Give a reason for the change (at most 500 characters).", &u)
		return
	}
	u.Reference = reason
	if err := s.d.Compliance.SetKYC(r.Context(), c.actor(), id, u); err != nil {
		status, msg := s.userError(r, "KYC change", err)
		s.showUser(w, r, c, status, "The KYC status was not saved: "+msg, &u)
		return
	}
	s.done(w, r, "/users/"+pathEscape(id), "kyc_set", id)
}
