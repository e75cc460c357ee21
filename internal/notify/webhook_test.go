package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// received is one request as the fake CRM saw it, with the fake clock's
// time when it arrived.
type received struct {
	body   []byte
	header http.Header
	at     time.Time
}

// crm is a fake broker CRM on 127.0.0.1. The i-th request gets the i-th
// step of its script; requests after the script go to otherwise (200 by
// default).
type crm struct {
	*httptest.Server
	clock   *clock.Fake
	release chan struct{}

	mu        sync.Mutex
	got       []received
	script    []func(w http.ResponseWriter, r *http.Request)
	otherwise func(w http.ResponseWriter, r *http.Request)
}

func newCRM(t *testing.T, c *clock.Fake, script ...func(w http.ResponseWriter, r *http.Request)) *crm {
	t.Helper()
	s := &crm{clock: c, release: make(chan struct{}), script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve)) // listens on 127.0.0.1
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) }) // runs first: frees a hanging handler
	return s
}

func (s *crm) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, received{body: body, header: r.Header.Clone(), at: s.clock.Now()})
	var step func(http.ResponseWriter, *http.Request)
	if n := len(s.got); n <= len(s.script) {
		step = s.script[n-1]
	}
	otherwise := s.otherwise
	s.mu.Unlock()
	switch {
	case step != nil:
		step(w, r)
	case otherwise != nil:
		otherwise(w, r)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (s *crm) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func status(code int, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// hang answers nothing until the client gives up.
func (s *crm) hang(_ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.release:
	}
}

// webhookOnly is a completed deposit whose trader has no e-mail address,
// so its only job is the webhook.
func webhookOnly(id string) funding.Event {
	e := deposit(id, "crediting", "completed")
	e.Email = ""
	return e
}

func (r *rig) onlyWebhook(t *testing.T) Delivery {
	t.Helper()
	ds := r.deliveries(t, Filter{Channel: ChannelWebhook})
	if len(ds) != 1 {
		t.Fatalf("%d webhook deliveries, want 1", len(ds))
	}
	return ds[0]
}

func TestWebhookIsRetriedUntilAcknowledged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		srv := newCRM(t, fc)
		srv.script = []func(http.ResponseWriter, *http.Request){status(500), drop, srv.hang} // then 200
		cfg := webhookConfig(srv.URL + "/hooks/cashier")
		cfg.WebhookTimeout = 250 * time.Millisecond
		r := newRigOn(t, db, fc, cfg)

		r.fire(t, webhookOnly("dep_1"))
		d := r.onlyWebhook(t)
		for attempt, wantStatus := range []int{500, 0, 0} {
			attempt++
			if n := r.runDue(t); n != 1 {
				t.Fatalf("attempt %d: ran %d jobs, want 1", attempt, n)
			}
			d = r.delivery(t, d.ID)
			if d.State != Pending || d.Attempts != attempt || d.LastStatus != wantStatus || d.LastError == "" {
				t.Errorf("after attempt %d: %s, %d attempts, status %d, error %q; want pending, status %d and an error",
					attempt, d.State, d.Attempts, d.LastStatus, d.LastError, wantStatus)
			}
			j := r.job(t, d.JobID)
			base := firstRetry << (attempt - 1)
			if wait := j.RunAt.Sub(fc.Now()); j.State != jobs.Queued || wait < base || wait > base*6/5 {
				t.Errorf("after attempt %d the job is %s, due in %v; want queued, due in %v to %v", attempt, j.State, wait, base, base*6/5)
			}
			if n := r.runDue(t); n != 0 {
				t.Errorf("after attempt %d a job ran before it was due", attempt)
			}
			fc.Set(j.RunAt)
		}
		if n := r.runDue(t); n != 1 {
			t.Fatalf("fourth attempt: ran %d jobs, want 1", n)
		}
		d = r.delivery(t, d.ID)
		if d.State != Delivered || d.Attempts != 4 || d.LastStatus != 200 || !d.DeliveredAt.Equal(fc.Now()) {
			t.Errorf("after the acknowledgement: %s, %d attempts, status %d, delivered at %v", d.State, d.Attempts, d.LastStatus, d.DeliveredAt)
		}
		if j := r.job(t, d.JobID); j.State != jobs.Done {
			t.Errorf("job is %s, want done", j.State)
		}

		// Nothing more is sent, not later and not if the job ran again.
		fc.Advance(30 * 24 * time.Hour)
		if n := r.runDue(t); n != 0 {
			t.Errorf("%d jobs ran after the acknowledgement", n)
		}
		if err := r.svc.JobHandlers()[JobWebhook](context.Background(), r.job(t, d.JobID)); err != nil {
			t.Errorf("running the delivered job again: %v", err)
		}

		got := srv.requests()
		if len(got) != 4 {
			t.Fatalf("the CRM got %d requests, want 4", len(got))
		}
		var event WebhookEvent
		if err := json.Unmarshal(got[0].body, &event); err != nil || event.ID != d.ID {
			t.Errorf("body's id = %q (%v), want the delivery's %s", event.ID, err, d.ID)
		}
		for i, req := range got {
			if string(req.body) != d.Body {
				t.Errorf("attempt %d sent another body:\n%s\nwant\n%s", i+1, req.body, d.Body)
			}
			sig := req.header.Get(SignatureHeader)
			if err := VerifySignature(testSecret, sig, req.body, req.at, time.Minute); err != nil {
				t.Errorf("attempt %d: signature %q does not verify: %v", i+1, sig, err)
			}
			if want := "t=" + strconv.FormatInt(req.at.Unix(), 10) + ","; !strings.HasPrefix(sig, want) {
				t.Errorf("attempt %d: signature %q is not of the attempt's time %s", i+1, sig, want)
			}
			if id := req.header.Get(EventIDHeader); id != d.ID {
				t.Errorf("attempt %d: %s = %q, want %s", i+1, EventIDHeader, id, d.ID)
			}
			if n := req.header.Get(AttemptHeader); n != strconv.Itoa(i+1) {
				t.Errorf("attempt %d: %s = %q", i+1, AttemptHeader, n)
			}
			if ct := req.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("attempt %d: Content-Type %q", i+1, ct)
			}
		}
	}, Schema, jobs.Schema)
}

func TestWebhookAnswers(t *testing.T) {
	tests := []struct {
		status int
		want   State
	}{
		{200, Delivered}, {201, Delivered}, {202, Delivered}, {204, Delivered},
		{302, Pending}, // redirects are not followed
		{400, Pending}, {401, Pending}, {404, Pending}, {410, Pending}, {500, Pending}, {502, Pending}, {503, Pending},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		fc := clock.NewFake(t0)
		srv := newCRM(t, fc)
		answers := map[string]int{} // by event id; written before the jobs run
		srv.otherwise = func(w http.ResponseWriter, req *http.Request) {
			code := answers[req.Header.Get(EventIDHeader)]
			if code == http.StatusFound {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(code)
		}
		r := newRigOn(t, db, fc, webhookConfig(srv.URL))
		for _, tc := range tests {
			r.fire(t, webhookOnly(fmt.Sprintf("dep_%d", tc.status)))
		}
		for _, d := range r.deliveries(t, Filter{}) {
			answers[d.ID], _ = strconv.Atoi(strings.TrimPrefix(d.SubjectID, "dep_"))
		}
		r.drain(t)
		for _, tc := range tests {
			t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
				ds := r.deliveries(t, Filter{SubjectID: fmt.Sprintf("dep_%d", tc.status)})
				if len(ds) != 1 {
					t.Fatalf("%d deliveries", len(ds))
				}
				if d := ds[0]; d.State != tc.want || d.LastStatus != tc.status || d.Attempts != 1 {
					t.Errorf("answer %d: %s, status %d, %d attempts; want %s", tc.status, d.State, d.LastStatus, d.Attempts, tc.want)
				}
			})
		}
		if n := len(srv.requests()); n != len(tests) {
			t.Errorf("the CRM got %d requests, want %d (a redirect is not followed)", n, len(tests))
		}
	}, Schema, jobs.Schema)
}

func TestDeadWebhookIsListedAndCanBeRedelivered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		fc := clock.NewFake(t0)
		srv := newCRM(t, fc, status(503, "Retry-After", "3600"), status(503), status(400)) // then 200
		cfg := webhookConfig(srv.URL)
		cfg.MaxAttempts = 3
		r := newRigOn(t, db, fc, cfg)

		r.fire(t, webhookOnly("dep_1"))
		d := r.onlyWebhook(t)
		r.runDue(t)
		if j := r.job(t, d.JobID); !j.RunAt.Equal(fc.Now().Add(time.Hour)) {
			t.Errorf("after Retry-After: 3600 the job is due at %v, want an hour later", j.RunAt)
		}
		for range 2 {
			fc.Set(r.job(t, d.JobID).RunAt)
			if n := r.runDue(t); n != 1 {
				t.Fatalf("ran %d jobs, want 1", n)
			}
		}
		d = r.delivery(t, d.ID)
		if d.State != Dead || d.Attempts != 3 || d.LastStatus != 400 || !strings.Contains(d.LastError, "400") {
			t.Errorf("after the last attempt: %s, %d attempts, status %d, error %q", d.State, d.Attempts, d.LastStatus, d.LastError)
		}
		if j := r.job(t, d.JobID); j.State != jobs.Dead {
			t.Errorf("job is %s, want dead", j.State)
		}
		dead := r.deliveries(t, Filter{Channel: ChannelWebhook, State: Dead})
		if len(dead) != 1 || dead[0].ID != d.ID {
			t.Errorf("dead webhooks = %+v, want %s", dead, d.ID)
		}
		if ps := r.deliveries(t, Filter{State: Pending}); len(ps) != 0 {
			t.Errorf("%d pending deliveries, want none", len(ps))
		}

		for _, tc := range []struct {
			name, id, by string
			want         errs.Code
		}{
			{"no actor", d.ID, " ", errs.Invalid},
			{"unknown", "evt_unknown", "staff:stf_1", errs.NotFound},
		} {
			if err := r.svc.Redeliver(ctx, tc.id, tc.by); errs.CodeOf(err) != tc.want {
				t.Errorf("Redeliver, %s: %v, want %s", tc.name, err, tc.want)
			}
		}
		if err := r.svc.Redeliver(ctx, d.ID, "staff:stf_1"); err != nil {
			t.Fatalf("Redeliver: %v", err)
		}
		recs := r.audit.all()
		if len(recs) != 1 || recs[0].Actor != "staff:stf_1" || recs[0].Action != "notification.redelivered" || recs[0].Subject != d.ID ||
			recs[0].Detail["subject"] != "dep_1" {
			t.Errorf("audit records = %+v", recs)
		}
		if got := r.delivery(t, d.ID).State; got != Pending {
			t.Errorf("after Redeliver the delivery is %s, want pending", got)
		}
		if n := r.runDue(t); n != 1 {
			t.Fatalf("after Redeliver ran %d jobs, want 1", n)
		}
		d = r.delivery(t, d.ID)
		if d.State != Delivered || d.Attempts != 4 {
			t.Errorf("after redelivery: %s, %d attempts", d.State, d.Attempts)
		}
		if err := r.svc.Redeliver(ctx, d.ID, "staff:stf_1"); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("Redeliver of a delivered webhook: %v, want ECONFLICT", err)
		}
		got := srv.requests()
		if len(got) != 4 || string(got[3].body) != string(got[0].body) {
			t.Errorf("the CRM got %d requests; the redelivered body must be the first one", len(got))
		}
	}, Schema, jobs.Schema)
}

func TestWebhookEnqueuedBeforeTheURLWasRemovedIsDead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		on := newRig(t, db, webhookConfig("https://crm.broker.example/hooks"))
		on.fire(t, webhookOnly("dep_1"))
		off := newRig(t, db, Config{}) // restarted without the setting
		off.drain(t)
		d := off.onlyWebhook(t)
		if d.State != Dead || !strings.Contains(d.LastError, "switched off") {
			t.Errorf("delivery is %s (%q), want dead because webhooks are off", d.State, d.LastError)
		}
	}, Schema, jobs.Schema)
}

func TestWebhookBody(t *testing.T) {
	e := withdrawal("wd_0192", "awaiting_approval", "rejected")
	e.At = time.Date(2026, 11, 21, 14, 30, 5, 123456000, time.FixedZone("CET", 3600))
	e.Reason = "rejected"
	body, typ, err := webhookBody("evt_1", 3, e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_1","type":"withdrawal.status_changed","occurredAt":"2026-11-21T13:30:05.123456Z","data":{` +
		`"kind":"withdrawal","id":"wd_0192","sequence":3,"userId":"usr_7","login":12345678,"methodId":"bank-transfer",` +
		`"amount":"1234.50","currency":"USD","credit":"1234.50","creditCurrency":"USD",` +
		`"from":"awaiting_approval","to":"rejected","flag":"","reason":"rejected"}}`
	if typ != TypeWithdrawalStatusChanged || string(body) != want {
		t.Errorf("body (%s):\n%s\nwant\n%s", typ, body, want)
	}

	created := deposit("dep_1", "", "created")
	created.Credit = money.Amount{}
	created.Amount = money.New(1, money.MustCurrency("JPY"))
	body, typ, err = webhookBody("evt_2", 1, created)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	data := got["data"].(map[string]any)
	wantData := map[string]any{"kind": "deposit", "id": "dep_1", "sequence": 1.0, "userId": "usr_7", "login": 12345678.0,
		"methodId": "card-eur", "amount": "1", "currency": "JPY", "credit": nil, "creditCurrency": nil, "from": nil,
		"to": "created", "flag": "", "reason": ""}
	if typ != TypeDepositStatusChanged || !cmp.Equal(wantData, data) {
		t.Errorf("new deposit's data (-want +got):\n%s", cmp.Diff(wantData, data))
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		attempt int
		asked   time.Duration
		min     time.Duration
	}{
		{1, 0, 30 * time.Second},
		{2, 0, time.Minute},
		{3, 0, 2 * time.Minute},
		{6, 0, 16 * time.Minute},
		{10, 0, 256 * time.Minute},
		{11, 0, 6 * time.Hour},
		{25, 0, 6 * time.Hour},
		{1000, 0, 6 * time.Hour},
		{1, 10 * time.Minute, 10 * time.Minute}, // Retry-After beyond the schedule
		{3, 5 * time.Second, 2 * time.Minute},   // Retry-After within it
		{1, 48 * time.Hour, 6 * time.Hour},      // capped
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("attempt %d asked %v", tc.attempt, tc.asked), func(t *testing.T) {
			got := retryDelay("evt_x", tc.attempt, tc.asked)
			if got < tc.min || got > tc.min*6/5 {
				t.Errorf("retryDelay = %v, want %v to %v", got, tc.min, tc.min*6/5)
			}
		})
	}
	spread := map[time.Duration]bool{}
	for i := range 20 {
		spread[retryDelay(fmt.Sprintf("evt_%d", i), 5, 0)] = true
	}
	if len(spread) < 10 {
		t.Errorf("20 webhooks failing together retry at only %d distinct delays", len(spread))
	}
}

func TestNewChecksTheConfig(t *testing.T) {
	db := &sqlstore.DB{}
	m := &fakeMailer{}
	tests := []struct {
		name string
		deps Deps
		cfg  Config
		ok   bool
	}{
		{"no webhooks", Deps{DB: db, Mailer: m}, Config{}, true},
		{"webhooks", Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "https://crm.example/h", CRMWebhookSecret: testSecret}, true},
		{"no database", Deps{Mailer: m}, Config{}, false},
		{"no mailer", Deps{DB: db}, Config{}, false},
		{"relative URL", Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "/hooks", CRMWebhookSecret: testSecret}, false},
		{"not http", Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "ftp://crm.example/h", CRMWebhookSecret: testSecret}, false},
		{"URL without a secret", Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "https://crm.example/h"}, false},
		{"short secret", Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "https://crm.example/h", CRMWebhookSecret: "short"}, false},
		{"negative attempts", Deps{DB: db, Mailer: m}, Config{MaxAttempts: -1}, false},
		{"negative timeout", Deps{DB: db, Mailer: m}, Config{WebhookTimeout: -time.Second}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.deps, tc.cfg)
			if tc.ok && err != nil {
				t.Errorf("New = %v, want success", err)
			}
			if !tc.ok && errs.CodeOf(err) != errs.Invalid {
				t.Errorf("New = %v, want EINVALID", err)
			}
		})
	}
	_, err := New(Deps{DB: db, Mailer: m}, Config{CRMWebhookURL: "https://crm:hunter2@crm.example/h", CRMWebhookSecret: "short"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v shows the URL's password", err)
	}
}
