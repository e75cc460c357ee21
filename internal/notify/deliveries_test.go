package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

func TestDeliveriesFilterAndPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db, webhookConfig(""))
		r.fire(t, withdrawal("wd_old", "payout_sent", "completed"))
		r.drain(t) // delivered
		r.clock.Advance(48 * time.Hour)
		r.mailer.failNext(errs.E(errs.Invalid, "smtp", "not an address"))
		r.fire(t, withdrawal("wd_bad", "payout_sent", "completed"))
		r.drain(t) // dead
		r.clock.Advance(time.Hour)
		r.fire(t, withdrawal("wd_new", "awaiting_approval", "approved")) // pending

		subjects := func(ds []Delivery) string {
			var s []string
			for _, d := range ds {
				s = append(s, d.SubjectID+":"+string(d.State))
			}
			return strings.Join(s, " ")
		}
		tests := []struct {
			name string
			f    Filter
			want string
		}{
			{"all, newest first", Filter{}, "wd_new:pending wd_bad:dead wd_old:delivered"},
			{"dead", Filter{State: Dead}, "wd_bad:dead"},
			{"delivered", Filter{State: Delivered}, "wd_old:delivered"},
			{"by subject", Filter{SubjectID: "wd_new"}, "wd_new:pending"},
			{"no webhooks", Filter{Channel: ChannelWebhook}, ""},
			{"before a time", Filter{Before: t0.Add(48 * time.Hour)}, "wd_old:delivered"},
			{"limit", Filter{Limit: 1}, "wd_new:pending"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got := subjects(r.deliveries(t, tc.f)); got != tc.want {
					t.Errorf("Deliveries = %q, want %q", got, tc.want)
				}
			})
		}
		for _, f := range []Filter{{Channel: "sms"}, {State: "lost"}, {Limit: -1}} {
			if _, err := r.svc.Deliveries(ctx, f); errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Deliveries(%+v) = %v, want EINVALID", f, err)
			}
		}
		if _, err := r.svc.Delivery(ctx, "eml_nope"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("Delivery(unknown) = %v, want ENOTFOUND", err)
		}

		if _, err := r.svc.Purge(ctx, r.clock.Now(), 0); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Purge with limit 0 = %v, want EINVALID", err)
		}
		n, err := r.svc.Purge(ctx, r.clock.Now().Add(time.Hour), 100)
		if err != nil || n != 1 {
			t.Errorf("Purge = %d, %v; want the one delivered", n, err)
		}
		if got := subjects(r.deliveries(t, Filter{})); got != "wd_new:pending wd_bad:dead" {
			t.Errorf("after Purge: %q", got)
		}
	}, Schema, jobs.Schema)
}

// TestStateFollowsAJobTheHandlerCouldNotRecord covers a job that ends
// without its handler recording the outcome: the runner kills a job whose
// last attempt's lease ended, and a handler may fail to record a success.
// The delivery shows the job's outcome.
func TestStateFollowsAJobTheHandlerCouldNotRecord(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		r.fire(t, webhookOnly("dep_1"), webhookOnly("dep_2"))
		ds := r.deliveries(t, Filter{})
		outcome := map[string]string{ds[0].JobID: "dead", ds[1].JobID: "done"}
		for id, state := range outcome {
			// What the runner writes; the handler never ran.
			if _, err := db.Exec(ctx, `UPDATE jobs SET state = ? WHERE id = ?`, state, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range ds {
			want := map[string]State{"dead": Dead, "done": Delivered}[outcome[d.JobID]]
			if got := r.delivery(t, d.ID).State; got != want {
				t.Errorf("delivery of a %s job is %s, want %s", outcome[d.JobID], got, want)
			}
		}
		if dead := r.deliveries(t, Filter{State: Dead}); len(dead) != 1 || dead[0].ID != ds[0].ID {
			t.Errorf("dead deliveries = %+v", dead)
		}
	}, Schema, jobs.Schema)
}

func TestHookStoresAnEventWithBadBytes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		e := withdrawal("wd_1", "payout_sent", "completed")
		e.Destination = "IBAN \xff\x00 5555"
		e.Reason = "bad \xfe byte"
		r.fire(t, e)
		for _, d := range r.deliveries(t, Filter{}) {
			if d.Channel == ChannelEmail && !strings.Contains(d.Body, "IBAN \uFFFD 5555") {
				t.Errorf("e-mail text does not show the cleaned destination:\n%s", d.Body)
			}
		}
	}, Schema, jobs.Schema)
}
