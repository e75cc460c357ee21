package compliance

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// report is one thing funding tells compliance: a screening's check or a
// status change.
type report struct {
	check *funding.Check
	event *funding.Event
}

// oneByOne writes a report the way each report used to be written: one
// statement per check and per status change, at once. The activity the
// rules read must come out the same when the reports of a transaction are
// written together before the commit.
func oneByOne(ctx context.Context, tx *sqlstore.Tx, r report, now time.Time) error {
	if c := r.check; c != nil {
		var paidAt sql.NullInt64
		if c.Stage == funding.StagePaid {
			paidAt = micros(sqlstore.Micros(now))
		}
		_, err := tx.Exec(ctx, `INSERT INTO compliance_activity (id, user_id, kind, method_id, method_kind, currency, amount_minor, login,
		destination, card_country, requested_at, paid_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			method_kind = CASE WHEN excluded.method_kind = '' THEN compliance_activity.method_kind ELSE excluded.method_kind END,
			destination = CASE WHEN excluded.destination = '' THEN compliance_activity.destination ELSE excluded.destination END,
			card_country = CASE WHEN excluded.card_country = '' THEN compliance_activity.card_country ELSE excluded.card_country END,
			paid_at = COALESCE(compliance_activity.paid_at, excluded.paid_at),
			updated_at = excluded.updated_at`,
			c.ID, c.Customer.UserID, c.Kind, c.MethodID, c.MethodKind, c.Amount.Currency().Code, c.Amount.Minor(), c.Login,
			c.Destination, upper(c.CardCountry), sqlstore.Micros(now), paidAt, sqlstore.Micros(now))
		return err
	}
	e := *r.event
	ts := sqlstore.Micros(e.At)
	paidAt, completedAt, declinedAt := eventTimes(e, ts)
	_, err := tx.Exec(ctx, `INSERT INTO compliance_activity (id, user_id, kind, method_id, currency, amount_minor, login, status, outcome,
		confirmed, requested_at, paid_at, completed_at, declined_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			method_id = CASE WHEN excluded.method_id = '' THEN compliance_activity.method_id ELSE excluded.method_id END,
			currency = CASE WHEN excluded.currency = '' THEN compliance_activity.currency ELSE excluded.currency END,
			amount_minor = CASE WHEN excluded.currency = '' THEN compliance_activity.amount_minor ELSE excluded.amount_minor END,
			status = excluded.status, outcome = excluded.outcome, confirmed = 1,
			paid_at = COALESCE(compliance_activity.paid_at, excluded.paid_at),
			completed_at = COALESCE(compliance_activity.completed_at, excluded.completed_at),
			declined_at = COALESCE(compliance_activity.declined_at, excluded.declined_at),
			updated_at = excluded.updated_at`,
		e.ID, e.UserID, e.Kind, e.MethodID, e.Amount.Currency().Code, e.Amount.Minor(), e.Login, e.To, outcome(e.To),
		ts, paidAt, completedAt, declinedAt, ts)
	return err
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// ruleView is what the rules and the limits read of an activity row.
type ruleView struct {
	UserID, Kind, MethodID, MethodKind, Currency string
	Amount, Login                                int64
	Destination, CardCountry, Outcome            string
	Confirmed                                    int
	RequestedAt                                  int64
	PaidAt, CompletedAt, DeclinedAt              sql.NullInt64
}

func readView(t *testing.T, db *sqlstore.DB, id string) (ruleView, string) {
	t.Helper()
	var v ruleView
	var status string
	err := db.QueryRow(context.Background(), `SELECT user_id, kind, method_id, method_kind, currency, amount_minor, login, destination,
		card_country, outcome, confirmed, requested_at, paid_at, completed_at, declined_at, status FROM compliance_activity WHERE id = ?`, id).Scan(
		&v.UserID, &v.Kind, &v.MethodID, &v.MethodKind, &v.Currency, &v.Amount, &v.Login, &v.Destination,
		&v.CardCountry, &v.Outcome, &v.Confirmed, &v.RequestedAt, &v.PaidAt, &v.CompletedAt, &v.DeclinedAt, &status)
	if err != nil {
		t.Fatalf("activity %s: %v", id, err)
	}
	return v, status
}

// The reports of each transaction, collected and written once before the
// commit, leave every column the rules read as writing each report on its
// own did; the status is the last one that changed what the rules read.
func TestActivityWrittenOncePerTransactionMatchesOneWritePerReport(t *testing.T) {
	usd, eur := money.MustCurrency("USD"), money.MustCurrency("EUR")
	at := time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC)
	amount := func(s string, c money.Currency) money.Amount {
		a, err := money.Parse(s, c)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// The scenarios name the transaction's id "X"; each transaction of a
	// scenario is a list of reports, a minute after the one before.
	check := func(kind, stage, method, methodKind, a string, cur money.Currency, dest, country string) report {
		return report{check: &funding.Check{Kind: kind, Stage: stage, ID: "X", Customer: funding.Customer{UserID: "usr_a"}, Login: 7,
			MethodID: method, MethodKind: methodKind, Amount: amount(a, cur), Destination: dest, CardCountry: country}}
	}
	event := func(kind, from, to, method, a string, cur money.Currency) report {
		e := funding.Event{Kind: kind, ID: "X", UserID: "usr_a", Login: 7, MethodID: method, From: from, To: to}
		if cur.Code != "" {
			e.Amount = amount(a, cur)
		}
		return report{event: &e}
	}
	dep, wd := funding.KindDeposit, funding.KindWithdrawal
	tests := []struct {
		name       string
		txs        [][]report
		wantStatus string
	}{
		{"card deposit completed", [][]report{
			{check(dep, funding.StageRequest, "card", "card", "20.00", usd, "", ""), event(dep, "", "created", "card", "20.00", usd)},
			{event(dep, "created", "awaiting_payment", "card", "20.00", usd)},
			{check(dep, funding.StagePaid, "card", "", "20.00", usd, "card:ctok_1", "de"),
				event(dep, "awaiting_payment", "paid", "card", "20.00", usd), event(dep, "paid", "crediting", "card", "20.00", usd)},
			{event(dep, "crediting", "completed", "card", "20.00", usd)},
		}, "completed"},
		{"deposit paid another amount in another currency", [][]report{
			{check(dep, funding.StageRequest, "bank", "bank_transfer", "100.00", usd, "", ""), event(dep, "", "created", "bank", "100.00", usd)},
			{event(dep, "created", "awaiting_payment", "bank", "100.00", usd)},
			{check(dep, funding.StagePaid, "bank", "bank_transfer", "60.00", eur, "", ""), event(dep, "awaiting_payment", "paid", "bank", "60.00", eur)},
		}, "paid"},
		{"declined deposit", [][]report{
			{check(dep, funding.StageRequest, "card", "card", "20.00", usd, "", ""), event(dep, "", "created", "card", "20.00", usd)},
			{event(dep, "created", "awaiting_payment", "card", "20.00", usd)},
			{event(dep, "awaiting_payment", "declined", "", "", money.Currency{})},
		}, "declined"},
		{"expired deposit paid late", [][]report{
			{check(dep, funding.StageRequest, "card", "card", "20.00", usd, "", ""), event(dep, "", "created", "card", "20.00", usd)},
			{event(dep, "created", "expired", "card", "20.00", usd)},
			{check(dep, funding.StagePaid, "card", "card", "20.00", usd, "", "FR"), event(dep, "expired", "paid", "card", "20.00", usd)},
			{event(dep, "paid", "crediting", "card", "20.00", usd)},
		}, "crediting"},
		{"check only (a request that lost a race)", [][]report{
			{check(dep, funding.StageRequest, "card", "card", "5.00", usd, "", "")},
		}, ""},
		{"status change first, then a check in the same transaction", [][]report{
			{event(wd, "", "requested", "bank-transfer", "80.00", usd), check(wd, funding.StageRequest, "bank-transfer", "bank_transfer", "80.00", usd, "iban:DE89", "")},
			{event(wd, "requested", "debiting", "bank-transfer", "80.00", usd)},
			{event(wd, "debiting", "awaiting_approval", "bank-transfer", "80.00", usd)},
			{event(wd, "awaiting_approval", "approved", "bank-transfer", "80.00", usd), event(wd, "approved", "payout_sent", "bank-transfer", "80.00", usd)},
			{event(wd, "payout_sent", "completed", "bank-transfer", "80.00", usd)},
		}, "completed"},
		{"withdrawal returned", [][]report{
			{check(wd, funding.StageRequest, "card", "card", "50.00", usd, "card:ctok_1", ""), event(wd, "", "requested", "card", "50.00", usd)},
			{event(wd, "requested", "debiting", "card", "50.00", usd)},
			{event(wd, "debiting", "approved", "card", "50.00", usd)},
			{event(wd, "approved", "payout_sent", "card", "50.00", usd)},
			{event(wd, "payout_sent", "returned", "card", "50.00", usd)},
		}, "returned"},
	}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ours, theirs := fmt.Sprintf("dep_%d_collected", i), fmt.Sprintf("dep_%d_one_by_one", i)
				now := at
				for _, reports := range tc.txs {
					now = now.Add(time.Minute)
					for _, way := range []struct {
						id      string
						collect bool
					}{{ours, true}, {theirs, false}} {
						err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
							for _, r := range reports {
								var err error
								switch {
								case r.check != nil:
									c := *r.check
									c.ID = way.id
									r.check = &c
								default:
									e := *r.event
									e.ID, e.At = way.id, now
									r.event = &e
								}
								switch {
								case !way.collect:
									err = oneByOne(ctx, tx, r, now)
								case r.check != nil:
									recordCheck(tx, *r.check, sqlstore.Micros(now))
								default:
									err = (&Service{}).OnFundingEvent(ctx, tx, *r.event)
								}
								if err != nil {
									return err
								}
							}
							return nil
						})
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				got, status := readView(t, db, ours)
				want, _ := readView(t, db, theirs)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("activity the rules read (-one write per report +once per transaction):\n%s", diff)
				}
				if status != tc.wantStatus {
					t.Errorf("status %q, want %q", status, tc.wantStatus)
				}
			})
		}
	}, Schema)
}
