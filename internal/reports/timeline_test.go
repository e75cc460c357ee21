package reports_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// step is an expected timeline entry: its source, a part of its What, and
// the actor if one must be named.
type step struct {
	source reports.Source
	what   string
	actor  string
}

// checkTimeline checks that tl's entries are in time order and contain
// want as a subsequence.
func checkTimeline(t *testing.T, tl reports.Timeline, want []step) {
	t.Helper()
	for i := 1; i < len(tl.Entries); i++ {
		if tl.Entries[i].At.Before(tl.Entries[i-1].At) {
			t.Errorf("entry %d (%s) is before entry %d (%s)", i, tl.Entries[i].At, i-1, tl.Entries[i-1].At)
		}
	}
	next := 0
	for _, e := range tl.Entries {
		if next < len(want) && e.Source == want[next].source && strings.Contains(e.What, want[next].what) &&
			(want[next].actor == "" || e.Actor == want[next].actor) {
			next++
		}
	}
	if next < len(want) {
		var got []string
		for _, e := range tl.Entries {
			got = append(got, fmt.Sprintf("%s %s %q by %q", e.At.Format("15:04:05.000"), e.Source, e.What, e.Actor))
		}
		t.Errorf("timeline lacks %+v (after %d expected entries in order); it has:\n%s", want[next], next, strings.Join(got, "\n"))
	}
}

func TestTimelineOfACompletedDeposit(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		d := s.deposits["aliceDep"]
		tl, err := r.rep.Timeline(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tl.Row.ID != d.ID || tl.Row.State != "completed" || tl.PaymentID != d.PaymentID || len(tl.PushIDs) != 1 || tl.PushIDs[0] != d.PushID {
			t.Errorf("timeline of %s: row %+v, payment %s, pushes %v; want payment %s, push %s", d.ID, tl.Row, tl.PaymentID, tl.PushIDs, d.PaymentID, d.PushID)
		}
		checkTimeline(t, tl, []step{
			{reports.SourceSession, "cashier screen opened", ""},
			{reports.SourceFunding, "created", ""},
			{reports.SourcePayment, "payment created", ""},
			{reports.SourceProvider, "sandbox answer at start", ""},
			{reports.SourceFunding, "created → awaiting_payment", ""},
			{reports.SourceProvider, "sandbox webhook", ""},
			// The sandbox delivers a change's events in order: the card is
			// authorised (the deposit is paid), then captured.
			{reports.SourcePayment, "pending → authorised", ""},
			{reports.SourceFunding, "awaiting_payment → paid", ""},
			{reports.SourceFunding, "paid → crediting", ""},
			{reports.SourcePush, "push queued", ""},
			{reports.SourcePayment, "authorised → succeeded", ""},
			{reports.SourcePush, "push sending → applied", ""},
			{reports.SourceFunding, "crediting → completed", ""},
		})
		if got := tl.Entries[0].Detail; got != "cashier session (sso) for account 8673590" {
			t.Errorf("session entry detail %q", got)
		}
		found := false
		for _, e := range tl.Entries {
			if e.Source == reports.SourceProvider && strings.Contains(e.Detail, "type payment.succeeded") {
				found = true
			}
			if e.Source == reports.SourcePush && !strings.HasPrefix(e.Detail, d.PushID) {
				t.Errorf("push entry %q does not name push %s", e.Detail, d.PushID)
			}
		}
		if !found {
			t.Error("no provider event says payment.succeeded")
		}
	})
}

func TestTimelineOfAnApprovedWithdrawal(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		w := s.withdrawals["aliceWd"]
		tl, err := r.rep.Timeline(context.Background(), w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tl.Row.Kind != reports.KindWithdrawal || tl.Row.State != "completed" || tl.PaymentID != w.PaymentID || len(tl.PushIDs) != 1 {
			t.Errorf("row %+v, payment %s, pushes %v", tl.Row, tl.PaymentID, tl.PushIDs)
		}
		checkTimeline(t, tl, []step{
			{reports.SourceSession, "cashier screen opened", ""},
			{reports.SourceFunding, "requested", ""},
			{reports.SourceFunding, "requested → debiting", ""},
			{reports.SourcePush, "push queued", ""},
			{reports.SourcePush, "push sending → applied", ""},
			{reports.SourceFunding, "debiting → held", ""},
			{reports.SourceFunding, "held → awaiting_approval", ""},
			{reports.SourceFunding, "awaiting_approval → approved", "staff:olga"},
			{reports.SourcePayment, "payment created", ""},
			{reports.SourceProvider, "sandbox answer at start", ""},
			{reports.SourceFunding, "approved → payout_sent", ""},
			{reports.SourceFunding, "payout_sent → completed", ""},
		})
	})
}

func TestTimelineOfARejectedWithdrawal(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		w := s.withdrawals["bobWd"]
		tl, err := r.rep.Timeline(context.Background(), w.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkTimeline(t, tl, []step{
			{reports.SourceFunding, "held → awaiting_approval", ""},
			{reports.SourceFunding, "awaiting_approval → rejected", "staff:olga"},
			{reports.SourcePush, "push queued", ""},
			{reports.SourcePush, "push sending → applied", ""},
			{reports.SourceFunding, "rejected → returned", ""},
		})
		for _, e := range tl.Entries {
			// Bob's screen of day 1 had expired; nothing links it.
			if e.Source == reports.SourceSession || e.Source == reports.SourcePayment {
				t.Errorf("unexpected entry %+v: no screen was open and no payout was made", e)
			}
			if strings.HasSuffix(e.What, "→ rejected") && !strings.Contains(e.Detail, "The holder's name differs.") {
				t.Errorf("the rejection %q does not give the operator's reason", e.Detail)
			}
		}
		if len(tl.PushIDs) != 2 || tl.PushIDs[1] != w.ReturnPushID {
			t.Errorf("pushes %v, want the debit and the return %s", tl.PushIDs, w.ReturnPushID)
		}
	})
}

func TestTimelineOfAnUnknownID(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		drive(r)
		for _, id := range []string{"dep_01900000-0000-7000-8000-000000000000", "wd_01900000-0000-7000-8000-000000000000", "x", "", "dep_'; DROP TABLE funding_history; --"} {
			if _, err := r.rep.Timeline(context.Background(), id); !errs.Is(err, errs.NotFound) {
				t.Errorf("Timeline(%q): %v, want ENOTFOUND", id, err)
			}
		}
	})
}
