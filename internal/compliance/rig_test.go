package compliance_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/audit"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/compliance"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

var (
	ctx = context.Background()
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
	// start is a Tuesday morning in the middle of a month.
	start = time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC)
)

// amt parses an exact decimal in cur.
func amt(t *testing.T, s string, cur money.Currency) money.Amount {
	t.Helper()
	a, err := money.Parse(s, cur)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recorder is a fake audit.Recorder that keeps the records of committed
// transactions.
type recorder struct {
	mu      sync.Mutex
	records []audit.Record
}

func (r *recorder) RecordTx(_ context.Context, tx *sqlstore.Tx, rec audit.Record) error {
	if rec.Actor == "" || rec.Action == "" {
		return errs.E(errs.Invalid, "recorder", "actor and action are required")
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.records = append(r.records, rec)
	})
	return nil
}

func (r *recorder) all() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Record(nil), r.records...)
}

// txn is a deposit or withdrawal the rig plays funding's part for.
type txn struct {
	kind, id, user, method string
	amount                 money.Amount
	status                 string
}

// rig plays funding: it screens and reports status changes in one
// transaction each, as funding does.
type rig struct {
	t     *testing.T
	db    *sqlstore.DB
	clk   *clock.Fake
	svc   *compliance.Service
	audit *recorder
	txns  map[string]*txn
}

func newRig(t *testing.T, db *sqlstore.DB, opt compliance.Options) *rig {
	t.Helper()
	clk := clock.NewFake(start)
	rec := &recorder{}
	opt.Clock, opt.Audit = clk, rec
	svc, err := compliance.New(db, opt)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, db: db, clk: clk, svc: svc, audit: rec, txns: map[string]*txn{}}
}

// check is the funding.Check for tx at stage.
func (r *rig) check(x *txn, stage string) funding.Check {
	return funding.Check{Kind: x.kind, Stage: stage, ID: x.id, Customer: funding.Customer{UserID: x.user}, Login: 1001,
		MethodID: x.method, MethodKind: "card", Amount: x.amount, AccountAmount: x.amount, At: r.clk.Now()}
}

// screenAndMove screens c and, if it is not refused, moves the
// transaction to status in the same transaction.
func (r *rig) screenAndMove(x *txn, c funding.Check, status string) (funding.Verdict, error) {
	var v funding.Verdict
	err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		var err error
		if v, err = r.svc.Screen(ctx, tx, c); err != nil {
			return err
		}
		return r.eventTx(tx, x, status, "")
	})
	return v, err
}

func (r *rig) eventTx(tx *sqlstore.Tx, x *txn, to, actor string) error {
	if actor == "" {
		actor = "system"
	}
	e := funding.Event{Kind: x.kind, ID: x.id, UserID: x.user, MethodID: x.method, Amount: x.amount, From: x.status, To: to,
		Actor: actor, At: r.clk.Now()}
	if err := r.svc.OnFundingEvent(ctx, tx, e); err != nil {
		return err
	}
	x.status = to
	return nil
}

// move reports a status change of a known transaction.
func (r *rig) move(id, to, actor string) {
	r.t.Helper()
	x := r.txns[id]
	if x == nil {
		r.t.Fatalf("no transaction %s", id)
	}
	if err := r.db.Transact(ctx, func(tx *sqlstore.Tx) error { return r.eventTx(tx, x, to, actor) }); err != nil {
		r.t.Fatalf("%s → %s: %v", id, to, err)
	}
}

// requestDeposit starts a deposit: screened at request, then created.
func (r *rig) requestDeposit(user, id, method string, a money.Amount) (funding.Verdict, error) {
	x := &txn{kind: funding.KindDeposit, id: id, user: user, method: method, amount: a}
	v, err := r.screenAndMove(x, r.check(x, funding.StageRequest), "created")
	if err == nil {
		r.txns[id] = x
	}
	return v, err
}

// payDeposit reports a started deposit paid: screened at paid (with the
// card's country and the source's key), then paid.
func (r *rig) payDeposit(id, cardCountry, source string) funding.Verdict {
	r.t.Helper()
	x := r.txns[id]
	c := r.check(x, funding.StagePaid)
	c.CardCountry, c.Destination = cardCountry, source
	v, err := r.screenAndMove(x, c, "paid")
	if err != nil {
		r.t.Fatalf("pay %s: %v", id, err)
	}
	return v
}

// deposit runs a deposit from request to completed and fails the test if
// anything refuses or holds it.
func (r *rig) deposit(user, id, method string, a money.Amount) {
	r.t.Helper()
	if v, err := r.requestDeposit(user, id, method, a); err != nil || v.Hold {
		r.t.Fatalf("deposit %s: %+v, %v", id, v, err)
	}
	if v := r.payDeposit(id, "", ""); v.Hold {
		r.t.Fatalf("deposit %s held when paid: %+v", id, v)
	}
	r.move(id, "crediting", "")
	r.move(id, "completed", "")
}

// requestWithdrawal requests a withdrawal to destination.
func (r *rig) requestWithdrawal(user, id, method string, a money.Amount, destination string) (funding.Verdict, error) {
	x := &txn{kind: funding.KindWithdrawal, id: id, user: user, method: method, amount: a}
	c := r.check(x, funding.StageRequest)
	c.Destination = destination
	v, err := r.screenAndMove(x, c, "requested")
	if err == nil {
		r.txns[id] = x
	}
	return v, err
}

// withdraw runs a withdrawal from request to completed; holds are ignored.
func (r *rig) withdraw(user, id, method string, a money.Amount, destination string) {
	r.t.Helper()
	if _, err := r.requestWithdrawal(user, id, method, a, destination); err != nil {
		r.t.Fatalf("withdrawal %s: %v", id, err)
	}
	for _, s := range []string{"debiting", "held", "approved", "payout_sent", "completed"} {
		r.move(id, s, "")
	}
}

func (r *rig) setKYC(user string, level int, country string) {
	r.t.Helper()
	if err := r.svc.SetKYC(ctx, "staff:stf_1", user, compliance.Profile{Level: level, Country: country, Source: compliance.SourceStaff}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) setLimit(l compliance.Limit) {
	r.t.Helper()
	if err := r.svc.SetLimit(ctx, "staff:stf_1", l); err != nil {
		r.t.Fatal(err)
	}
}

// wantCode fails unless err carries code and its message contains every
// fragment.
func wantCode(t *testing.T, err error, code errs.Code, fragments ...string) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Fatalf("error %v has code %q, want %q", err, errs.CodeOf(err), code)
	}
	for _, f := range fragments {
		if !strings.Contains(errs.MessageOf(err), f) {
			t.Errorf("message %q does not say %q", errs.MessageOf(err), f)
		}
	}
}
