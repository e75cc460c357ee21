package ledger

import (
	"context"
	"database/sql"
	"slices"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/sqlstore"
)

// Unbounded accounts (no lower and no upper bound: a provider's clearing
// account, fee income, a trading login's platform account) are not locked
// when a transfer is booked on them: nothing about them has to be checked
// against their balance, and the shared ones are in every deposit, so a
// lock taken at booking time and held until the caller's transaction
// commits would queue every deposit behind the one before it. Their
// currency is checked from an unlocked read (cached), and the transfer's
// effect on their four sums is kept with the transaction
// (sqlstore.Tx.Local) and written once, just before the commit
// (sqlstore.StageLedger), as relative updates, locking them in account-id
// order: every transaction takes these row locks last, in one order, and
// holds them only while it commits. The transfers themselves are inserted
// at booking time as before, so sums and transfers commit together.
//
// Bounded accounts are locked and read at booking time (in id order), as
// before: a bound can only be checked against a balance no one else can
// change meanwhile. Their new sums are written with the others before the
// commit (they are locked already, so this moves no lock), which keeps the
// statements of a booking as few as before. A later booking or read in the
// same transaction adds what the transaction has pending to what it reads.

// accountInfo is what never changes about an unbounded account and what
// booking on it needs to know.
type accountInfo struct {
	currency money.Currency
	normal   Side
}

// maxCachedAccounts bounds the cache of accountInfo (a few dozen bytes
// each): the shared accounts and the platform accounts of the logins that
// were active lately fit.
const maxCachedAccounts = 1 << 16

// infoCache keeps accountInfo of unbounded accounts by account id, so that
// booking on them reads nothing. Accounts are never changed or deleted
// once created (CreateAccount refuses other settings for an existing id),
// so an entry never goes stale; entries are only added once the
// transaction that read them has committed, so that an account created in
// a transaction that rolls back is not remembered.
type infoCache struct {
	mu sync.Mutex
	m  map[string]accountInfo
}

func (c *infoCache) get(id string) (accountInfo, bool) {
	if c == nil {
		return accountInfo{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	info, ok := c.m[id]
	return info, ok
}

func (c *infoCache) put(infos map[string]accountInfo) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]accountInfo)
	}
	for id, info := range infos {
		if _, ok := c.m[id]; !ok && len(c.m) >= maxCachedAccounts {
			for old := range c.m { // drop an arbitrary entry
				delete(c.m, old)
				break
			}
		}
		c.m[id] = info
	}
}

// bookingAccounts returns the accounts with the given ids (sorted, without
// repeats) for booking: bounded ones locked, with their sums (including
// what tx has booked on them and not written yet); unbounded ones
// unlocked, with zero sums, so that applying transfers to them yields the
// transfers' deltas (they are listed in deferred). Bounded accounts cost
// the one locking read they always did; an unbounded account not in the
// cache costs one more, unlocked read. It returns errs.NotFound for an
// unknown account.
func (l *Ledger) bookingAccounts(ctx context.Context, tx *sqlstore.Tx, ids []string) (accs map[string]*Account, deferred []string, err error) {
	unbounded := make(map[string]accountInfo)
	var others []string // bounded, or not known yet
	for _, id := range ids {
		if info, ok := l.infos.get(id); ok {
			unbounded[id] = info
		} else {
			others = append(others, id)
		}
	}
	accs = make(map[string]*Account, len(ids))
	if len(others) > 0 {
		if accs, err = lockBounded(ctx, tx, others); err != nil {
			return nil, nil, err
		}
		var rest []string
		for _, id := range others {
			if accs[id] == nil {
				rest = append(rest, id)
			}
		}
		if len(rest) > 0 {
			if testHookBetweenReads != nil {
				testHookBetweenReads()
			}
			read, late, err := readAccountInfos(ctx, tx, rest)
			if err != nil {
				return nil, nil, err
			}
			if len(late) > 0 {
				// Bounded accounts committed by another transaction
				// between the two reads: lock them too.
				more, err := lockBounded(ctx, tx, late)
				if err != nil {
					return nil, nil, err
				}
				for _, id := range late {
					if more[id] == nil {
						return nil, nil, errs.Ef(errs.NotFound, "ledger.Post", "account %s not found", id)
					}
					accs[id] = more[id]
				}
			}
			for id, info := range read {
				unbounded[id] = info
			}
			tx.AfterCommit(func() { l.infos.put(read) })
		}
	}
	p := pendingOf(tx)
	for _, id := range ids {
		if info, ok := unbounded[id]; ok {
			accs[id] = &Account{AccountSpec: AccountSpec{ID: id, Currency: info.currency, Normal: info.normal}}
			deferred = append(deferred, id)
		} else if !p.addTo(accs[id]) { // its earlier bookings in tx are not written yet
			return nil, nil, errs.Ef(errs.Invalid, "ledger.Post", "account %s's totals overflow", id)
		}
	}
	return accs, deferred, nil
}

// testHookBetweenReads, when set by a test, runs between the locking
// read and the unlocked one of bookingAccounts.
var testHookBetweenReads func()

// lockBounded reads the accounts among ids that have a bound, locking
// them, in id order so that concurrent transactions never wait on each
// other in a cycle. Accounts without a bound, and unknown ids, are left
// out (and not locked: PostgreSQL locks only the rows a query returns).
func lockBounded(ctx context.Context, tx *sqlstore.Tx, ids []string) (map[string]*Account, error) {
	out := make(map[string]*Account, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		rows, err := tx.Query(ctx, "SELECT "+accountColumns+" FROM ledger_accounts WHERE id IN ("+placeholders(len(chunk))+
			") AND (lower_bound IS NOT NULL OR upper_bound IS NOT NULL) ORDER BY id"+tx.ForUpdate(), anySlice(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				_ = rows.Close()
				return nil, err
			}
			out[a.ID] = &a
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readAccountInfos reads, without locking, the accounts that lockBounded
// did not return: unbounded ones (returned in infos) and, rarely, bounded
// ones committed by another transaction since (returned in late, in id
// order). It returns errs.NotFound for the first unknown id in order.
func readAccountInfos(ctx context.Context, tx *sqlstore.Tx, ids []string) (infos map[string]accountInfo, late []string, err error) {
	infos = make(map[string]accountInfo, len(ids))
	found := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		rows, err := tx.Query(ctx, "SELECT id, currency, normal, lower_bound IS NOT NULL OR upper_bound IS NOT NULL FROM ledger_accounts WHERE id IN ("+placeholders(len(chunk))+")", anySlice(chunk)...)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var (
				id, cur, normal string
				bounded         bool
			)
			if err := rows.Scan(&id, &cur, &normal, &bounded); err != nil {
				_ = rows.Close()
				return nil, nil, err
			}
			found[id] = true
			if bounded {
				late = append(late, id)
				continue
			}
			c, err := money.LookupCurrency(cur)
			if err != nil {
				_ = rows.Close()
				return nil, nil, errs.Ef(errs.Internal, "ledger.Post", "account %s has unknown currency %q", id, cur)
			}
			infos[id] = accountInfo{currency: c, normal: Side(normal)}
		}
		if err := rows.Close(); err != nil {
			return nil, nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range ids {
		if !found[id] {
			return nil, nil, errs.Ef(errs.NotFound, "ledger.Post", "account %s not found", id)
		}
	}
	slices.Sort(late)
	return infos, late, nil
}

// pendingKey is the sqlstore.Tx.Local key of a transaction's pendingSums.
type pendingKey struct{}

// pendingSums are the changes to account sums that a transaction has
// booked and not yet written: all of them are written just before the
// commit. Those of bounded accounts could be written at once (the
// transaction holds their locks from booking on), but writing them with
// the others costs no more statements than before the unbounded ones were
// deferred.
type pendingSums struct {
	deltas    map[string]sums
	unbounded map[string]bool // accounts of deltas that are not locked yet
	flushes   bool            // the write before the commit is registered
}

// pendingOf returns tx's pending deltas (empty if it booked none).
func pendingOf(tx *sqlstore.Tx) *pendingSums {
	return tx.Local(pendingKey{}, func() any { return &pendingSums{} }).(*pendingSums)
}

// merged returns the sums of p and d for account id, and false if a sum
// would overflow.
func (p *pendingSums) merged(id string, d sums) (sums, bool) {
	s := p.deltas[id]
	ok := add(&s.debitsPosted, d.debitsPosted) && add(&s.creditsPosted, d.creditsPosted) &&
		add(&s.debitsPending, d.debitsPending) && add(&s.creditsPending, d.creditsPending)
	return s, ok
}

// addTo adds the pending deltas of a's account to a's sums, so that a
// transaction reading an account after booking on it sees its own
// bookings. It returns false if a sum would overflow.
func (p *pendingSums) addTo(a *Account) bool {
	d, ok := p.deltas[a.ID]
	if !ok {
		return true
	}
	return add(&a.debitsPosted, d.debitsPosted) && add(&a.creditsPosted, d.creditsPosted) &&
		add(&a.debitsPending, d.debitsPending) && add(&a.creditsPending, d.creditsPending)
}

// minus returns a - b, and false if a difference overflows.
func minus(a, b sums) (sums, bool) {
	ok := add(&a.debitsPosted, -b.debitsPosted) && add(&a.creditsPosted, -b.creditsPosted) &&
		add(&a.debitsPending, -b.debitsPending) && add(&a.creditsPending, -b.creditsPending)
	return a, ok
}

// check fails, before anything is written, if adding deltas to what the
// transaction has pending would overflow.
func (p *pendingSums) check(deltas map[string]sums) error {
	for id, d := range deltas {
		if _, ok := p.merged(id, d); !ok {
			return errs.Ef(errs.Invalid, "ledger.Post", "the transfers would overflow account %s's totals", id)
		}
	}
	return nil
}

// record adds deltas (check has passed) to the transaction's pending
// deltas and makes sure they are written before the commit; unbounded
// names the accounts among them that the transaction has not locked.
func (p *pendingSums) record(tx *sqlstore.Tx, deltas map[string]sums, unbounded []string) {
	for id, d := range deltas {
		if d == (sums{}) {
			continue
		}
		if p.deltas == nil {
			p.deltas, p.unbounded = make(map[string]sums), make(map[string]bool)
		}
		p.deltas[id], _ = p.merged(id, d)
	}
	for _, id := range unbounded {
		if _, ok := p.deltas[id]; ok {
			p.unbounded[id] = true
		}
	}
	if !p.flushes && len(p.deltas) > 0 {
		p.flushes = true
		tx.BeforeCommit(sqlstore.StageLedger, p.flush)
	}
}

// noOverflow returns the SQL condition that adding delta to column does
// not overflow a 64-bit integer (PostgreSQL would fail the statement,
// SQLite would turn the sum into a floating-point number). CASE keeps the
// bounds' own arithmetic from overflowing: SQL does not otherwise promise
// the order in which conditions are evaluated.
func noOverflow(column, delta string) string {
	return column + " BETWEEN CASE WHEN " + delta + " < 0 THEN -9223372036854775807 - 1 - " + delta + " ELSE -9223372036854775807 - 1 END" +
		" AND CASE WHEN " + delta + " > 0 THEN 9223372036854775807 - " + delta + " ELSE 9223372036854775807 END"
}

// The statements that add deltas to sums. Only the rows of unbounded
// accounts need the overflow guards: a bounded account's new sums were
// computed (and checked) from its sums read under the lock the
// transaction still holds.
var (
	// flushRowQuery and flushRowGuardedQuery add the deltas to one
	// account's sums, on SQLite (the guarded one numbers its parameters to
	// use each twice).
	flushRowQuery = `UPDATE ledger_accounts SET debits_posted = debits_posted + ?, credits_posted = credits_posted + ?,
	debits_pending = debits_pending + ?, credits_pending = credits_pending + ? WHERE id = ?`
	flushRowGuardedQuery = `UPDATE ledger_accounts SET debits_posted = debits_posted + ?1, credits_posted = credits_posted + ?2,
	debits_pending = debits_pending + ?3, credits_pending = credits_pending + ?4 WHERE id = ?5 AND ` +
		noOverflow("debits_posted", "?1") + " AND " + noOverflow("credits_posted", "?2") + " AND " +
		noOverflow("debits_pending", "?3") + " AND " + noOverflow("credits_pending", "?4")

	// flushHead and flushTail or flushGuardedTail enclose the VALUES rows
	// of the statement that adds the deltas to the sums of several
	// accounts.
	flushHead = `UPDATE ledger_accounts SET debits_posted = debits_posted + v.column1, credits_posted = credits_posted + v.column2,
	debits_pending = debits_pending + v.column3, credits_pending = credits_pending + v.column4 FROM (VALUES `
	flushTail        = ") AS v WHERE ledger_accounts.id = v.column5"
	flushGuardedTail = flushTail + " AND " +
		noOverflow("ledger_accounts.debits_posted", "v.column1") + " AND " + noOverflow("ledger_accounts.credits_posted", "v.column2") + " AND " +
		noOverflow("ledger_accounts.debits_pending", "v.column3") + " AND " + noOverflow("ledger_accounts.credits_pending", "v.column4")
)

// flush writes the pending deltas just before the commit, as relative
// updates. The accounts the transaction has not locked yet (unbounded
// ones) are locked in id order, the order every transaction locks them in:
// on PostgreSQL, when there are two or more, by one SELECT … ORDER BY id
// FOR NO KEY UPDATE (the lock an UPDATE takes) first; then the sums are
// written in one statement per 400 accounts, which waits for nothing more
// than one lock. On SQLite, which has one writer and no row locks, more
// than two accounts are written with one prepared statement each (cheaper
// there than parsing a large statement). It returns errs.Invalid if a sum
// would overflow.
func (p *pendingSums) flush(ctx context.Context, tx *sqlstore.Tx) error {
	const op = "ledger.Post"
	ids := make([]string, 0, len(p.deltas))
	var unbounded []string
	for id, d := range p.deltas {
		if d == (sums{}) {
			continue
		}
		ids = append(ids, id)
		if p.unbounded[id] {
			unbounded = append(unbounded, id)
		}
	}
	slices.Sort(ids)
	slices.Sort(unbounded)
	if tx.Dialect() == sqlstore.Postgres && len(unbounded) > 1 {
		if err := lockInOrder(ctx, tx, unbounded); err != nil {
			return errs.Wrap(op+": lock accounts", err)
		}
	}
	var written int64
	count := func(res sql.Result, err error) error {
		if err != nil {
			return errs.Wrap(op+": write sums", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return errs.Wrap(op+": write sums", err)
		}
		written += n
		return nil
	}
	if tx.Dialect() == sqlstore.SQLite && len(ids) > 2 {
		stmts := map[bool]*sql.Stmt{} // by guarded
		defer func() {
			for _, stmt := range stmts {
				_ = stmt.Close()
			}
		}()
		for _, id := range ids {
			guarded := p.unbounded[id]
			stmt := stmts[guarded]
			if stmt == nil {
				query := flushRowQuery
				if guarded {
					query = flushRowGuardedQuery
				}
				var err error
				if stmt, err = tx.Prepare(ctx, query); err != nil {
					return errs.Wrap(op+": write sums", err)
				}
				stmts[guarded] = stmt
			}
			d := p.deltas[id]
			if err := count(stmt.ExecContext(ctx, d.debitsPosted, d.creditsPosted, d.debitsPending, d.creditsPending, id)); err != nil {
				return err
			}
		}
	} else {
		for start := 0; start < len(ids); start += 400 {
			chunk := ids[start:min(start+400, len(ids))]
			q := make([]byte, 0, len(flushHead)+len(flushGuardedTail)+len(chunk)*100)
			q = append(q, flushHead...)
			args := make([]any, 0, len(chunk)*5)
			guarded := false
			for i, id := range chunk {
				if i > 0 {
					q = append(q, ',')
				}
				q = append(q, "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT))"...)
				d := p.deltas[id]
				args = append(args, d.debitsPosted, d.creditsPosted, d.debitsPending, d.creditsPending, id)
				guarded = guarded || p.unbounded[id]
			}
			if guarded {
				q = append(q, flushGuardedTail...)
			} else {
				q = append(q, flushTail...)
			}
			if err := count(tx.Exec(ctx, string(q), args...)); err != nil {
				return err
			}
		}
	}
	if written != int64(len(ids)) {
		return errs.E(errs.Invalid, op, "the transaction's transfers would overflow an account's totals")
	}
	// Written: a read or a booking after this (by a later stage) starts
	// from the table again.
	clear(p.deltas)
	clear(p.unbounded)
	p.flushes = false
	return nil
}

// lockInOrder locks the accounts' rows for an update of their sums, in id
// order (ids are sorted), on PostgreSQL.
func lockInOrder(ctx context.Context, tx *sqlstore.Tx, ids []string) error {
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		rows, err := tx.Query(ctx, "SELECT id FROM ledger_accounts WHERE id IN ("+placeholders(len(chunk))+") ORDER BY id FOR NO KEY UPDATE", anySlice(chunk)...)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// account returns a read of an account (getAccount's results) in the
// transaction of p with the sums the transaction has booked on it and not
// yet written.
func (p *pendingSums) account(a Account, err error) (Account, error) {
	if err != nil {
		return a, err
	}
	if !p.addTo(&a) {
		return Account{}, errs.Ef(errs.Invalid, "ledger.Account", "account %s's totals overflow", a.ID)
	}
	return a, nil
}
