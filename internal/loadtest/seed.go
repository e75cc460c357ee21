package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// SeedSpec says how much history to add to a cashier's database.
type SeedSpec struct {
	// Accounts is how many users to add, each with one USD demo trading
	// account (logins from 70,000,000 up, on no platform: nothing drives
	// them).
	Accounts int
	// Deposits is how many completed card deposits to add, spread over the
	// seeded accounts (those of this call, or of earlier calls when
	// Accounts is 0), dated over the last 90 days.
	Deposits int
	// Now dates the history (default the current time).
	Now time.Time
	// Progress, if set, is told how many deposits are written so far (from
	// several goroutines, one call at a time).
	Progress func(done int)
}

// SeedLoginBase is the first login of seeded trading accounts.
const SeedLoginBase = 70_000_000

// Seed writes history into a migrated cashier database, as years of use
// would leave it, so that benchmarks can show how the figures change with
// 10× or 100× more accounts and transactions: users and their trading
// accounts (identity), and completed card deposits with every row a real
// one leaves in the cashier's tables — the deposit and its status history
// (funding), the payment with its status history and provider events
// (payments), the DEPOSIT push and its events (push), the finished jobs
// (jobs), the activity the fraud rules count (compliance) and the ledger
// transfers with the accounts' balances (ledger: the payment, the fee and
// the credit to the platform, as three posted transfers where the product
// writes a hold and its posting). The ledger stays balanced (ledger verify
// is clean). Not written: the audit trail (a hash chain), one-time tokens
// and cashier sessions (purged after they expire) and the sandbox
// provider's own tables (a real provider keeps those).
//
// It writes with multi-row INSERTs in transactions of 2,000 deposits, on
// PostgreSQL with four writers at once, then runs ANALYZE there. It
// returns errs.Invalid for negative counts or deposits without accounts,
// and a wrapped database error.
func Seed(ctx context.Context, db *sqlstore.DB, spec SeedSpec) error {
	const op = "loadtest.Seed"
	if spec.Accounts < 0 || spec.Deposits < 0 {
		return errs.E(errs.Invalid, op, "counts must not be negative")
	}
	if spec.Now.IsZero() {
		spec.Now = time.Now()
	}
	s := &seeder{db: db, spec: spec, now: spec.Now.UTC()}
	if err := s.accounts(ctx); err != nil {
		return errs.Wrap(op, err)
	}
	if spec.Deposits == 0 {
		return nil
	}
	if len(s.seeded) == 0 {
		if err := s.loadSeeded(ctx); err != nil {
			return errs.Wrap(op, err)
		}
	}
	if len(s.seeded) == 0 {
		return errs.E(errs.Invalid, op, "deposits need seeded accounts (seed some accounts first)")
	}
	if err := s.deposits(ctx); err != nil {
		return errs.Wrap(op, err)
	}
	if db.Dialect() == sqlstore.Postgres {
		// Fresh statistics for the planner, as autovacuum would gather
		// them after such a load. (SQLite gathers none unless told to,
		// and the cashier never does.)
		if _, err := db.Exec(ctx, `ANALYZE`); err != nil {
			return errs.Wrap(op, err)
		}
	}
	return nil
}

type seededAccount struct {
	userID, email string
	login         int64
}

type seeder struct {
	db     *sqlstore.DB
	spec   SeedSpec
	now    time.Time
	seeded []seededAccount
}

// micros is a time within the last 90 days, chosen at random.
func (s *seeder) micros() int64 {
	back, _ := rand.Int(rand.Reader, big.NewInt(int64(90*24*time.Hour/time.Microsecond)))
	return sqlstore.Micros(s.now) - back.Int64()
}

func (s *seeder) accounts(ctx context.Context) error {
	if s.spec.Accounts == 0 {
		return nil
	}
	var next int64
	if err := s.db.QueryRow(ctx, `SELECT COALESCE(MAX(login), ?) FROM identity_accounts WHERE login >= ?`,
		SeedLoginBase-1, SeedLoginBase).Scan(&next); err != nil {
		return err
	}
	next++
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// A well-formed hash of a password nobody knows: seeded users never log in.
	hash := "$argon2id$v=19$m=19456,t=2,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	const batch = 2000
	for from := 0; from < s.spec.Accounts; from += batch {
		err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			users := newInserter(tx, "identity_users", "id", "email", "email_key", "password_hash", "language", "ctid_user_id", "status",
				"created_at", "updated_at")
			accs := newInserter(tx, "identity_accounts", "id", "platform", "environment", "login", "user_id", "currency", "kind",
				"ctid_trader_account_id", "created_at")
			logins := newInserter(tx, "funding_logins", "login", "currency", "created_at")
			ledgerAccs := newInserter(tx, "ledger_accounts", "id", "kind", "currency", "normal", "lower_bound", "created_at")
			for i := from; i < min(from+batch, s.spec.Accounts); i++ {
				if i%500 == 0 {
					if err := flushAll(ctx, users, accs, logins, ledgerAccs); err != nil {
						return err
					}
				}
				login := next + int64(i)
				id, at := "usr_"+uuid.NewString(), s.micros()
				email := fmt.Sprintf("seed-%d@example.com", login)
				s.seeded = append(s.seeded, seededAccount{userID: id, email: email, login: login})
				ls := strconv.FormatInt(login, 10)
				for _, err := range []error{
					users.add(ctx, id, email, email, hash, "en", login, "active", at, at),
					accs.add(ctx, "acc_"+uuid.NewString(), "ctrader", "demo", login, id, "USD", "trading", login+10_000_000, at),
					logins.add(ctx, login, "USD", at),
					ledgerAccs.add(ctx, "customer:ctrader:"+ls, "customer", "USD", "credit", 0, at),
					ledgerAccs.add(ctx, "platform:ctrader:"+ls, "platform", "USD", "credit", nil, at),
				} {
					if err != nil {
						return err
					}
				}
			}
			return flushAll(ctx, users, accs, logins, ledgerAccs)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) loadSeeded(ctx context.Context) error {
	rows, err := s.db.Query(ctx, `SELECT a.user_id, u.email, a.login FROM identity_accounts a JOIN identity_users u ON u.id = a.user_id
		WHERE a.login >= ? ORDER BY a.login`, SeedLoginBase)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a seededAccount
		if err := rows.Scan(&a.userID, &a.email, &a.login); err != nil {
			return err
		}
		s.seeded = append(s.seeded, a)
	}
	return rows.Err()
}

// ensureShared creates the provider's clearing account and the fee income
// account in USD if they do not exist yet.
func ensureShared(ctx context.Context, tx *sqlstore.Tx, at int64) error {
	for _, a := range []struct{ id, kind, normal string }{
		{"psp:sandbox:USD", "psp_clearing", "debit"},
		{"fees:income:USD", "fee_income", "credit"},
	} {
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_accounts (id, kind, currency, normal, created_at) VALUES (?, ?, 'USD', ?, ?)
			ON CONFLICT (id) DO NOTHING`, a.id, a.kind, a.normal, at); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) deposits(ctx context.Context) error {
	if err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error { return ensureShared(ctx, tx, sqlstore.Micros(s.now)) }); err != nil {
		return err
	}
	// PostgreSQL takes several writers at once; SQLite one. Each writer has
	// its own share of the accounts, so no two transactions update one
	// account's balance.
	workers := 1
	if s.db.Dialect() == sqlstore.Postgres {
		workers = min(4, len(s.seeded))
	}
	var (
		mu         sync.Mutex
		done       int
		gross, fee int64
		firstErr   error
		wg         sync.WaitGroup
	)
	for w := range workers {
		var mine []seededAccount
		for i := w; i < len(s.seeded); i += workers {
			mine = append(mine, s.seeded[i])
		}
		count := s.spec.Deposits / workers
		if w < s.spec.Deposits%workers {
			count++
		}
		wg.Go(func() {
			g, f, err := s.writeDeposits(ctx, mine, count, func(n int) {
				mu.Lock()
				done += n
				if s.spec.Progress != nil {
					s.spec.Progress(done)
				}
				mu.Unlock()
			})
			mu.Lock()
			defer mu.Unlock()
			gross, fee = gross+g, fee+f
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// The provider's clearing account took the gross of every deposit and
	// the fee income the fees: booked once at the end, so that the writers
	// never wait for each other on these two rows.
	return s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE ledger_accounts SET debits_posted = debits_posted + ? WHERE id = 'psp:sandbox:USD'`, gross); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE ledger_accounts SET credits_posted = credits_posted + ? WHERE id = 'fees:income:USD'`, fee)
		return err
	})
}

// writeDeposits writes count deposits spread over accounts, in
// transactions of 2,000, and returns their gross and fee totals.
func (s *seeder) writeDeposits(ctx context.Context, accounts []seededAccount, count int, progress func(n int)) (gross, fee int64, err error) {
	const batch = 2000
	for from := 0; from < count; from += batch {
		n := min(batch, count-from)
		var g, f int64
		err := s.db.Transact(ctx, func(tx *sqlstore.Tx) error {
			g, f = 0, 0
			w := newDepositWriter(tx)
			perLogin := map[int64]int64{}
			for i := from; i < from+n; i++ {
				if (i-from)%250 == 0 { // at most 1,750 job rows of 11 columns per statement
					if err := w.flush(ctx); err != nil {
						return err
					}
				}
				a := accounts[i%len(accounts)]
				dg := int64(2000 + 100*(i%50)) // 20.00 … 69.00 USD
				df := (dg*25+999)/1000 + 30    // 2.5 % rounded up, plus 0.30
				if err := w.add(ctx, a, dg, df, s.micros()); err != nil {
					return err
				}
				g, f = g+dg, f+df
				perLogin[a.login] += dg - df
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
			// Each customer account received and passed on the net; each
			// platform account holds it.
			logins := slices.Sorted(maps.Keys(perLogin))
			for _, login := range logins {
				net := perLogin[login]
				ls := strconv.FormatInt(login, 10)
				if _, err := tx.Exec(ctx, `UPDATE ledger_accounts SET debits_posted = debits_posted + ?, credits_posted = credits_posted + ?
					WHERE id = ?`, net, net, "customer:ctrader:"+ls); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE ledger_accounts SET credits_posted = credits_posted + ? WHERE id = ?`,
					net, "platform:ctrader:"+ls); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return gross, fee, err
		}
		gross, fee = gross+g, fee+f
		progress(n)
	}
	return gross, fee, nil
}

// depositWriter writes the rows of completed deposits.
type depositWriter struct {
	deposits, history, payments, payHistory, events, pushes, pushEvents, jobs, activity, transfers *inserter
}

func newDepositWriter(tx *sqlstore.Tx) *depositWriter {
	return &depositWriter{
		deposits: newInserter(tx, "funding_deposits", "id", "request_id", "request_hash", "user_id", "login", "method_id", "method_kind",
			"provider", "payment_id", "status", "currency", "gross_minor", "fee_minor", "fee_paid_by", "net_minor", "account_currency",
			"credit_minor", "push_id", "lang", "expires_at", "created_at", "updated_at", "final_at"),
		history: newInserter(tx, "funding_history", "owner_id", "seq", "from_status", "to_status", "reason", "detail", "at"),
		payments: newInserter(tx, "payments", "id", "direction", "method_id", "method_kind", "provider", "provider_ref", "customer_id",
			"account_id", "currency", "gross_minor", "fee_minor", "fee_paid_by", "net_minor", "account_currency", "account_minor",
			"status", "received_minor", "received_currency", "next_kind", "instrument", "provider_seq", "customer_email", "lang",
			"request_hash", "created_at", "updated_at", "final_at"),
		payHistory: newInserter(tx, "payment_status_history", "payment_id", "seq", "from_status", "to_status", "source", "event_id", "at"),
		events:     newInserter(tx, "payment_events", "id", "provider", "provider_event_id", "payment_id", "source", "body", "outcome", "received_at"),
		pushes: newInserter(tx, "pushes", "id", "owner", "owner_id", "login", "change_type", "amount", "currency", "comment",
			"external_note", "source", "state", "sends", "balance_history_id", "sending_at", "created_at", "updated_at"),
		pushEvents: newInserter(tx, "push_events", "push_id", "at", "from_state", "to_state", "detail"),
		jobs: newInserter(tx, "jobs", "id", "kind", "payload", "dedup_key", "state", "attempt", "max_attempts", "due_at",
			"created_at", "claimed_at", "finished_at"),
		activity: newInserter(tx, "compliance_activity", "id", "user_id", "kind", "method_id", "method_kind", "currency", "amount_minor",
			"login", "destination", "card_country", "status", "outcome", "confirmed", "requested_at", "paid_at", "completed_at", "updated_at"),
		transfers: newInserter(tx, "ledger_transfers", "id", "action", "debit_account_id", "credit_account_id", "amount", "currency",
			"code", "metadata", "status", "moves_balance", "posted_at"),
	}
}

// add writes one completed card deposit of gross (fee f, paid by the
// client) into the account a, made at t.
func (w *depositWriter) add(ctx context.Context, a seededAccount, gross, f, t int64) error {
	u := uuid.NewString()
	dep, pay, push := "dep_"+u, "pay_"+u, "dep_"+u+":credit"
	ref, card := "sbp_"+uuid.NewString(), "ctok_"+uuid.NewString()
	net := gross - f
	amount := fmt.Sprintf("%d.%02d", gross/100, gross%100)
	credit := fmt.Sprintf("%d.%02d", net/100, net%100)
	ls := strconv.FormatInt(a.login, 10)
	paid, done := t+400_000, t+500_000
	evts := []string{"evt_" + uuid.NewString(), "evt_" + uuid.NewString(), "evt_" + uuid.NewString()}
	for _, err := range []error{
		w.deposits.add(ctx, dep, "req_"+uuid.NewString(), hexOf(u), a.userID, a.login, "card", "card", "sandbox", pay, "completed",
			"USD", gross, f, "client", net, "USD", net, push, "en", t+int64(2*time.Hour/time.Microsecond), t, done, done),
		w.history.add(ctx, dep, 1, "", "created", "", "deposit of "+amount+" USD by card", t),
		w.history.add(ctx, dep, 2, "created", "awaiting_payment", "", "payment started at sandbox", t+10_000),
		w.history.add(ctx, dep, 3, "awaiting_payment", "paid", "", "paid "+amount+" USD", paid),
		w.history.add(ctx, dep, 4, "paid", "crediting", "", "DEPOSIT push "+push+" enqueued", paid),
		w.history.add(ctx, dep, 5, "crediting", "completed", "applied", "credited "+credit+" USD", done),
		w.payments.add(ctx, pay, "deposit", "card", "card", "sandbox", ref, a.userID, ls, "USD", gross, f, "client", net, "USD", net,
			"succeeded", gross, "USD", "redirect", `{"brand":"visa","last4":"4242","token":"`+card+`","country":"US"}`, 3, a.email, "en",
			hexOf(pay), t, paid, paid),
		w.payHistory.add(ctx, pay, 1, "", "created", "create", nil, t),
		w.payHistory.add(ctx, pay, 2, "created", "requires_action", "start", nil, t+10_000),
		w.payHistory.add(ctx, pay, 3, "requires_action", "succeeded", "webhook", evts[2], paid),
		w.events.add(ctx, "pev_"+uuid.NewString(), "sandbox", nil, pay, "start", []byte(`{"id":"`+ref+`","status":"requires_action"}`), "applied", t+10_000),
		w.events.add(ctx, "pev_"+uuid.NewString(), "sandbox", evts[1], pay, "webhook", []byte(`{"id":"`+evts[1]+`","type":"payment.requires_action"}`), "unchanged", t+20_000),
		w.events.add(ctx, "pev_"+uuid.NewString(), "sandbox", evts[2], pay, "webhook", []byte(`{"id":"`+evts[2]+`","type":"payment.succeeded"}`), "applied", paid),
		w.pushes.add(ctx, push, "deposit", dep, a.login, "DEPOSIT", net, "USD", "OpenCashier deposit "+dep, "Deposit by card", "card",
			"applied", 1, a.login*10, paid+50_000, paid, done),
		w.pushEvents.add(ctx, push, paid, "", "queued", "DEPOSIT "+credit+" USD to login "+ls),
		w.pushEvents.add(ctx, push, paid+50_000, "queued", "sending", "send 1"),
		w.pushEvents.add(ctx, push, done, "sending", "applied", "applied"),
		w.activity.add(ctx, dep, a.userID, "deposit", "card", "card", "USD", gross, a.login, "card:"+card, "US", "completed", "completed", 1,
			t, paid, done, done),
		w.transfers.add(ctx, dep+":paid", "post", "psp:sandbox:USD", "customer:ctrader:"+ls, net, "USD", "deposit.paid", "deposit "+dep, "posted", 1, paid),
		w.transfers.add(ctx, dep+":fee", "post", "psp:sandbox:USD", "fees:income:USD", f, "USD", "deposit.fee", "deposit "+dep, "posted", 1, paid),
		w.transfers.add(ctx, dep+":credit", "post", "customer:ctrader:"+ls, "platform:ctrader:"+ls, net, "USD", "deposit.credit", "deposit "+dep, "posted", 1, done),
	} {
		if err != nil {
			return err
		}
	}
	for i, j := range []struct{ kind, payload, dedup string }{
		{"sandbox.webhook", `{"eventId":"` + evts[0] + `"}`, evts[0] + ":1"},
		{"sandbox.webhook", `{"eventId":"` + evts[1] + `"}`, evts[1] + ":1"},
		{"sandbox.webhook", `{"eventId":"` + evts[2] + `"}`, evts[2] + ":1"},
		{"platform.push", `{"pushId":"` + push + `"}`, push},
		{"payments.poll", `{"id":"` + pay + `","n":1}`, pay + ":poll:1"},
		{"funding.deposit_expiry", `{"id":"` + dep + `"}`, dep},
		{"sandbox.timer", `{"id":"` + ref + `","action":"expire"}`, ref + ":expire:1"},
	} {
		at := t + int64(i)*50_000
		if err := w.jobs.add(ctx, "job_"+uuid.NewString(), j.kind, j.payload, j.dedup, "done", 1, 10, at, at, at, at+10_000); err != nil {
			return err
		}
	}
	return nil
}

func (w *depositWriter) flush(ctx context.Context) error {
	return flushAll(ctx, w.deposits, w.history, w.payments, w.payHistory, w.events, w.pushes, w.pushEvents, w.jobs, w.activity, w.transfers)
}

// hexOf is a 64-hex-digit stand-in for a request hash.
func hexOf(s string) string {
	h := strings.ReplaceAll(s, "-", "")
	for len(h) < 64 {
		h += h
	}
	return h[:64]
}

// inserter batches rows into one multi-row INSERT statement, written by
// flush. Callers flush the inserters of related tables together, parents
// first (foreign keys are checked at once), often enough to stay below the
// engines' limits on bound parameters (SQLite 32,766, PostgreSQL 65,535).
type inserter struct {
	tx    *sqlstore.Tx
	table string
	cols  []string
	args  []any
	rows  int
}

func newInserter(tx *sqlstore.Tx, table string, cols ...string) *inserter {
	return &inserter{tx: tx, table: table, cols: cols}
}

func (in *inserter) add(_ context.Context, vals ...any) error {
	if len(vals) != len(in.cols) {
		return errs.Ef(errs.Internal, "loadtest.seed", "%s: %d values for %d columns", in.table, len(vals), len(in.cols))
	}
	in.args = append(in.args, vals...)
	in.rows++
	return nil
}

func (in *inserter) flush(ctx context.Context) error {
	if in.rows == 0 {
		return nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(in.cols)), ", ") + ")"
	q := "INSERT INTO " + in.table + " (" + strings.Join(in.cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", in.rows), ", ")
	if _, err := in.tx.Exec(ctx, q, in.args...); err != nil {
		return fmt.Errorf("insert into %s: %w", in.table, err)
	}
	in.args, in.rows = in.args[:0], 0
	return nil
}

func flushAll(ctx context.Context, ins ...*inserter) error {
	for _, in := range ins {
		if err := in.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}
