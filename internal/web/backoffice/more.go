package backoffice

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// --- dashboard ---

type dashboardData struct {
	chrome
	From    string
	To      string
	Figures []Figure
	Charts  []Chart
}

// period reads from and to (dates, both included) of a request; the
// default is the last 30 days up to today.
func (s *server) period(q url.Values) (from, to time.Time, err error) {
	today := s.opt.Clock.Now().UTC().Truncate(24 * time.Hour)
	to, from = today.AddDate(0, 0, 1), today.AddDate(0, 0, -29)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse("2006-01-02", v); err != nil {
			return time.Time{}, time.Time{}, errs.E(errs.Invalid, "backoffice.period", "the from date must be written YYYY-MM-DD")
		}
	}
	if v := q.Get("to"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return time.Time{}, time.Time{}, errs.E(errs.Invalid, "backoffice.period", "the to date must be written YYYY-MM-DD")
		}
		to = t.AddDate(0, 0, 1)
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, errs.E(errs.Invalid, "backoffice.period", "the from date must not be after the to date")
	}
	if to.Sub(from) > 366*24*time.Hour {
		return time.Time{}, time.Time{}, errs.E(errs.Invalid, "backoffice.period", "choose a period of at most a year")
	}
	return from, to, nil
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	d := dashboardData{chrome: s.chrome(c, "dashboard", ""), From: q.Get("from"), To: q.Get("to")}
	from, to, err := s.period(q)
	if err != nil {
		s.render(w, http.StatusBadRequest, "bo_dashboard", errs.MessageOf(err), "", d)
		return
	}
	d.From, d.To = from.Format("2006-01-02"), to.AddDate(0, 0, -1).Format("2006-01-02")
	db, err := s.d.Reports.Dashboard(r.Context(), from, to)
	if err != nil {
		s.failed(w, r, c, "dashboard", err)
		return
	}
	d.Figures, d.Charts = db.Figures, db.Charts
	s.render(w, http.StatusOK, "bo_dashboard", "", "", d)
}

// --- rules and limits ---

type ruleView struct {
	Rule
	UsesCount   bool
	UsesWindow  bool
	UsesAmounts bool
	WindowText  string
	AmountsText string
	Updated     string
	By          string
}

type limitView struct {
	Limit
	ID        string // the form's anchor
	Method    string
	PerDayS   string
	PerMonthS string
	DayForm   string
	MonthForm string
	Counts    string
}

type levelLimits struct {
	Level  int
	Limits []limitView
}

type rulesData struct {
	chrome
	Rules   []ruleView
	Levels  []levelLimits
	CanEdit bool
	KYC     []int
}

// windowText writes a duration as people write it: "1h", "24h", "90m".
func windowText(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	return s
}

// amountsText writes per-currency amounts as "10000.00 EUR, 10000.00 USD".
func amountsText(m map[string]money.Amount) string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, m[c].Decimal()+" "+c)
	}
	return strings.Join(parts, ", ")
}

// parseAmounts reads "10000.00 USD, 5000 EUR" (commas, semicolons or line
// breaks between amounts; the code before or after the number).
func parseAmounts(s string) (map[string]money.Amount, error) {
	const op = "backoffice.parseAmounts"
	out := map[string]money.Amount{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' }) {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, errs.Ef(errs.Invalid, op, "write each amount as 10000.00 USD, not %q", strings.TrimSpace(part))
		}
		num, code := f[0], strings.ToUpper(f[1])
		if decimalRe.MatchString(code) {
			num, code = f[1], strings.ToUpper(f[0])
		}
		cur, err := money.LookupCurrency(code)
		if err != nil {
			return nil, errs.Ef(errs.Invalid, op, "%q is not a currency code", code)
		}
		a, err := money.ParsePositive(num, cur)
		if err != nil {
			return nil, errs.Ef(errs.Invalid, op, "%s: %s", strings.TrimSpace(part), errs.MessageOf(err))
		}
		if _, dup := out[cur.Code]; dup {
			return nil, errs.Ef(errs.Invalid, op, "%s appears twice", cur.Code)
		}
		out[cur.Code] = a
	}
	return out, nil
}

func (s *server) rules(w http.ResponseWriter, r *http.Request, c *call) {
	s.showRules(w, r, c, http.StatusOK, "")
}

func (s *server) showRules(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	ctx := r.Context()
	rules, err := s.d.Compliance.Rules(ctx)
	if err != nil {
		s.failed(w, r, c, "rules", err)
		return
	}
	limits, err := s.d.Compliance.Limits(ctx)
	if err != nil {
		s.failed(w, r, c, "limits", err)
		return
	}
	names := s.names(ctx)
	d := rulesData{chrome: s.chrome(c, "rules", ""), CanEdit: c.can(PermRulesEdit)}
	for l := 0; l <= MaxKYCLevel; l++ {
		d.KYC = append(d.KYC, l)
	}
	for _, ru := range rules {
		v := ruleView{Rule: ru, UsesCount: contains(ru.Uses, "count"), UsesWindow: contains(ru.Uses, "window"), UsesAmounts: contains(ru.Uses, "amounts"),
			WindowText: windowText(ru.Window), AmountsText: amountsText(ru.Amounts), Updated: when(ru.UpdatedAt), By: who(names, ru.UpdatedBy)}
		if v.Title == "" {
			v.Title = words(ru.Name)
		}
		d.Rules = append(d.Rules, v)
	}
	byLevel := map[int][]limitView{}
	for _, l := range limits {
		v := limitView{Limit: l, ID: limitID(l.LimitKey), Method: l.Method, PerDayS: "no cap", PerMonthS: "no cap"}
		if v.Method == AnyMethod || v.Method == "" {
			v.Method = "every method together"
		}
		if !l.PerDay.IsZero() {
			v.PerDayS, v.DayForm = amount(l.PerDay), l.PerDay.Decimal()
		}
		if !l.PerMonth.IsZero() {
			v.PerMonthS, v.MonthForm = amount(l.PerMonth), l.PerMonth.Decimal()
		}
		var counts []string
		if l.CountPerDay > 0 {
			counts = append(counts, strconv.Itoa(l.CountPerDay)+" a day")
		}
		if l.CountPerMonth > 0 {
			counts = append(counts, strconv.Itoa(l.CountPerMonth)+" a month")
		}
		v.Counts = strings.Join(counts, ", ")
		byLevel[l.KYCLevel] = append(byLevel[l.KYCLevel], v)
	}
	for lvl, ls := range byLevel {
		d.Levels = append(d.Levels, levelLimits{Level: lvl, Limits: ls})
	}
	sort.Slice(d.Levels, func(i, j int) bool { return d.Levels[i].Level < d.Levels[j].Level })
	s.render(w, status, "bo_rules", errText, notice(r), d)
}

// limitID names a limit in addresses and element ids.
func limitID(k LimitKey) string {
	m := k.Method
	if m == AnyMethod {
		m = "any"
	}
	return k.Direction + "-" + m + "-" + k.Currency + "-" + strconv.Itoa(k.KYCLevel)
}

func (s *server) setRule(w http.ResponseWriter, r *http.Request, c *call) {
	name := r.PathValue("id")
	rules, err := s.d.Compliance.Rules(r.Context())
	if err != nil {
		s.failed(w, r, c, "rules", err)
		return
	}
	var ru Rule
	found := false
	for _, x := range rules {
		if x.Name == name {
			ru, found = x, true
		}
	}
	if !found {
		s.problem(w, c, http.StatusNotFound, "Not found", "There is no fraud rule "+name+".")
		return
	}
	bad := func(msg string) {
		s.showRules(w, r, c, http.StatusBadRequest, "Rule “"+ru.Title+"” was not saved: "+msg)
	}
	ru.Enabled = r.PostForm.Get("enabled") == "on"
	if contains(ru.Uses, "count") {
		n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("count")))
		if err != nil || n < 0 {
			bad("the count must be a whole number, 0 or more.")
			return
		}
		ru.Count = n
	}
	if contains(ru.Uses, "window") {
		d, err := time.ParseDuration(strings.TrimSpace(r.PostForm.Get("window")))
		if err != nil || d <= 0 {
			bad("write the window as a duration such as 30m, 1h or 24h.")
			return
		}
		ru.Window = d
	}
	if contains(ru.Uses, "amounts") {
		m, err := parseAmounts(r.PostForm.Get("amounts"))
		if err != nil {
			bad(errs.MessageOf(err))
			return
		}
		ru.Amounts = m
	}
	if err := s.d.Compliance.SetRule(r.Context(), c.actor(), ru); err != nil {
		status, msg := s.userError(r, "rule change", err)
		s.showRules(w, r, c, status, "Rule “"+ru.Title+"” was not saved: "+msg)
		return
	}
	s.done(w, r, "/rules", "rule_saved", ru.Title)
}

// setLimit creates or replaces the limit the form names.
func (s *server) setLimit(w http.ResponseWriter, r *http.Request, c *call) {
	f := r.PostForm
	level, err := strconv.Atoi(f.Get("level"))
	if err != nil {
		s.showRules(w, r, c, http.StatusBadRequest, "The limit was not saved: choose a KYC level.")
		return
	}
	k := LimitKey{Direction: f.Get("direction"), Method: strings.TrimSpace(f.Get("method")), Currency: strings.ToUpper(strings.TrimSpace(f.Get("currency"))), KYCLevel: level}
	if k.Method == "" {
		k.Method = AnyMethod
	}
	bad := func(msg string) { s.showRules(w, r, c, http.StatusBadRequest, "The limit was not saved: "+msg) }
	cur, err := money.LookupCurrency(k.Currency)
	if err != nil {
		bad("choose a currency (an ISO code such as USD).")
		return
	}
	l := Limit{LimitKey: k}
	for _, a := range []struct {
		field string
		into  *money.Amount
	}{{"per_day", &l.PerDay}, {"per_month", &l.PerMonth}} {
		v := strings.TrimSpace(f.Get(a.field))
		if v == "" {
			*a.into = money.Zero(cur)
			continue
		}
		amt, err := money.Parse(v, cur)
		if err != nil || amt.IsNegative() {
			bad("amounts are plain decimals such as 5000.00, or empty for no cap.")
			return
		}
		*a.into = amt
	}
	for _, n := range []struct {
		field string
		into  *int
	}{{"count_day", &l.CountPerDay}, {"count_month", &l.CountPerMonth}} {
		v := strings.TrimSpace(f.Get(n.field))
		if v == "" {
			continue
		}
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			bad("counts are whole numbers, or empty for no cap.")
			return
		}
		*n.into = x
	}
	if err := s.d.Compliance.SetLimit(r.Context(), c.actor(), l); err != nil {
		status, msg := s.userError(r, "limit change", err)
		s.showRules(w, r, c, status, "The limit was not saved: "+msg)
		return
	}
	s.done(w, r, "/rules", "limit_saved", limitID(k))
}

// --- reconciliation ---

type runRow struct {
	ReconRun
	Started string
	Took    string
	By      string
}

type caseRow struct {
	ReconCase
	Opened   string
	Resolved string
	By       string
	Proof    string // the evidence, indented
}

type reconcileData struct {
	chrome
	Runs       []runRow
	Open       []caseRow
	Closed     []caseRow
	CanResolve bool
}

func (s *server) reconcile(w http.ResponseWriter, r *http.Request, c *call) {
	s.showReconcile(w, r, c, http.StatusOK, "")
}

func (s *server) showReconcile(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	ctx := r.Context()
	runs, err := s.d.Reconcile.Runs(ctx, 20)
	if err != nil {
		s.failed(w, r, c, "reconciliation", err)
		return
	}
	open, err := s.d.Reconcile.Cases(ctx, true, 200)
	if err != nil {
		s.failed(w, r, c, "reconciliation", err)
		return
	}
	closed, err := s.d.Reconcile.Cases(ctx, false, 20)
	if err != nil {
		s.failed(w, r, c, "reconciliation", err)
		return
	}
	names := s.names(ctx)
	d := reconcileData{chrome: s.chrome(c, "reconcile", ""), CanResolve: c.can(PermReconcile)}
	for _, run := range runs {
		row := runRow{ReconRun: run, Started: whenSec(run.StartedAt), By: who(names, run.Actor)}
		if !run.FinishedAt.IsZero() {
			row.Took = run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond).String()
		}
		d.Runs = append(d.Runs, row)
	}
	for _, k := range open {
		d.Open = append(d.Open, caseRow{ReconCase: k, Opened: when(k.OpenedAt), Proof: prettyJSON(k.Evidence)})
	}
	for _, k := range closed {
		d.Closed = append(d.Closed, caseRow{ReconCase: k, Opened: when(k.OpenedAt), Resolved: when(k.ResolvedAt), By: who(names, k.ResolvedBy)})
	}
	s.render(w, status, "bo_reconcile", errText, notice(r), d)
}

func (s *server) runReconcile(w http.ResponseWriter, r *http.Request, c *call) {
	run, err := s.d.Reconcile.Run(r.Context(), c.actor())
	if err != nil {
		status, msg := s.userError(r, "reconciliation run", err)
		s.showReconcile(w, r, c, status, "The run did not finish: "+msg)
		return
	}
	s.done(w, r, "/reconcile", "run_done", run.ID)
}

func (s *server) resolveCase(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	note, ok := text(r, "note")
	if !ok {
		s.showReconcile(w, r, c, http.StatusBadRequest, "Case "+id+" was not resolved: write what you found and did (at most 500 characters).")
		return
	}
	if _, err := s.d.Reconcile.Resolve(r.Context(), id, c.actor(), note); err != nil {
		status, msg := s.userError(r, "resolution", err)
		s.showReconcile(w, r, c, status, "Case "+id+" was not resolved: "+msg)
		return
	}
	s.done(w, r, "/reconcile", "case_resolved", id)
}

// --- audit ---

type auditRow struct {
	Seq     int64
	At      string
	Actor   string
	Action  string
	Subject string
	Detail  string
	Hash    string
}

type auditData struct {
	chrome
	Form     url.Values
	Rows     []auditRow
	OlderURL string
	Check    *AuditCheck
}

// Verified is the chain check's outcome in words.
func (d auditData) Verified() []string {
	if d.Check == nil {
		return nil
	}
	var out []string
	for _, p := range d.Check.Problems {
		out = append(out, "record "+strconv.FormatInt(p.Seq, 10)+": "+p.Kind+": "+p.Detail)
	}
	if d.Check.MoreProblems > 0 {
		out = append(out, "… and "+strconv.FormatInt(d.Check.MoreProblems, 10)+" more")
	}
	return out
}

// F is a form field's value as the member typed it.
func (d auditData) F(name string) string { return d.Form.Get(name) }

var auditParams = []string{"actor", "action", "subject", "text", "from", "to"}

// ParseAuditQuery reads an audit search from query parameters: actor,
// action, subject, text, from and to (dates, both included), before. It
// returns an errs.Invalid error naming the first bad parameter.
func ParseAuditQuery(q url.Values) (AuditQuery, error) {
	const op = "backoffice.ParseAuditQuery"
	a := AuditQuery{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Subject: strings.TrimSpace(q.Get("subject")),
		Text: strings.TrimSpace(q.Get("text"))}
	if v := q.Get("from"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return AuditQuery{}, errs.E(errs.Invalid, op, "the from date must be written YYYY-MM-DD")
		}
		a.From = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return AuditQuery{}, errs.E(errs.Invalid, op, "the to date must be written YYYY-MM-DD")
		}
		a.To = t.AddDate(0, 0, 1)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return AuditQuery{}, errs.E(errs.Invalid, op, "bad page position")
		}
		a.BeforeSeq = n
	}
	return a, nil
}

func (s *server) audit(w http.ResponseWriter, r *http.Request, c *call) {
	s.showAudit(w, r, c, http.StatusOK, "", nil)
}

func (s *server) showAudit(w http.ResponseWriter, r *http.Request, c *call, status int, errText string, check *AuditCheck) {
	q := r.URL.Query()
	form := url.Values{}
	for _, k := range auditParams {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			form.Set(k, v)
		}
	}
	d := auditData{chrome: s.chrome(c, "audit", ""), Form: form, Check: check}
	aq, err := ParseAuditQuery(q)
	if err != nil {
		s.render(w, http.StatusBadRequest, "bo_audit", errs.MessageOf(err), "", d)
		return
	}
	aq.Limit = s.opt.PageSize
	entries, err := s.d.Audit.Search(r.Context(), aq)
	if err != nil {
		if st, msg := s.userError(r, "audit search", err); st < 500 {
			s.render(w, st, "bo_audit", msg, "", d)
			return
		}
		s.failed(w, r, c, "audit search", err)
		return
	}
	names := s.names(r.Context())
	for _, e := range entries {
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+e.Detail[k])
		}
		actor := e.Actor
		if n, ok := names[actor]; ok {
			actor += " — " + n
		}
		h := e.Hash
		if len(h) > 12 {
			h = h[:12] + "…"
		}
		d.Rows = append(d.Rows, auditRow{Seq: e.Seq, At: whenSec(e.At), Actor: actor, Action: e.Action, Subject: e.Subject, Detail: strings.Join(parts, "; "), Hash: h})
	}
	if len(entries) == aq.Limit && len(entries) > 0 {
		older := url.Values{}
		for k, vs := range form {
			older[k] = vs
		}
		older.Set("before", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
		d.OlderURL = s.opt.Prefix + "/audit?" + older.Encode()
	}
	s.render(w, status, "bo_audit", errText, "", d)
}

func (s *server) verifyAudit(w http.ResponseWriter, r *http.Request, c *call) {
	check, err := s.d.Audit.Verify(r.Context())
	if err != nil {
		status, msg := s.userError(r, "chain check", err)
		s.showAudit(w, r, c, status, "The chain could not be checked: "+msg, nil)
		return
	}
	status := http.StatusOK
	if !check.OK() {
		status = http.StatusConflict
	}
	s.showAudit(w, r, c, status, "", &check)
}

// --- staff ---

type memberRow struct {
	Member
	Disabled  bool
	Locked    bool
	LastLogin string
	You       bool
}

type staffData struct {
	chrome
	Members []memberRow
	Roles   []string
	Form    NewMember
}

func (s *server) staffPage(w http.ResponseWriter, r *http.Request, c *call) {
	s.showStaff(w, r, c, http.StatusOK, "", NewMember{Role: "viewer"})
}

func (s *server) showStaff(w http.ResponseWriter, r *http.Request, c *call, status int, errText string, form NewMember) {
	ms, err := s.d.Staff.Members(r.Context())
	if err != nil {
		s.failed(w, r, c, "staff list", err)
		return
	}
	form.Password = ""
	d := staffData{chrome: s.chrome(c, "staff", ""), Roles: Roles, Form: form}
	for _, m := range ms {
		row := memberRow{Member: m, LastLogin: when(m.LastLoginAt), You: m.ID == c.sess.Member.ID,
			Disabled: m.Status == "disabled", Locked: m.LockedUntil.After(s.opt.Clock.Now())}
		if row.LastLogin == "" {
			row.LastLogin = "never"
		}
		d.Members = append(d.Members, row)
	}
	s.render(w, status, "bo_staff", errText, notice(r), d)
}

func (s *server) addStaff(w http.ResponseWriter, r *http.Request, c *call) {
	m := NewMember{Email: strings.TrimSpace(r.PostForm.Get("email")), Name: strings.TrimSpace(r.PostForm.Get("name")),
		Role: r.PostForm.Get("role"), Password: r.PostForm.Get("password")}
	if !contains(Roles, m.Role) {
		s.showStaff(w, r, c, http.StatusBadRequest, "Choose a role.", m)
		return
	}
	m.Actor = c.actor()
	added, err := s.d.Staff.AddMember(r.Context(), m)
	if err != nil {
		status, msg := s.userError(r, "adding of the member", err)
		s.showStaff(w, r, c, status, "The member was not added: "+msg, m)
		return
	}
	s.done(w, r, "/staff", "staff_added", added.Email)
}

func (s *server) setStaffRole(w http.ResponseWriter, r *http.Request, c *call) {
	id, role := r.PathValue("id"), r.PostForm.Get("role")
	switch {
	case !contains(Roles, role):
		s.showStaff(w, r, c, http.StatusBadRequest, "Choose a role.", NewMember{Role: "viewer"})
		return
	case id == c.sess.Member.ID:
		s.showStaff(w, r, c, http.StatusConflict, "You cannot change your own role; ask another administrator.", NewMember{Role: "viewer"})
		return
	}
	if err := s.d.Staff.SetRole(r.Context(), c.actor(), id, role); err != nil {
		status, msg := s.userError(r, "role change", err)
		s.showStaff(w, r, c, status, "The role was not changed: "+msg, NewMember{Role: "viewer"})
		return
	}
	s.done(w, r, "/staff", "role_changed", id)
}

func (s *server) disableStaff(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	if id == c.sess.Member.ID {
		s.showStaff(w, r, c, http.StatusConflict, "You cannot disable yourself; ask another administrator.", NewMember{Role: "viewer"})
		return
	}
	if err := s.d.Staff.Disable(r.Context(), c.actor(), id); err != nil {
		status, msg := s.userError(r, "disabling", err)
		s.showStaff(w, r, c, status, "The member was not disabled: "+msg, NewMember{Role: "viewer"})
		return
	}
	s.done(w, r, "/staff", "staff_disabled", id)
}

func (s *server) enableStaff(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	if err := s.d.Staff.Enable(r.Context(), c.actor(), id); err != nil {
		status, msg := s.userError(r, "enabling", err)
		s.showStaff(w, r, c, status, "The member was not enabled: "+msg, NewMember{Role: "viewer"})
		return
	}
	s.done(w, r, "/staff", "staff_enabled", id)
}

func (s *server) resetStaffTOTP(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	if err := s.d.Staff.ResetTOTP(r.Context(), c.actor(), id); err != nil {
		status, msg := s.userError(r, "reset", err)
		s.showStaff(w, r, c, status, "The authenticator was not reset: "+msg, NewMember{Role: "viewer"})
		return
	}
	s.done(w, r, "/staff", "totp_reset", id)
}
