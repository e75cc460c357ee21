package reconcile

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/push"
)

// accountBooks is one read of our own records for the account comparison.
type accountBooks struct {
	pushes map[int64][]push.Push // by login, newest first
	byID   map[string]push.Push
	ledger map[int64]money.Amount // posted balance of platform:<platform>:<login>
}

// readBooks reads every push, then the ledger's platform accounts (of one
// login when login is set).
func (s *Service) readBooks(ctx context.Context, login int64) (accountBooks, error) {
	const op = "reconcile.readBooks"
	b := accountBooks{pushes: map[int64][]push.Push{}, byID: map[string]push.Push{}, ledger: map[int64]money.Amount{}}
	ps, err := s.d.Pushes.List(ctx, "", math.MaxInt32)
	if err != nil {
		return b, errs.Wrap(op, err)
	}
	for _, p := range ps {
		b.byID[p.ID] = p
		if login == 0 || p.Change.Login == login {
			b.pushes[p.Change.Login] = append(b.pushes[p.Change.Login], p)
		}
	}
	prefix := "platform:" + s.cfg.Platform + ":"
	accounts, err := s.d.Ledger.Accounts(ctx, prefix)
	if err != nil {
		return b, errs.Wrap(op, err)
	}
	for _, a := range accounts {
		n, err := strconv.ParseInt(strings.TrimPrefix(a.ID, prefix), 10, 64)
		if err != nil || n <= 0 || (login != 0 && n != login) {
			continue
		}
		b.ledger[n] = a.Balance().Posted
	}
	return b, nil
}

// logins are the trading accounts the books know, in order.
func (b accountBooks) logins() []int64 {
	var out []int64
	for l := range b.pushes {
		out = append(out, l)
	}
	for l := range b.ledger {
		if _, ok := b.pushes[l]; !ok {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// platformState remembers, for one run, what the platform turned out not
// to offer, so that it is asked once and named once in the notes.
type platformState struct {
	noHistory bool
	noLookup  bool
	notes     []string
}

func (ps *platformState) note(n string) {
	if !slices.Contains(ps.notes, n) {
		ps.notes = append(ps.notes, n)
	}
}

// accountResult is what comparing one trading account gave.
type accountResult struct {
	figures  AccountFigures
	findings []finding
	skipped  []string
	pushes   int
}

// reconcileAccounts compares every trading account (or opts.Login), then
// compares again those that showed a difference, from a fresh read, and
// keeps only what the second read confirms.
func (s *Service) reconcileAccounts(ctx context.Context, run *Run, opts RunOptions, ps *platformState) ([]finding, error) {
	books, err := s.readBooks(ctx, opts.Login)
	if err != nil {
		return nil, err
	}
	logins := books.logins()
	if opts.Login != 0 && !slices.Contains(logins, opts.Login) {
		ps.note("login " + itoa(opts.Login) + " has no pushes and no ledger account: nothing to compare")
	}
	results := map[int64]accountResult{}
	var again []int64
	for _, login := range logins {
		r := s.checkAccount(ctx, login, books, opts, ps)
		results[login] = r
		if len(r.findings) > 0 {
			again = append(again, login)
		}
	}
	if len(again) > 0 {
		fresh, err := s.readBooks(ctx, opts.Login)
		if err != nil {
			return nil, err
		}
		for _, login := range again {
			r := s.checkAccount(ctx, login, fresh, opts, ps)
			// A difference counts only if both reads show it.
			first := map[string]bool{}
			for _, f := range results[login].findings {
				first[f.key()] = true
			}
			kept := r.findings[:0]
			for _, f := range r.findings {
				if first[f.key()] {
					kept = append(kept, f)
				}
			}
			r.findings = kept
			results[login] = r
		}
	}
	var out []finding
	for _, login := range logins {
		r := results[login]
		run.Accounts++
		run.Pushes += r.pushes
		run.Detail.Accounts = append(run.Detail.Accounts, r.figures)
		run.Detail.Skipped = append(run.Detail.Skipped, r.skipped...)
		out = append(out, r.findings...)
	}
	return out, nil
}

// checkAccount compares one trading account's ledger, pushes and platform.
func (s *Service) checkAccount(ctx context.Context, login int64, b accountBooks, opts RunOptions, ps *platformState) accountResult {
	subject := itoa(login)
	pushes := b.pushes[login]
	r := accountResult{pushes: len(pushes), figures: AccountFigures{Login: login}}

	var cur money.Currency
	ledgerBal, hasLedger := b.ledger[login]
	switch {
	case hasLedger:
		cur = ledgerBal.Currency()
	case len(pushes) > 0:
		cur = pushes[0].Change.Amount.Currency()
		ledgerBal = money.Zero(cur)
	}
	net := money.Zero(cur)
	for _, p := range pushes {
		switch {
		case p.State.WasApplied():
			r.figures.Applied++
			if p.Change.Type.IsBonus() {
				continue
			}
			sum, err := net.Add(signed(p.Change.Type, p.Change.Amount))
			if err != nil {
				r.skipped = append(r.skipped, "login "+subject+": push "+p.ID+" is in "+p.Change.Amount.Currency().Code+", not the account's "+cur.Code)
				continue
			}
			net = sum
		case p.State == push.Rejected || p.State == push.ResolvedNotApplied:
			r.figures.NotApplied++
		default:
			r.figures.InFlight++
		}
	}
	r.figures.Ledger, r.figures.Pushes = ledgerBal.String(), net.String()
	ledgerText := ledgerBal.String() + " (ledger " + s.PlatformAccountID(login) + ")"
	if ledgerBal != net {
		r.findings = append(r.findings, finding{Kind: KindLedgerVsPushes, Subject: subject,
			Expected: ledgerText, Actual: net.String() + " (net of the pushes recorded applied)",
			Evidence: map[string]any{
				"ledger": map[string]any{"account": s.PlatformAccountID(login), "posted": ledgerBal.String(), "exists": hasLedger},
				"pushes": map[string]any{"net": net.String(), "applied": r.figures.Applied, "notApplied": r.figures.NotApplied, "inFlight": r.figures.InFlight},
			}})
	}

	platformNet, compared := s.comparePlatform(ctx, login, pushes, b, opts, ps, &r)
	if compared {
		r.figures.Platform = platformNet.String()
		if ledgerBal != platformNet {
			items := []string{}
			for _, f := range r.findings {
				if f.Ref != "" {
					items = append(items, string(f.Kind)+" "+f.Ref)
				}
			}
			r.findings = append(r.findings, finding{Kind: KindLedgerVsPlatform, Subject: subject,
				Expected: ledgerText, Actual: platformNet.String() + " (net of the platform's changes with our ids)",
				Evidence: map[string]any{
					"ledger":      map[string]any{"account": s.PlatformAccountID(login), "posted": ledgerBal.String(), "exists": hasLedger},
					"platform":    map[string]any{"net": platformNet.String()},
					"pushes":      map[string]any{"net": net.String(), "applied": r.figures.Applied},
					"explainedBy": items,
				}})
		}
	}

	// The platform's balance is recorded, never compared: it also holds the
	// opening balance, trading P&L, swaps, commissions and changes made
	// outside the cashier.
	if s.d.Platform != nil {
		if a, err := s.d.Platform.Account(ctx, login); err == nil {
			r.figures.Balance = a.Balance.String()
			moved := net
			if compared {
				moved = platformNet
			}
			if outside, err := a.Balance.Sub(moved); err == nil {
				r.figures.Outside = outside.String()
			}
		}
	}
	return r
}

// comparePlatform checks each push against the platform: with its balance
// history when there is one (and then returns the net of the changes with
// our ids and true), else with a look-up by our id.
func (s *Service) comparePlatform(ctx context.Context, login int64, pushes []push.Push, b accountBooks, opts RunOptions, ps *platformState, r *accountResult) (money.Amount, bool) {
	if s.d.History != nil && !ps.noHistory {
		changes, err := s.d.History.BalanceHistory(ctx, login)
		switch {
		case errors.Is(err, platform.ErrLookupUnsupported):
			ps.noHistory = true
		case errs.Is(err, errs.NotFound):
			// The platform does not know the account: it holds none of our
			// changes.
			return s.compareHistory(ctx, login, pushes, nil, b, r), true
		case err != nil:
			r.skipped = append(r.skipped, "login "+itoa(login)+": the platform's balance history: "+err.Error())
			return money.Amount{}, false
		default:
			return s.compareHistory(ctx, login, pushes, changes, b, r), true
		}
	}
	ps.note(noteNoHistory)
	s.compareByLookup(ctx, login, pushes, opts, ps, r)
	return money.Amount{}, false
}

// The notes of a platform that offers less than a balance history.
const (
	noteNoHistory = "the platform offers no balance history: the ledger is not compared with the platform, nor the amounts of pushes, nor changes we have no push for"
	noteLookup    = "pushes are looked up on the platform by our id, one by one"
	noteNoLookup  = "the platform offers no look-up by our id either: pushes are compared with the ledger only"
)

// compareHistory checks pushes against the balance history and returns the
// net of the platform's changes with our ids, leaving out pushes in flight.
func (s *Service) compareHistory(ctx context.Context, login int64, pushes []push.Push, changes []PlatformChange, b accountBooks, r *accountResult) money.Amount {
	subject := itoa(login)
	byExt := map[string][]PlatformChange{}
	for _, c := range changes {
		if c.ExternalID != "" {
			byExt[c.ExternalID] = append(byExt[c.ExternalID], c)
		}
	}
	mine := map[string]push.Push{}
	skip := map[string]bool{} // in flight: may or may not be on the platform yet
	for _, p := range pushes {
		mine[p.ID] = p
		found := byExt[p.ID]
		switch {
		case !p.State.Final():
			skip[p.ID] = true
		case p.State.WasApplied():
			switch {
			case len(found) == 0:
				r.findings = append(r.findings, finding{Kind: KindPushMissing, Subject: subject, Ref: p.ID,
					Expected: describePush(p) + " on the platform", Actual: "no change with externalId " + p.ID,
					Evidence: map[string]any{"push": pushEvidence(p), "platform": []any{}}})
			case len(found) > 1:
				r.findings = append(r.findings, finding{Kind: KindPushDuplicated, Subject: subject, Ref: p.ID,
					Expected: describePush(p) + " once", Actual: itoa(int64(len(found))) + " changes with externalId " + p.ID,
					Evidence: map[string]any{"push": pushEvidence(p), "platform": changesEvidence(found)}})
			case found[0].Type != p.Change.Type || found[0].Delta != signed(p.Change.Type, p.Change.Amount):
				r.findings = append(r.findings, finding{Kind: KindPushAmount, Subject: subject, Ref: p.ID,
					Expected: describePush(p), Actual: describeChange(found[0]),
					Evidence: map[string]any{"push": pushEvidence(p), "platform": changesEvidence(found)}})
			}
		default: // rejected or resolved not applied
			if len(found) > 0 {
				r.findings = append(r.findings, finding{Kind: KindPushNotApplied, Subject: subject, Ref: p.ID,
					Expected: "no change (push " + string(p.State) + ")", Actual: describeChange(found[0]),
					Evidence: map[string]any{"push": pushEvidence(p), "platform": changesEvidence(found)}})
			}
		}
	}
	exts := make([]string, 0, len(byExt))
	for ext := range byExt {
		exts = append(exts, ext)
	}
	slices.Sort(exts)
	for _, ext := range exts {
		if _, ok := mine[ext]; ok || !s.ours(ext) {
			continue
		}
		other, known := b.byID[ext]
		if !known {
			// Created after our read: look again.
			if p, err := s.d.Pushes.Get(ctx, ext); err == nil {
				other, known = p, true
				if p.Change.Login == login {
					skip[ext] = true // the next run compares it
					continue
				}
			}
		}
		expected := "no change (no push of ours has this id)"
		evidence := map[string]any{"platform": changesEvidence(byExt[ext])}
		if known {
			expected = "no change (push " + ext + " is for login " + itoa(other.Change.Login) + ")"
			evidence["push"] = pushEvidence(other)
		}
		r.findings = append(r.findings, finding{Kind: KindPlatformUnknown, Subject: subject, Ref: ext,
			Expected: expected, Actual: describeChange(byExt[ext][0]), Evidence: evidence})
	}

	cur := money.Currency{}
	if len(pushes) > 0 {
		cur = pushes[0].Change.Amount.Currency()
	}
	if bal, ok := b.ledger[login]; ok {
		cur = bal.Currency()
	}
	net := money.Zero(cur)
	for _, ext := range exts {
		if skip[ext] || (!s.ours(ext) && mine[ext].ID == "") {
			continue
		}
		for _, c := range byExt[ext] {
			if c.Type.IsBonus() {
				continue
			}
			if sum, err := net.Add(c.Delta); err == nil {
				net = sum
			} else {
				r.skipped = append(r.skipped, "login "+subject+": the platform's change "+ext+" is in "+c.Delta.Currency().Code+", not "+cur.Code)
			}
		}
	}
	return net
}

// compareByLookup checks that pushes recorded applied are on the platform
// and pushes recorded not applied are not, one look-up by our id each
// (only pushes settled at or after opts.From). Amounts cannot be compared.
func (s *Service) compareByLookup(ctx context.Context, login int64, pushes []push.Push, opts RunOptions, ps *platformState, r *accountResult) {
	lookup, ok := s.d.Platform.(platform.ChangeLookup)
	if !ok || ps.noLookup {
		ps.note(noteNoLookup)
		return
	}
	subject := itoa(login)
	for _, p := range pushes {
		if !p.State.Final() || (!opts.From.IsZero() && p.UpdatedAt.Before(opts.From)) {
			continue
		}
		receipt, found, err := lookup.FindChange(ctx, login, p.ID)
		switch {
		case errors.Is(err, platform.ErrLookupUnsupported):
			ps.noLookup = true
			ps.note(noteNoLookup)
			return
		case err != nil:
			r.skipped = append(r.skipped, "login "+subject+": looking up push "+p.ID+": "+err.Error())
			return
		}
		ps.note(noteLookup)
		lookedUp := map[string]any{"found": found}
		if found && receipt.BalanceHistoryID != 0 {
			lookedUp["balanceHistoryId"] = receipt.BalanceHistoryID
		}
		switch {
		case p.State.WasApplied() && !found:
			r.findings = append(r.findings, finding{Kind: KindPushMissing, Subject: subject, Ref: p.ID,
				Expected: describePush(p) + " on the platform", Actual: "no change with externalId " + p.ID,
				Evidence: map[string]any{"push": pushEvidence(p), "platform": lookedUp}})
		case !p.State.WasApplied() && found:
			r.findings = append(r.findings, finding{Kind: KindPushNotApplied, Subject: subject, Ref: p.ID,
				Expected: "no change (push " + string(p.State) + ")", Actual: "a change with externalId " + p.ID,
				Evidence: map[string]any{"push": pushEvidence(p), "platform": lookedUp}})
		}
	}
}
