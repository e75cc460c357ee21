package backoffice

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/payments"
)

// names maps "staff:<id>" actors to the members' names or e-mail
// addresses, for pages that show who did something.
func (s *server) names(ctx context.Context) map[string]string {
	ms, err := s.d.Staff.Members(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "backoffice: staff names", "err", err)
		return nil
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		n := m.Email
		if m.Name != "" {
			n = m.Name + " (" + m.Email + ")"
		}
		out["staff:"+m.ID] = n
	}
	return out
}

// who shows an actor: a member's name, or the actor as recorded.
func who(names map[string]string, actor string) string {
	if n, ok := names[actor]; ok {
		return n
	}
	return actor
}

// tasks returns the open tasks that match keep.
func (s *server) tasks(ctx context.Context, keep func(Task) bool) ([]Task, error) {
	all, err := s.d.Funding.Tasks(ctx)
	if err != nil {
		return nil, err
	}
	var out []Task
	emails := map[string]string{}
	for _, t := range all {
		if !keep(t) {
			continue
		}
		if t.Email == "" && t.UserID != "" && s.d.Users != nil {
			e, seen := emails[t.UserID]
			if !seen {
				if u, err := s.d.Users.UserByID(ctx, t.UserID); err == nil {
					e = u.Email
				}
				emails[t.UserID] = e
			}
			t.Email = e
		}
		out = append(out, t)
	}
	return out, nil
}

// taskRow is a task as a row of a queue.
type taskRow struct {
	ID          string
	TxURL       string // the transaction's detail page, if the member may open it
	User        string
	UserURL     string
	Login       string
	Method      string
	Destination string
	Amount      string
	Requested   string
	Age         string
	Status      string
	Flag        string
	HoldRule    string
	HoldNote    string
	PushID      string
	PushURL     string
	PaymentID   string
	PaymentURL  string
	// Four-eyes.
	FirstApprover string
	NeedsSecond   bool
	FirstIsYou    bool
}

func (s *server) taskRow(c *call, t Task) taskRow {
	now := s.opt.Clock.Now()
	row := taskRow{ID: t.ID, User: t.Email, Login: strconv.FormatInt(t.Login, 10), Method: t.MethodID, Destination: t.Destination,
		Amount: amount(t.Amount), Requested: when(t.CreatedAt), Age: age(now, t.Since), Status: words(t.Status), Flag: words(t.Flag),
		HoldRule: words(t.HoldRule), HoldNote: t.HoldNote, PushID: t.PushID, PaymentID: t.PaymentID,
		NeedsSecond: t.FourEyes}
	if row.User == "" {
		row.User = t.UserID
	}
	if t.CreatedAt.IsZero() {
		row.Requested = when(t.Since)
	}
	if s.d.Users != nil && t.UserID != "" && c.can(PermUsersView) {
		row.UserURL = s.opt.Prefix + "/users/" + pathEscape(t.UserID)
	}
	if s.d.Reports != nil && t.ID != "" {
		row.TxURL = s.opt.Prefix + "/transactions/" + pathEscape(t.ID)
	}
	if s.d.Pushes != nil && t.PushID != "" {
		row.PushURL = s.opt.Prefix + "/queues/pushes/" + pathEscape(t.PushID)
	}
	if s.d.Payments != nil && t.PaymentID != "" {
		row.PaymentURL = s.opt.Prefix + "/queues/payments/" + pathEscape(t.PaymentID)
	}
	return row
}

type queueData struct {
	chrome
	Rows      []taskRow
	CanDecide bool
}

// --- withdrawals awaiting approval ---

func (s *server) withdrawals(w http.ResponseWriter, r *http.Request, c *call) {
	s.showWithdrawals(w, r, c, http.StatusOK, "")
}

func (s *server) showWithdrawals(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	ts, err := s.tasks(r.Context(), func(t Task) bool { return t.Kind == TaskApproval })
	if err != nil {
		s.failed(w, r, c, "work queue", err)
		return
	}
	names := s.names(r.Context())
	d := queueData{chrome: s.chrome(c, "queues", "withdrawals"), CanDecide: c.can(PermWithdrawalsDecide)}
	for _, t := range ts {
		row := s.taskRow(c, t)
		if t.FirstApprovedBy != "" {
			row.FirstApprover = who(names, t.FirstApprovedBy)
			row.FirstIsYou = t.FirstApprovedBy == c.actor()
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, status, "bo_withdrawals", errText, notice(r), d)
}

func (s *server) approveWithdrawal(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	dec, err := s.d.Funding.ApproveWithdrawal(r.Context(), id, c.actor())
	if err != nil {
		status, msg := s.userError(r, "approval", err)
		s.showWithdrawals(w, r, c, status, "Withdrawal "+id+" was not approved: "+msg)
		return
	}
	if dec.NeedsSecondApproval {
		s.done(w, r, "/queues/withdrawals", "first_approval", id)
		return
	}
	s.done(w, r, "/queues/withdrawals", "approved", id)
}

func (s *server) rejectWithdrawal(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	reason, ok := text(r, "reason")
	if !ok {
		s.showWithdrawals(w, r, c, http.StatusBadRequest, "Withdrawal "+id+" was not rejected: give a reason (at most 500 characters).")
		return
	}
	if _, err := s.d.Funding.RejectWithdrawal(r.Context(), id, c.actor(), reason); err != nil {
		status, msg := s.userError(r, "rejection", err)
		s.showWithdrawals(w, r, c, status, "Withdrawal "+id+" was not rejected: "+msg)
		return
	}
	s.done(w, r, "/queues/withdrawals", "rejected", id)
}

// text is a required free-text field of a form, trimmed, at most 500
// characters.
func text(r *http.Request, name string) (string, bool) {
	v := strings.TrimSpace(r.PostForm.Get(name))
	return v, v != "" && utf8.RuneCountInString(v) <= 500
}

// --- deposits held by a rule ---

func (s *server) heldDeposits(w http.ResponseWriter, r *http.Request, c *call) {
	s.showHeldDeposits(w, r, c, http.StatusOK, "")
}

func (s *server) showHeldDeposits(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	ts, err := s.tasks(r.Context(), func(t Task) bool { return t.Kind == TaskFlagged && t.Flag == FlagReviewHold })
	if err != nil {
		s.failed(w, r, c, "work queue", err)
		return
	}
	d := queueData{chrome: s.chrome(c, "queues", "deposits"), CanDecide: c.can(PermHoldsDecide)}
	for _, t := range ts {
		d.Rows = append(d.Rows, s.taskRow(c, t))
	}
	s.render(w, status, "bo_deposits", errText, notice(r), d)
}

func (s *server) releaseDeposit(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	note, ok := text(r, "note")
	if !ok {
		s.showHeldDeposits(w, r, c, http.StatusBadRequest, "Deposit "+id+" was not released: write a note (at most 500 characters).")
		return
	}
	if _, err := s.d.Funding.ReleaseDeposit(r.Context(), id, c.actor(), note); err != nil {
		status, msg := s.userError(r, "release", err)
		s.showHeldDeposits(w, r, c, status, "Deposit "+id+" was not released: "+msg)
		return
	}
	s.done(w, r, "/queues/deposits", "released", id)
}

func (s *server) rejectDeposit(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	reason, ok := text(r, "reason")
	if !ok {
		s.showHeldDeposits(w, r, c, http.StatusBadRequest, "Deposit "+id+" was not rejected: give a reason (at most 500 characters).")
		return
	}
	if _, err := s.d.Funding.RejectDeposit(r.Context(), id, c.actor(), reason); err != nil {
		status, msg := s.userError(r, "rejection", err)
		s.showHeldDeposits(w, r, c, status, "Deposit "+id+" was not rejected: "+msg)
		return
	}
	s.done(w, r, "/queues/deposits", "deposit_rejected", id)
}

// --- other flagged deposits and withdrawals ---

func (s *server) flagged(w http.ResponseWriter, r *http.Request, c *call) {
	s.showFlagged(w, r, c, http.StatusOK, "")
}

func (s *server) showFlagged(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	ts, err := s.tasks(r.Context(), func(t Task) bool {
		return t.Kind == TaskFlagged && t.Flag != FlagReviewHold && t.Flag != FlagPaymentReview
	})
	if err != nil {
		s.failed(w, r, c, "work queue", err)
		return
	}
	d := queueData{chrome: s.chrome(c, "queues", "flagged"), CanDecide: c.can(PermPaymentsReview)}
	for _, t := range ts {
		d.Rows = append(d.Rows, s.taskRow(c, t))
	}
	s.render(w, status, "bo_flagged", errText, notice(r), d)
}

func (s *server) clearFlag(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	note, ok := text(r, "note")
	if !ok {
		s.showFlagged(w, r, c, http.StatusBadRequest, "The flag of "+id+" was not cleared: write what you did (at most 500 characters).")
		return
	}
	if err := s.d.Funding.ClearFlag(r.Context(), id, c.actor(), note); err != nil {
		status, msg := s.userError(r, "clearing", err)
		s.showFlagged(w, r, c, status, "The flag of "+id+" was not cleared: "+msg)
		return
	}
	s.done(w, r, "/queues/flagged", "cleared", id)
}

// --- pushes in doubt ---

func (s *server) pushes(w http.ResponseWriter, r *http.Request, c *call) {
	ts, err := s.tasks(r.Context(), func(t Task) bool { return t.Kind == TaskPushInDoubt })
	if err != nil {
		s.failed(w, r, c, "work queue", err)
		return
	}
	d := queueData{chrome: s.chrome(c, "queues", "pushes"), CanDecide: c.can(PermPushesResolve)}
	for _, t := range ts {
		d.Rows = append(d.Rows, s.taskRow(c, t))
	}
	s.render(w, http.StatusOK, "bo_pushes", "", notice(r), d)
}

type eventRow struct {
	At     string
	From   string
	To     string
	Detail string
}

type pushData struct {
	chrome
	ID          string
	Owner       string
	OwnerID     string
	OwnerURL    string
	Login       string
	Type        string
	Amount      string
	Comment     string
	State       string
	InDoubt     bool
	Sends       int
	Evidence    string
	SendingAt   string
	LookupAfter string
	ResolvedBy  string
	Created     string
	Events      []eventRow
	CanResolve  bool
	Note        string
}

func (s *server) pushDetail(w http.ResponseWriter, r *http.Request, c *call) {
	s.showPush(w, r, c, http.StatusOK, "")
}

func (s *server) showPush(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	id := r.PathValue("id")
	p, err := s.d.Pushes.Get(r.Context(), id)
	if err != nil {
		s.failed(w, r, c, "push", err)
		return
	}
	evs, err := s.d.Pushes.Events(r.Context(), id)
	if err != nil {
		s.failed(w, r, c, "push", err)
		return
	}
	d := pushData{chrome: s.chrome(c, "queues", "pushes"), ID: p.ID, Owner: p.Owner, OwnerID: p.OwnerID,
		Login: strconv.FormatInt(p.Change.Login, 10), Type: string(p.Change.Type), Amount: amount(p.Change.Amount), Comment: p.Change.Comment,
		State: words(string(p.State)), InDoubt: p.State == "in_doubt", Sends: p.Sends, Evidence: p.Evidence, SendingAt: whenSec(p.SendingAt),
		LookupAfter: whenSec(p.LookupAfter), ResolvedBy: p.ResolvedBy, Created: whenSec(p.CreatedAt), CanResolve: c.can(PermPushesResolve)}
	if s.d.Reports != nil && p.OwnerID != "" {
		d.OwnerURL = s.opt.Prefix + "/transactions/" + pathEscape(p.OwnerID)
	}
	if r.Method == http.MethodPost {
		d.Note = r.PostForm.Get("note")
	}
	for _, e := range evs {
		d.Events = append(d.Events, eventRow{At: whenSec(e.At), From: words(string(e.From)), To: words(string(e.To)), Detail: e.Detail})
	}
	s.render(w, status, "bo_push", errText, notice(r), d)
}

func (s *server) resolvePush(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	note, ok := text(r, "note")
	if !ok {
		s.showPush(w, r, c, http.StatusBadRequest, "Write what you checked on the trading account (at most 500 characters).")
		return
	}
	var applied bool
	switch r.PostForm.Get("applied") {
	case "yes":
		applied = true
	case "no":
	default:
		s.showPush(w, r, c, http.StatusBadRequest, "Choose “confirm applied” or “confirm not applied”.")
		return
	}
	if _, err := s.d.Pushes.Resolve(r.Context(), id, applied, c.actor(), note); err != nil {
		status, msg := s.userError(r, "resolution", err)
		s.showPush(w, r, c, status, "The push was not resolved: "+msg)
		return
	}
	code := "push_not_applied"
	if applied {
		code = "push_applied"
	}
	s.done(w, r, "/queues/pushes", code, id)
}

// --- payments flagged for review ---

func (s *server) reviews(w http.ResponseWriter, r *http.Request, c *call) {
	ts, err := s.tasks(r.Context(), func(t Task) bool { return t.Kind == TaskFlagged && t.Flag == FlagPaymentReview })
	if err != nil {
		s.failed(w, r, c, "work queue", err)
		return
	}
	d := queueData{chrome: s.chrome(c, "queues", "payments"), CanDecide: c.can(PermPaymentsReview)}
	for _, t := range ts {
		d.Rows = append(d.Rows, s.taskRow(c, t))
	}
	s.render(w, http.StatusOK, "bo_payments", "", notice(r), d)
}

type providerEventRow struct {
	ID       string
	Received string
	Source   string
	Outcome  string
	Body     string
}

type paymentData struct {
	chrome
	ID          string
	Direction   string
	Method      string
	Provider    string
	ProviderRef string
	Customer    string
	CustomerURL string
	Account     string
	Gross       string
	Net         string
	Received    string
	Status      string
	InReview    bool
	Reason      string
	Message     string
	Created     string
	History     []eventRow
	Events      []providerEventRow
	CanResolve  bool
	Note        string
}

func (s *server) paymentDetail(w http.ResponseWriter, r *http.Request, c *call) {
	s.showPayment(w, r, c, http.StatusOK, "")
}

func (s *server) showPayment(w http.ResponseWriter, r *http.Request, c *call, status int, errText string) {
	id := r.PathValue("id")
	p, err := s.d.Payments.Get(r.Context(), id)
	if err != nil {
		s.failed(w, r, c, "payment", err)
		return
	}
	hist, err := s.d.Payments.History(r.Context(), id)
	if err != nil {
		s.failed(w, r, c, "payment", err)
		return
	}
	evs, err := s.d.Payments.Events(r.Context(), id)
	if err != nil {
		s.failed(w, r, c, "payment", err)
		return
	}
	d := paymentData{chrome: s.chrome(c, "queues", "payments"), ID: p.ID, Direction: string(p.Direction), Method: p.MethodID, Provider: p.Provider,
		ProviderRef: p.ProviderRef, Customer: p.CustomerEmail, Account: p.AccountID, Gross: amount(p.Gross), Net: amount(p.Net),
		Received: amount(p.Received), Status: words(string(p.Status)), InReview: p.Status == payments.Review, Reason: words(p.Reason),
		Message: p.Message, Created: whenSec(p.CreatedAt), CanResolve: c.can(PermPaymentsReview)}
	if d.Customer == "" {
		d.Customer = p.CustomerID
	}
	if s.d.Users != nil && p.CustomerID != "" && c.can(PermUsersView) {
		d.CustomerURL = s.opt.Prefix + "/users/" + pathEscape(p.CustomerID)
	}
	if r.Method == http.MethodPost {
		d.Note = r.PostForm.Get("note")
	}
	for _, h := range hist {
		detail := words(h.Reason)
		if h.Actor != "" {
			detail += " (" + h.Actor + ")"
		}
		d.History = append(d.History, eventRow{At: whenSec(h.At), From: words(string(h.From)), To: words(string(h.To)), Detail: strings.TrimSpace(h.Source + " " + detail)})
	}
	for _, e := range evs {
		d.Events = append(d.Events, providerEventRow{ID: e.ID, Received: whenSec(e.ReceivedAt), Source: e.Source, Outcome: string(e.Outcome), Body: prettyJSON(e.Body)})
	}
	s.render(w, status, "bo_payment", errText, notice(r), d)
}

// prettyJSON indents a provider's JSON body for reading (as text; the page
// escapes it); anything else is shown as received, cut at 8 KiB.
func prettyJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) == nil {
		if out, err := json.MarshalIndent(v, "", "  "); err == nil {
			b = out
		}
	}
	if len(b) > 8<<10 {
		return string(b[:8<<10]) + "\n…"
	}
	return string(b)
}

func (s *server) resolvePayment(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	note, ok := text(r, "note")
	if !ok {
		s.showPayment(w, r, c, http.StatusBadRequest, "Write why you decide so (at most 500 characters).")
		return
	}
	to := payments.Status(r.PostForm.Get("to"))
	if to != payments.Succeeded && to != payments.Declined && to != payments.Failed {
		s.showPayment(w, r, c, http.StatusBadRequest, "Choose accept, decline or failed.")
		return
	}
	if _, err := s.d.Payments.ResolveReview(r.Context(), id, to, c.actor(), note); err != nil {
		status, msg := s.userError(r, "resolution", err)
		s.showPayment(w, r, c, status, "The payment was not resolved: "+msg)
		return
	}
	s.done(w, r, "/queues/payments", "payment_resolved", id)
}

// --- home ---

type homeCard struct {
	Label string
	Count int
	URL   string
}

type homeData struct {
	chrome
	Cards []homeCard
}

func (s *server) home(w http.ResponseWriter, r *http.Request, c *call) {
	d := homeData{chrome: s.chrome(c, "", "")}
	if s.d.Funding != nil {
		ts, err := s.d.Funding.Tasks(r.Context())
		if err != nil && !errs.Is(err, errs.Unavailable) {
			s.failed(w, r, c, "work queue", err)
			return
		}
		count := map[string]int{}
		for _, t := range ts {
			switch {
			case t.Kind == TaskApproval:
				count["withdrawals"]++
			case t.Kind == TaskPushInDoubt:
				count["pushes"]++
			case t.Flag == FlagPaymentReview:
				count["payments"]++
			case t.Flag == FlagReviewHold:
				count["deposits"]++
			default:
				count["flagged"]++
			}
		}
		for _, t := range queueTabs {
			if t.available(s.d) {
				d.Cards = append(d.Cards, homeCard{Label: t.label, Count: count[t.id], URL: s.opt.Prefix + t.path})
			}
		}
	}
	s.render(w, http.StatusOK, "bo_home", "", "", d)
}
