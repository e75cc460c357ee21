package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// payCard submits the hosted card form with a test card.
func (r *rig) payCard(p psp.Payment, number string) {
	r.t.Helper()
	status, loc, body := r.do("POST", p.RedirectURL+"/card", url.Values{"number": {number}, "expiry": {"12/30"}, "cvc": {"123"}}, nil)
	if status != http.StatusSeeOther {
		r.t.Fatalf("card form: %d %s %.300s", status, loc, body)
	}
	r.clk.Advance(time.Millisecond)
}

func (r *rig) control(p psp.Payment, action string) {
	r.t.Helper()
	status, loc, _ := r.do("POST", r.srv.URL+Prefix+"/control/"+p.ProviderRef+"/"+action, url.Values{}, nil)
	if status != http.StatusSeeOther || loc == "" || strings.Contains(loc, "error=") {
		r.t.Fatalf("control %s: %d %s", action, status, loc)
	}
	r.clk.Advance(time.Millisecond)
}

func TestCardCountryIsReported(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		ctx := context.Background()
		tests := []struct {
			name, number, country string
		}{
			{"a US card", "4242424242424242", "US"},
			{"the Brazilian card", "4000000760000002", "BR"},
			{"a 3-D Secure card after its code", "4000000000003220", "US"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := r.start(psp.Card, money.New(2500, usd))
				r.payCard(p, tc.number)
				if tc.number == "4000000000003220" {
					status, _, _ := r.do("POST", p.RedirectURL+"/3ds", url.Values{"code": {ThreeDSCode}}, nil)
					if status != http.StatusSeeOther {
						t.Fatalf("3-D Secure code: %d", status)
					}
				}
				got, err := r.client.PaymentStatus(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != psp.Succeeded || got.Instrument.Country != tc.country || got.Instrument.Last4 != tc.number[12:] {
					t.Errorf("status %s, instrument %+v; want succeeded, country %s", got.Status, got.Instrument, tc.country)
				}
			})
		}
		// The webhook carries the country too, and a payout to the
		// Brazilian card's token is paid at once.
		p := r.start(psp.Card, money.New(1000, usd))
		r.payCard(p, "4000000760000002")
		r.drain()
		var token string
		for _, ev := range r.received() {
			if ev.Payment != nil && ev.Payment.ID == p.ID && ev.Payment.Status == psp.Succeeded {
				if ev.Payment.Instrument.Country != "BR" {
					t.Errorf("webhook instrument %+v, want country BR", ev.Payment.Instrument)
				}
				token = ev.Payment.Instrument.Token
			}
		}
		if token == "" {
			t.Fatal("no succeeded webhook with a card token")
		}
		out, err := r.client.StartPayout(ctx, psp.PayoutRequest{ID: "pay_payout_br", Method: psp.Card, Amount: money.New(500, usd),
			Destination: psp.Destination{CardToken: token}})
		if err != nil || out.Status != psp.Succeeded {
			t.Errorf("payout to the Brazilian card: %+v, %v", out, err)
		}
	}, Schema, jobs.Schema)
}

func TestReportListsWhatTheSandboxRecorded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		ctx := context.Background()
		start := r.clk.Now()

		paid := r.start(psp.Card, money.New(10000, usd))
		r.payCard(paid, "4242424242424242")
		declined := r.start(psp.Card, money.New(2000, usd))
		r.payCard(declined, "4000000000000002")
		bank := r.start(psp.BankTransfer, money.New(10001, jpy))
		r.control(bank, "arrive-partial")
		waiting := r.start(psp.BankTransfer, money.New(5000, usd))
		payout, err := r.client.StartPayout(ctx, psp.PayoutRequest{ID: "pay_payout_1", Method: psp.BankTransfer, Amount: money.New(7500, usd),
			Destination: psp.Destination{IBAN: "DE89370400440532013000", HolderName: "Alice Archer"}})
		if err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(time.Millisecond)
		rejected, err := r.client.StartPayout(ctx, psp.PayoutRequest{ID: "pay_payout_2", Method: psp.BankTransfer, Amount: money.New(100, usd),
			Destination: psp.Destination{IBAN: RejectedIBAN, HolderName: "Bob"}})
		if err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(time.Second)

		type row struct {
			ID, Ref string
			Kind    psp.EventKind
			Status  psp.Status
			Amount  money.Amount
		}
		rows := func(lines []psp.ReportLine) []row {
			out := make([]row, len(lines))
			for i, l := range lines {
				out[i] = row{l.ID, l.ProviderRef, l.Kind, l.Status, l.Amount}
				if l.Fee != (money.Amount{}) || l.At.IsZero() {
					t.Errorf("line %s: fee %v, at %v; want no fee and a time", l.ID, l.Fee, l.At)
				}
			}
			return out
		}
		// Oldest change first: the waiting bank transfer was created before
		// the payouts and has not changed since.
		want := []row{
			{paid.ID, paid.ProviderRef, psp.PaymentEvent, psp.Succeeded, money.New(10000, usd)},
			{declined.ID, declined.ProviderRef, psp.PaymentEvent, psp.Declined, money.New(2000, usd)},
			{bank.ID, bank.ProviderRef, psp.PaymentEvent, psp.Succeeded, money.New(5000, jpy)}, // what was received
			{waiting.ID, waiting.ProviderRef, psp.PaymentEvent, psp.Pending, money.New(5000, usd)},
			{payout.ID, payout.ProviderRef, psp.PayoutEvent, psp.Succeeded, money.New(7500, usd)},
			{rejected.ID, rejected.ProviderRef, psp.PayoutEvent, psp.Declined, money.New(100, usd)},
		}
		lines, err := r.client.Report(ctx, time.Time{}, r.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, rows(lines)); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}

		// The window is by last change: from the bank transfer's arrival on,
		// and up to (not including) the payouts.
		var bankAt time.Time
		for _, l := range lines {
			if l.ID == bank.ID {
				bankAt = l.At
			}
		}
		lines, err = r.client.Report(ctx, bankAt, payout.UpdatedAt)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[2:4], rows(lines)); diff != "" {
			t.Errorf("report of a window (-want +got):\n%s", diff)
		}
		if lines, err := r.client.Report(ctx, time.Time{}, start); err != nil || len(lines) != 0 {
			t.Errorf("report before anything happened: %v, %v", lines, err)
		}

		// Pages: two lines at a time, following the cursor, give the same
		// lines.
		var paged []string
		after := ""
		for range 10 {
			q := url.Values{"limit": {"2"}}
			if after != "" {
				q.Set("after", after)
			}
			status, _, body := r.do("GET", r.srv.URL+Prefix+"/api/report?"+q.Encode(), nil, http.Header{"Authorization": {"Bearer " + testKey}})
			if status != http.StatusOK {
				t.Fatalf("report page: %d %s", status, body)
			}
			var page wireReport
			if err := json.Unmarshal([]byte(body), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Lines) > 2 {
				t.Fatalf("a page of %d lines with limit 2", len(page.Lines))
			}
			for _, l := range page.Lines {
				paged = append(paged, l.Reference)
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		wantIDs := []string{paid.ID, declined.ID, bank.ID, waiting.ID, payout.ID, rejected.ID}
		if diff := cmp.Diff(wantIDs, paged); diff != "" {
			t.Errorf("paged report (-want +got):\n%s", diff)
		}
	}, Schema, jobs.Schema)
}

func TestReportRefusesBadRequests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db, nil)
		auth := http.Header{"Authorization": {"Bearer " + testKey}}
		tests := []struct {
			name   string
			query  string
			header http.Header
			want   int
		}{
			{"no API key", "", nil, http.StatusUnauthorized},
			{"a wrong API key", "", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
			{"from is not a time", "from=yesterday", auth, http.StatusBadRequest},
			{"to is not a time", "to=2026-13-01", auth, http.StatusBadRequest},
			{"to before from", "from=2026-03-02T10:00:00Z&to=2026-03-01T10:00:00Z", auth, http.StatusBadRequest},
			{"limit zero", "limit=0", auth, http.StatusBadRequest},
			{"limit too large", "limit=1001", auth, http.StatusBadRequest},
			{"a bad cursor", "after=nonsense", auth, http.StatusBadRequest},
			{"a good request", "from=2026-03-01T10:00:00Z&limit=10", auth, http.StatusOK},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if status, _, body := r.do("GET", r.srv.URL+Prefix+"/api/report?"+tc.query, nil, tc.header); status != tc.want {
					t.Errorf("answered %d, want %d: %.200s", status, tc.want, body)
				}
			})
		}
		wrong, err := NewClient(ClientOptions{BaseURL: r.srv.URL + Prefix, APIKey: "wrong", WebhookSecret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrong.Report(context.Background(), time.Time{}, time.Time{}); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("Report with a wrong key: %v, want EUNAUTHORIZED", err)
		}
	}, Schema, jobs.Schema)
}
