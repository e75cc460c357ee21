package notify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// statusCases walks docs/funding.md's state machines: every transition, and
// the e-mail template the trader gets for it ("" for none).
var statusCases = []struct {
	name  string
	event funding.Event
	email string
}{
	{"deposit created", deposit("", "", "created"), ""},
	{"deposit awaiting payment", deposit("", "created", "awaiting_payment"), ""},
	{"deposit paid", deposit("", "awaiting_payment", "paid"), ""},
	{"deposit paid late", deposit("", "expired", "paid"), ""},
	{"deposit crediting", deposit("", "paid", "crediting"), ""},
	{"deposit completed", deposit("", "crediting", "completed"), tmplDepositCompleted},
	{"deposit declined", deposit("", "awaiting_payment", "declined"), ""},
	{"deposit failed", deposit("", "created", "failed"), ""},
	{"deposit expired", deposit("", "awaiting_payment", "expired"), ""},
	{"deposit reversed", flagged(deposit("", "crediting", "reversed"), "platform_refused"), ""},
	{"deposit payment under review", flagged(deposit("", "awaiting_payment", "awaiting_payment"), "payment_review"), ""},
	{"deposit held for review", flagged(deposit("", "awaiting_payment", "paid"), "review_hold"), ""},
	{"deposit released after review", reason(deposit("", "paid", "crediting"), "released"), ""},
	{"deposit rejected after review", flagged(deposit("", "paid", "rejected"), "refund_due"), tmplDepositRejected},
	{"deposit refunded (flag cleared)", reason(deposit("", "rejected", "rejected"), "flag_cleared:refund_due"), ""},
	{"withdrawal requested", withdrawal("", "", "requested"), ""},
	{"withdrawal awaiting 2fa", withdrawal("", "requested", "awaiting_2fa"), ""},
	{"withdrawal debiting", withdrawal("", "awaiting_2fa", "debiting"), ""},
	{"withdrawal code failed", withdrawal("", "awaiting_2fa", "failed"), ""},
	{"withdrawal platform refused", withdrawal("", "debiting", "failed"), ""},
	{"withdrawal held", withdrawal("", "debiting", "held"), ""},
	{"withdrawal awaiting approval", withdrawal("", "held", "awaiting_approval"), ""},
	{"withdrawal auto-approved", withdrawal("", "held", "approved"), tmplWithdrawalApproved},
	{"withdrawal first of two approvals", reason(withdrawal("", "awaiting_approval", "awaiting_approval"), "first_approval"), ""},
	{"withdrawal approved by an operator", withdrawal("", "awaiting_approval", "approved"), tmplWithdrawalApproved},
	{"withdrawal rejected", withdrawal("", "awaiting_approval", "rejected"), tmplWithdrawalRejected},
	{"withdrawal payout sent", withdrawal("", "approved", "payout_sent"), ""},
	{"withdrawal paid", withdrawal("", "payout_sent", "completed"), tmplWithdrawalCompleted},
	{"withdrawal payout failed", withdrawal("", "payout_sent", "failed"), tmplWithdrawalFailed},
	{"withdrawal payout refused", withdrawal("", "approved", "failed"), tmplWithdrawalFailed},
	{"withdrawal returned after rejection", withdrawal("", "rejected", "returned"), tmplWithdrawalReturned},
	{"withdrawal returned after failure", withdrawal("", "failed", "returned"), tmplWithdrawalReturned},
	{"withdrawal return refused", flagged(withdrawal("", "rejected", "rejected"), "return_refused"), ""},
}

func flagged(e funding.Event, flag string) funding.Event {
	e.Flag, e.Reason = flag, flag
	return e
}

func reason(e funding.Event, why string) funding.Event {
	e.Reason = why
	return e
}

func TestHookEnqueuesAnEmailForTheRightStatusesAndAWebhookForEvery(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks/cashier"))
		for i, tc := range statusCases {
			e := tc.event
			e.ID = fmt.Sprintf("%s_%02d", map[string]string{"deposit": "dep", "withdrawal": "wd"}[e.Kind], i)
			r.fire(t, e)
		}
		for i, tc := range statusCases {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("%s_%02d", map[string]string{"deposit": "dep", "withdrawal": "wd"}[tc.event.Kind], i)
				var emails, hooks []string
				for _, d := range r.deliveries(t, Filter{SubjectID: id}) {
					if d.Channel == ChannelEmail {
						emails = append(emails, d.Type)
					} else {
						hooks = append(hooks, d.Type)
					}
					if j := r.job(t, d.JobID); j.State != jobs.Queued || j.DedupKey != d.ID {
						t.Errorf("%s's job is %s with dedup key %q, want queued with the delivery's id", d.ID, j.State, j.DedupKey)
					}
				}
				var wantEmails []string
				if tc.email != "" {
					wantEmails = []string{tc.email}
				}
				if diff := cmp.Diff(wantEmails, emails); diff != "" {
					t.Errorf("e-mails (-want +got):\n%s", diff)
				}
				wantHook := TypeDepositStatusChanged
				if tc.event.Kind == funding.KindWithdrawal {
					wantHook = TypeWithdrawalStatusChanged
				}
				if diff := cmp.Diff([]string{wantHook}, hooks); diff != "" {
					t.Errorf("webhooks (-want +got):\n%s", diff)
				}
			})
		}
		wantEmails := 0
		for _, tc := range statusCases {
			if tc.email != "" {
				wantEmails++
			}
		}
		if got := len(r.jobsOf(t, JobEmail)); got != wantEmails {
			t.Errorf("%d e-mail jobs, want %d", got, wantEmails)
		}
		if got := len(r.jobsOf(t, JobWebhook)); got != len(statusCases) {
			t.Errorf("%d webhook jobs, want %d", got, len(statusCases))
		}
	}, Schema, jobs.Schema)
}

func TestHookIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		rejected := withdrawal("wd_1", "awaiting_approval", "rejected")
		r.fire(t, rejected, rejected) // twice in one transaction
		if n := r.notified.Load(); n != 1 {
			t.Errorf("runner woken %d times after the first commit, want 1", n)
		}
		r.fire(t, rejected) // again later
		if n := r.notified.Load(); n != 1 {
			t.Errorf("a repeated event woke the runner (%d wake-ups), want no new work", n)
		}
		// The same status with a flag is another event; it too only once.
		refused := flagged(withdrawal("wd_1", "rejected", "rejected"), "return_refused")
		r.fire(t, refused)
		r.fire(t, refused)
		// A change that keeps the status may come again later: the flag
		// cleared, then set again.
		cleared := reason(withdrawal("wd_1", "rejected", "rejected"), "flag_cleared:return_refused")
		cleared.At = t0.Add(time.Hour)
		refusedAgain := refused
		refusedAgain.At = t0.Add(2 * time.Hour)
		r.fire(t, cleared, refusedAgain, cleared)

		got := map[string]int{}
		for _, d := range r.deliveries(t, Filter{SubjectID: "wd_1"}) {
			got[d.Channel+" "+d.Type]++
		}
		want := map[string]int{"email withdrawal.rejected": 1, "webhook withdrawal.status_changed": 4}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if n := len(r.jobsOf(t, JobEmail)) + len(r.jobsOf(t, JobWebhook)); n != 5 {
			t.Errorf("%d jobs, want 5", n)
		}
		r.drain(t)
		if n := len(r.mailer.messages()); n != 1 {
			t.Errorf("the trader got %d e-mails, want 1", n)
		}
	}, Schema, jobs.Schema)
}

func TestHookCommitsAndRollsBackWithTheCaller(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		boom := errors.New("the status change failed")
		err := db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
			if err := r.svc.OnFundingEvent(context.Background(), tx, deposit("dep_1", "crediting", "completed")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact = %v, want the caller's error", err)
		}
		if ds := r.deliveries(t, Filter{}); len(ds) != 0 {
			t.Errorf("%d deliveries after a rollback, want none", len(ds))
		}
		if st, _ := jobs.Stats(context.Background(), db); st[jobs.Queued] != 0 {
			t.Errorf("%d jobs queued after a rollback, want none", st[jobs.Queued])
		}
		if n := r.notified.Load(); n != 0 {
			t.Errorf("runner woken %d times after a rollback", n)
		}
		// After the rollback the same event is new.
		r.fire(t, deposit("dep_1", "crediting", "completed"))
		if ds := r.deliveries(t, Filter{}); len(ds) != 2 {
			t.Errorf("%d deliveries after the commit, want an e-mail and a webhook", len(ds))
		}
	}, Schema, jobs.Schema)
}

func TestNoWebhookURLMeansNoWebhookJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, Config{BrandName: "Acme Markets"})
		for i, tc := range statusCases {
			e := tc.event
			e.ID = fmt.Sprintf("x_%02d", i)
			r.fire(t, e)
		}
		if js := r.jobsOf(t, JobWebhook); len(js) != 0 {
			t.Errorf("%d webhook jobs without a URL, want none", len(js))
		}
		if ds := r.deliveries(t, Filter{Channel: ChannelWebhook}); len(ds) != 0 {
			t.Errorf("%d webhook deliveries without a URL, want none", len(ds))
		}
		if js := r.jobsOf(t, JobEmail); len(js) == 0 {
			t.Error("no e-mail jobs: e-mails do not depend on the webhook URL")
		}
	}, Schema, jobs.Schema)
}

func TestHookWithoutAnEmailAddressSendsOnlyTheWebhook(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		e := deposit("dep_1", "crediting", "completed")
		e.Email = " "
		r.fire(t, e)
		ds := r.deliveries(t, Filter{})
		if len(ds) != 1 || ds[0].Channel != ChannelWebhook {
			t.Errorf("deliveries = %+v, want the webhook only", ds)
		}
	}, Schema, jobs.Schema)
}

func TestHookRefusesEventsThatAreNotStatusChanges(t *testing.T) {
	db := dbtest.Open(t, sqlstore.SQLite, Schema, jobs.Schema)
	r := newRig(t, db, Config{})
	tests := []struct {
		name  string
		event funding.Event
	}{
		{"no id", deposit("", "crediting", "completed")},
		{"no status", deposit("dep_1", "crediting", "")},
		{"unknown kind", funding.Event{Kind: "transfer", ID: "tr_1", To: "done"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
				return r.svc.OnFundingEvent(context.Background(), tx, tc.event)
			})
			if errs.CodeOf(err) != errs.Invalid {
				t.Errorf("OnFundingEvent = %v, want EINVALID", err)
			}
		})
	}
}

func TestWebhookSequenceFollowsTheChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		r.fire(t, deposit("dep_1", "", "created"), deposit("dep_1", "created", "awaiting_payment"))
		r.fire(t, deposit("dep_1", "awaiting_payment", "paid"), deposit("dep_1", "paid", "crediting"))
		r.fire(t, deposit("dep_2", "", "created"))
		r.fire(t, deposit("dep_1", "crediting", "completed"))
		got := map[string]int{}
		for _, d := range r.deliveries(t, Filter{Channel: ChannelWebhook}) {
			got[d.SubjectID+" "+d.To] = d.Sequence
		}
		want := map[string]int{"dep_1 created": 1, "dep_1 awaiting_payment": 2, "dep_1 paid": 3, "dep_1 crediting": 4,
			"dep_1 completed": 5, "dep_2 created": 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sequences (-want +got):\n%s", diff)
		}
	}, Schema, jobs.Schema)
}
