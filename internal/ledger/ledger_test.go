package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

var (
	usd   = money.MustCurrency("USD")
	eur   = money.MustCurrency("EUR")
	epoch = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
)

func zero() *int64 { v := int64(0); return &v }

func usdAmt(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s, usd)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixture is a ledger with a clearing account (debit-normal, unbounded) and
// two customer accounts that may not go below zero.
type fixture struct {
	l     *ledger.Ledger
	db    *sqlstore.DB
	clock *clock.Fake
}

func newFixture(t *testing.T, db *sqlstore.DB) fixture {
	t.Helper()
	fc := clock.NewFake(epoch)
	l := ledger.New(db, fc)
	ctx := context.Background()
	for _, spec := range []ledger.AccountSpec{
		{ID: "psp:clearing:USD", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal},
		{ID: "customer:alice", Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero()},
		{ID: "customer:bob", Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero()},
		{ID: "customer:eve:EUR", Kind: "customer", Currency: eur, Normal: ledger.CreditNormal, Lower: zero()},
	} {
		if _, err := l.CreateAccount(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{l: l, db: db, clock: fc}
}

func (f fixture) balance(t *testing.T, id string) ledger.Balance {
	t.Helper()
	b, err := f.l.Balance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f fixture) verify(t *testing.T) {
	t.Helper()
	r, err := ledger.Verify(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("ledger invariants broken:\n%s", r)
	}
}

func TestPostMovesMoneyBetweenAccounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		got, err := f.l.Post(ctx, ledger.Transfer{ID: "dep-1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "100.50"), Code: "deposit.paid"})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Status != ledger.StatusPosted || !got[0].PostedAt.Equal(epoch) {
			t.Errorf("transfer = %+v, want posted at %v", got[0], epoch)
		}
		if b := f.balance(t, "customer:alice"); b.Posted != usdAmt(t, "100.50") || b.Available != usdAmt(t, "100.50") {
			t.Errorf("alice = %+v, want 100.50 posted and available", b)
		}
		if b := f.balance(t, "psp:clearing:USD"); b.Posted != usdAmt(t, "100.50") {
			t.Errorf("clearing (debit-normal) = %s, want 100.50", b.Posted.Decimal())
		}
		f.verify(t)
	}, ledger.Schema)
}

func TestPostValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tests := []struct {
			name     string
			tr       ledger.Transfer
			wantCode errs.Code
			wantMsg  string
		}{
			{"no id", ledger.Transfer{Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "1")}, errs.Invalid, "transfer id must be 1 to 128 bytes"},
			{"zero amount", ledger.Transfer{ID: "z", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "0")}, errs.Invalid, "transfer z amount must be positive"},
			{"same account", ledger.Transfer{ID: "s", Debit: "customer:alice", Credit: "customer:alice", Amount: usdAmt(t, "1")}, errs.Invalid, "transfer s debits and credits the same account"},
			{"unknown account", ledger.Transfer{ID: "u", Debit: "psp:clearing:USD", Credit: "customer:nobody", Amount: usdAmt(t, "1")}, errs.NotFound, "account customer:nobody not found"},
			{"currency mismatch", ledger.Transfer{ID: "c", Debit: "psp:clearing:USD", Credit: "customer:eve:EUR", Amount: usdAmt(t, "1")}, errs.Invalid, "transfer c is in USD but account psp:clearing:USD is in USD and customer:eve:EUR in EUR"},
			{"overdraft", ledger.Transfer{ID: "o", Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "0.01")}, errs.Insufficient, "transfer o would take account customer:alice below its lower bound (available 0.00, needs 0.01)"},
			{"expiring post", ledger.Transfer{ID: "e", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "1"), ExpiresAt: epoch.Add(time.Hour)}, errs.Invalid, "transfer e: only a hold can expire"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.l.Post(ctx, tc.tr)
				if errs.CodeOf(err) != tc.wantCode || errs.MessageOf(err) != tc.wantMsg {
					t.Errorf("err = %v (%s), want %s %q", err, errs.CodeOf(err), tc.wantCode, tc.wantMsg)
				}
			})
		}
		f.verify(t)
		if b := f.balance(t, "customer:alice"); !b.Posted.IsZero() {
			t.Errorf("a refused transfer moved money: %+v", b)
		}
	}, ledger.Schema)
}

func TestSameIDReplaysAndOtherFieldsConflict(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tr := ledger.Transfer{ID: "dep-7", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "25"), Code: "deposit.paid", Metadata: `{"payment":"pay_1"}`}
		first, err := f.l.Post(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		again, err := f.l.Post(ctx, tr)
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("replay returned another transfer (-first +again):\n%s", diff)
		}
		if b := f.balance(t, "customer:alice"); b.Posted != usdAmt(t, "25") {
			t.Errorf("replay moved money again: alice = %s", b.Posted.Decimal())
		}
		other := tr
		other.Amount = usdAmt(t, "26")
		if _, err := f.l.Post(ctx, other); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("same id, other amount: err = %v, want ECONFLICT", err)
		}
		other = tr
		other.Credit = "customer:bob"
		if _, err := f.l.Post(ctx, other); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("same id, other account: err = %v, want ECONFLICT", err)
		}
		f.verify(t)
	}, ledger.Schema)
}

func TestLinkedBatchIsAllOrNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, err := f.l.Post(ctx,
			ledger.Transfer{ID: "b-1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10")},
			ledger.Transfer{ID: "b-2", Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "10.01")},
		)
		if errs.CodeOf(err) != errs.Insufficient {
			t.Fatalf("err = %v, want EINSUFFICIENT from the second transfer", err)
		}
		if _, err := f.l.Transfer(ctx, "b-1"); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("first transfer of a failed batch exists: err = %v", err)
		}
		// Within a batch, later transfers see earlier ones.
		if _, err := f.l.Post(ctx,
			ledger.Transfer{ID: "b-3", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10")},
			ledger.Transfer{ID: "b-4", Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "10")},
		); err != nil {
			t.Fatal(err)
		}
		if b := f.balance(t, "customer:bob"); b.Posted != usdAmt(t, "10") {
			t.Errorf("bob = %s, want 10.00", b.Posted.Decimal())
		}
		f.verify(t)
	}, ledger.Schema)
}

func TestHoldPostVoidAndExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		mustPost := func(ts ...ledger.Transfer) {
			t.Helper()
			if _, err := f.l.Post(ctx, ts...); err != nil {
				t.Fatal(err)
			}
		}
		mustPost(ledger.Transfer{ID: "fund", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "100")})

		// A hold lowers the available balance at once, not the posted one.
		mustPost(ledger.Transfer{ID: "wd-1", Action: ledger.Hold, Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "60")})
		b := f.balance(t, "customer:alice")
		if b.Posted != usdAmt(t, "100") || b.Available != usdAmt(t, "40") || b.PendingOut != usdAmt(t, "60") {
			t.Fatalf("after hold: %+v, want posted 100, available 40, pending out 60", b)
		}
		// A second hold beyond the available balance is refused.
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "wd-2", Action: ledger.Hold, Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "40.01")}); errs.CodeOf(err) != errs.Insufficient {
			t.Fatalf("over-hold err = %v, want EINSUFFICIENT", err)
		}
		// Post part of the hold: the rest is released.
		mustPost(ledger.Transfer{ID: "wd-1-post", Action: ledger.PostPending, PendingID: "wd-1", Amount: usdAmt(t, "50")})
		b = f.balance(t, "customer:alice")
		if b.Posted != usdAmt(t, "50") || b.Available != usdAmt(t, "50") || !b.PendingOut.IsZero() {
			t.Fatalf("after partial post: %+v, want posted 50 available 50", b)
		}
		// A settled hold cannot be settled again.
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "wd-1-void", Action: ledger.VoidPending, PendingID: "wd-1"}); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("void after post: err = %v, want ECONFLICT", err)
		}
		// Void releases a hold.
		mustPost(ledger.Transfer{ID: "wd-3", Action: ledger.Hold, Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "20")})
		mustPost(ledger.Transfer{ID: "wd-3-void", Action: ledger.VoidPending, PendingID: "wd-3"})
		if b := f.balance(t, "customer:alice"); b.Available != usdAmt(t, "50") {
			t.Errorf("after void: available %s, want 50.00", b.Available.Decimal())
		}
		// Expiry: a hold with an expiry cannot be posted once it passed, and
		// ExpireDue releases it exactly once.
		mustPost(ledger.Transfer{ID: "wd-4", Action: ledger.Hold, Debit: "customer:alice", Credit: "psp:clearing:USD", Amount: usdAmt(t, "30"), ExpiresAt: epoch.Add(15 * time.Minute)})
		f.clock.Advance(14 * time.Minute)
		if n, err := f.l.ExpireDue(ctx, 10); err != nil || n != 0 {
			t.Fatalf("ExpireDue before expiry = %d, %v; want 0", n, err)
		}
		f.clock.Advance(time.Minute)
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "wd-4-post", Action: ledger.PostPending, PendingID: "wd-4"}); errs.CodeOf(err) != errs.Expired {
			t.Errorf("post after expiry: err = %v, want EEXPIRED", err)
		}
		if n, err := f.l.ExpireDue(ctx, 10); err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		if n, err := f.l.ExpireDue(ctx, 10); err != nil || n != 0 {
			t.Fatalf("second ExpireDue = %d, %v; want 0", n, err)
		}
		if h, _ := f.l.Transfer(ctx, "wd-4"); h.Status != ledger.StatusExpired {
			t.Errorf("hold status = %s, want expired", h.Status)
		}
		if b := f.balance(t, "customer:alice"); b.Available != usdAmt(t, "50") || !b.PendingOut.IsZero() {
			t.Errorf("after expiry: %+v, want available 50 and nothing pending", b)
		}
		f.verify(t)
	}, ledger.Schema)
}

func TestBalanceAtAndStatement(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		steps := []ledger.Transfer{
			{ID: "s1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "100"), Code: "deposit.paid"},
			{ID: "s2", Debit: "customer:alice", Credit: "customer:bob", Amount: usdAmt(t, "30"), Code: "transfer"},
			{ID: "s3", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "5.25"), Code: "deposit.paid"},
		}
		for _, s := range steps {
			f.clock.Advance(time.Hour)
			if _, err := f.l.Post(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			at   time.Time
			want string
		}{{epoch, "0.00"}, {epoch.Add(time.Hour), "100.00"}, {epoch.Add(150 * time.Minute), "70.00"}, {epoch.Add(10 * time.Hour), "75.25"}} {
			got, err := f.l.BalanceAt(ctx, "customer:alice", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got.Decimal() != tc.want {
				t.Errorf("BalanceAt(%v) = %s, want %s", tc.at, got.Decimal(), tc.want)
			}
		}
		st, err := f.l.Statement(ctx, "customer:alice", epoch.Add(90*time.Minute), epoch.Add(10*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		type line struct{ ID, Amount, Balance string }
		var got []line
		for _, l := range st.Lines {
			got = append(got, line{l.TransferID, l.Amount.Decimal(), l.Balance.Decimal()})
		}
		want := []line{{"s2", "-30.00", "70.00"}, {"s3", "5.25", "75.25"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statement lines (-want +got):\n%s", diff)
		}
		if st.Opening.Decimal() != "100.00" || st.Closing.Decimal() != "75.25" {
			t.Errorf("opening %s closing %s, want 100.00 and 75.25", st.Opening.Decimal(), st.Closing.Decimal())
		}
	}, ledger.Schema)
}

func TestCreateAccountIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		spec := ledger.AccountSpec{ID: "customer:alice", Kind: "customer", Currency: usd, Normal: ledger.CreditNormal, Lower: zero()}
		if _, err := f.l.CreateAccount(ctx, spec); err != nil {
			t.Errorf("same spec again: %v", err)
		}
		spec.Currency = eur
		if _, err := f.l.CreateAccount(ctx, spec); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("other currency: err = %v, want ECONFLICT", err)
		}
		if _, err := f.l.CreateAccount(ctx, ledger.AccountSpec{ID: "x", Kind: "k", Currency: usd, Normal: "sideways"}); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("bad side: err = %v, want EINVALID", err)
		}
	}, ledger.Schema)
}

func TestVerifyFindsTampering(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.l.Post(ctx, ledger.Transfer{ID: "t1", Debit: "psp:clearing:USD", Credit: "customer:alice", Amount: usdAmt(t, "10")}); err != nil {
			t.Fatal(err)
		}
		f.verify(t)
		if _, err := db.Exec(ctx, "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = ?", "customer:alice"); err != nil {
			t.Fatal(err)
		}
		r, err := ledger.Verify(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"USD: posted balances sum to 1 minor units, not 0",
			"account customer:alice: cached posted credits 1001 differ from its transfers' 1000",
		}
		if diff := cmp.Diff(want, r.Problems); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
		if !strings.Contains(r.String(), "2 problems") {
			t.Errorf("report text: %s", r)
		}
	}, ledger.Schema)
}
