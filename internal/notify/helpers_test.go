package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/mail"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)

// testSecret signs the webhooks of the tests.
const testSecret = "whsec_0123456789abcdef"

var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeMailer collects the messages it is given. Errors queued with failNext
// are returned, one per Send, before it accepts messages again.
type fakeMailer struct {
	mu    sync.Mutex
	sent  []mail.Message
	fails []error
	calls int
}

func (m *fakeMailer) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if len(m.fails) > 0 {
		err := m.fails[0]
		m.fails = m.fails[1:]
		return err
	}
	m.sent = append(m.sent, msg)
	return nil
}

func (m *fakeMailer) failNext(errs ...error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fails = append(m.fails, errs...)
}

func (m *fakeMailer) sends() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

func (m *fakeMailer) messages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mail.Message(nil), m.sent...)
}

// auditLog is an audit.Recorder that keeps what it is given.
type auditLog struct {
	mu      sync.Mutex
	records []audit.Record
}

func (a *auditLog) RecordTx(_ context.Context, _ *sqlstore.Tx, r audit.Record) error {
	if r.Actor == "" || r.Action == "" {
		return errors.New("audit record without actor or action")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return nil
}

func (a *auditLog) all() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Record(nil), a.records...)
}

// rig is a notify service on a real database with a real job runner, both
// on a fake clock.
type rig struct {
	db       *sqlstore.DB
	clock    *clock.Fake
	mailer   *fakeMailer
	audit    *auditLog
	svc      *Service
	runner   *jobs.Runner
	notified atomic.Int64
}

func newRig(t *testing.T, db *sqlstore.DB, cfg Config) *rig {
	t.Helper()
	return newRigOn(t, db, clock.NewFake(t0), cfg)
}

// newRigOn is newRig on a given fake clock.
func newRigOn(t *testing.T, db *sqlstore.DB, fc *clock.Fake, cfg Config) *rig {
	t.Helper()
	r := &rig{db: db, clock: fc, mailer: &fakeMailer{}, audit: &auditLog{}}
	svc, err := New(Deps{DB: db, Clock: r.clock, Mailer: r.mailer, Notify: func() { r.notified.Add(1) }, Logger: discard, Audit: r.audit}, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.svc = svc
	r.runner = jobs.NewRunner(db, jobs.Options{Clock: r.clock, Logger: discard, Workers: 4})
	svc.RegisterJobs(r.runner)
	return r
}

// fire gives the events to the hook, all in one transaction.
func (r *rig) fire(t *testing.T, events ...funding.Event) {
	t.Helper()
	err := r.db.Transact(context.Background(), func(tx *sqlstore.Tx) error {
		for _, e := range events {
			if err := r.svc.OnFundingEvent(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("hook: %v", err)
	}
}

// runDue runs the jobs that are due now, once, and returns how many ran.
func (r *rig) runDue(t *testing.T) int {
	t.Helper()
	n, err := r.runner.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// drain runs due jobs until none is due.
func (r *rig) drain(t *testing.T) {
	t.Helper()
	for range 100 {
		if r.runDue(t) == 0 {
			return
		}
	}
	t.Fatal("jobs kept coming after 100 rounds")
}

func (r *rig) deliveries(t *testing.T, f Filter) []Delivery {
	t.Helper()
	ds, err := r.svc.Deliveries(context.Background(), f)
	if err != nil {
		t.Fatalf("Deliveries(%+v): %v", f, err)
	}
	return ds
}

func (r *rig) delivery(t *testing.T, id string) Delivery {
	t.Helper()
	d, err := r.svc.Delivery(context.Background(), id)
	if err != nil {
		t.Fatalf("Delivery(%s): %v", id, err)
	}
	return d
}

func (r *rig) job(t *testing.T, id string) jobs.Job {
	t.Helper()
	j, err := jobs.Get(context.Background(), r.db, id)
	if err != nil {
		t.Fatalf("jobs.Get(%s): %v", id, err)
	}
	return j
}

// jobsOf lists the jobs of a kind.
func (r *rig) jobsOf(t *testing.T, kind string) []jobs.Job {
	t.Helper()
	js, err := jobs.List(context.Background(), r.db, jobs.Filter{Kind: kind, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// deposit returns a deposit's status change: 100.00 EUR paid, 105.32 USD
// credited to login 12345678.
func deposit(id, from, to string) funding.Event {
	return funding.Event{Kind: funding.KindDeposit, ID: id, UserID: "usr_7", Email: "trader@example.com", Lang: "en", Country: "DE",
		Login: 12345678, MethodID: "card-eur", Amount: money.New(10000, eur), Credit: money.New(10532, usd),
		From: from, To: to, Actor: "system", At: t0}
}

// withdrawal returns a withdrawal's status change: 1,234.50 USD from login
// 12345678 to a masked IBAN.
func withdrawal(id, from, to string) funding.Event {
	return funding.Event{Kind: funding.KindWithdrawal, ID: id, UserID: "usr_7", Email: "trader@example.com", Lang: "en", Country: "DE",
		Login: 12345678, MethodID: "bank-transfer", Amount: money.New(123450, usd), Credit: money.New(123450, usd),
		Destination: "IBAN GB33 … 5555", From: from, To: to, Actor: "system", At: t0}
}

func webhookConfig(url string) Config {
	return Config{CRMWebhookURL: url, CRMWebhookSecret: testSecret, BrandName: "Acme Markets"}
}
