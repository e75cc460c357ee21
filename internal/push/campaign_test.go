package push_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/jobs"
	"github.com/opencashier/cashier/internal/ledger"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/platform"
	"github.com/opencashier/cashier/internal/platform/ctrader"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
	"github.com/opencashier/cashier/internal/push"
	"github.com/opencashier/cashier/internal/sqlstore"
	"github.com/opencashier/cashier/internal/testutil/dbtest"
)

// The fault campaign: thousands of balance pushes through the cTrader
// simulator with latency beyond the client's timeout, 5xx before applying,
// apply-then-timeout, apply-then-reset, dropped connections, workers that die
// right before or right after the call, and a fresh worker (new runner) every
// few dozen jobs. A push proved not applied is sent again (within the
// service's bounds; the pushes whose worker dies before every call use them
// up). The ledger books each push when it is enqueued and reverses it when
// the push settles as not applied. Afterwards every push is applied exactly
// once or proved not applied, none is left in doubt (look-up on), every
// resend followed a proof that nothing was applied, and every simulator
// balance equals the ledger's mirror of it, to the cent.
//
// CASHIER_CAMPAIGN_PUSHES sets the size (default 2000).

const (
	campaignLogins  = 20
	losingLogin     = 5000020
	campaignSeed    = 20261121
	campaignTimeout = 500 * time.Millisecond
	// campaignMaxSends bounds the sends of a push; the window is long
	// enough never to cut them short, so that both databases give up on
	// the same pushes (those whose worker dies before every call).
	campaignMaxSends = 6
	initialBalance   = 10000000 // 100,000.00 USD in cents: enough that no withdrawal
	// depends on the order of the deposits before it, so outcomes are deterministic
)

func campaignSize(t *testing.T) int {
	n := 2000
	if s := os.Getenv("CASHIER_CAMPAIGN_PUSHES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("CASHIER_CAMPAIGN_PUSHES=%q is not a positive number", s)
		}
		n = v
	}
	if testing.Short() {
		n = 200
	}
	return n
}

func campaignFaults() ctradersim.FaultConfig {
	return ctradersim.FaultConfig{Seed: campaignSeed, Endpoints: map[string]ctradersim.Rule{
		ctradersim.EndpointChangeBalance: {
			Latency: ctradersim.Duration(10 * campaignTimeout), LatencyP: 0.04, // far beyond the client timeout: never applied
			ErrorP: 0.05, ErrorStatus: 503, ErrorCode: "UNKNOWN_ERROR", // 5xx before applying
			DropP:         0.04, // connection dropped before applying
			ApplyTimeoutP: 0.04, // applied, answer never comes
			ApplyResetP:   0.04, // applied, connection reset
		},
		ctradersim.EndpointBalanceHistory: {DropP: 0.1}, // look-ups fail now and then too
	}}
}

// crashingConnector plays a worker process that dies right before or right
// after the platform call, for a deterministic share of pushes.
type crashingConnector struct {
	*ctrader.Client
}

func crashPoint(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	switch h.Sum32() % 50 {
	case 0:
		return "before"
	case 1:
		return "after"
	}
	return ""
}

func (c crashingConnector) ChangeBalance(ctx context.Context, ch platform.BalanceChange) (platform.Applied, error) {
	if crashPoint(ch.ExternalID) == "before" {
		panic("worker died after committing sending, before the call")
	}
	a, err := c.Client.ChangeBalance(ctx, ch)
	if crashPoint(ch.ExternalID) == "after" {
		panic("worker died after the call, before recording the answer")
	}
	return a, err
}

var quiet = slog.New(slog.DiscardHandler)

type campaignResult struct {
	states     map[string]push.State
	inDoubt    int
	applied    int
	notApplied int
	resent     int // pushes sent more than once
}

func runCampaign(t *testing.T, db *sqlstore.DB, n int, withLookup bool) campaignResult {
	ctx := context.Background()
	seed := ctradersim.Seed{Managers: []ctradersim.Manager{{Login: 1001, Password: "manager-password"}}}
	for i := range campaignLogins {
		seed.Traders = append(seed.Traders, ctradersim.TraderSeed{Login: int64(5000001 + i), Currency: "USD", Balance: "100000.00", Password: "pw"})
	}
	srv, err := ctradersim.Start(ctx, ctradersim.Config{Seed: seed, Faults: campaignFaults(), DisableHistoryExtension: !withLookup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// One account has open positions with a loss larger than its balance:
	// every withdrawal from it is refused with NOT_ENOUGH_MONEY.
	if _, err := srv.Sim().SetPositions(losingLogin, "-200000.00", "0"); err != nil {
		t.Fatal(err)
	}
	client, err := ctrader.New(ctrader.Config{BaseURL: srv.URL(), ManagerLogin: 1001, ManagerPassword: "manager-password", Timeout: campaignTimeout})
	if err != nil {
		t.Fatal(err)
	}
	var conn platform.Connector = crashingConnector{client}
	if withLookup {
		conn = struct {
			crashingConnector
			platform.ChangeLookup
		}{crashingConnector{client}, client}
	}

	fc := clock.NewFake(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	l := ledger.New(db, fc)
	usd := money.MustCurrency("USD")
	if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: "funding:USD", Kind: "psp_clearing", Currency: usd, Normal: ledger.DebitNormal}); err != nil {
		t.Fatal(err)
	}
	mirror := func(login int64) string { return fmt.Sprintf("platform:%d", login) }
	for i := range campaignLogins {
		login := int64(5000001 + i)
		if _, err := l.CreateAccount(ctx, ledger.AccountSpec{ID: mirror(login), Kind: "platform_mirror", Currency: usd, Normal: ledger.CreditNormal, Lower: new(int64)}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Post(ctx, ledger.Transfer{ID: fmt.Sprintf("opening:%d", login), Debit: "funding:USD", Credit: mirror(login), Amount: money.New(initialBalance, usd)}); err != nil {
			t.Fatal(err)
		}
	}
	svc := push.New(db, conn, push.Options{Clock: fc, SendTimeout: campaignTimeout, LookupMargin: time.Second, RetryAfter: time.Second,
		MaxSends: campaignMaxSends, ResendWindow: 24 * time.Hour, Logger: quiet})
	// The owner reverses the booking of a push that did not happen.
	svc.RegisterOwner("campaign", push.OwnerFunc(func(ctx context.Context, tx *sqlstore.Tx, p push.Push) error {
		if p.State.WasApplied() {
			return nil
		}
		debit, credit := "funding:USD", mirror(p.Change.Login)
		if p.Change.Type == platform.Deposit {
			debit, credit = credit, debit
		}
		_, err := l.PostTx(ctx, tx, ledger.Transfer{ID: "reverse:" + p.ID, Debit: debit, Credit: credit, Amount: p.Change.Amount, Code: "push.reversed"})
		return err
	}))

	// Enqueue: each push booked and enqueued in one transaction, as funding does.
	for i := range n {
		login := int64(5000001 + i%(campaignLogins-1))
		amount := money.New(int64(100+(i*7919)%9900), usd) // 1.00 to 99.99
		typ, debit, credit := platform.Deposit, "funding:USD", mirror(login)
		switch {
		case i%10 == 9: // from the account whose losses leave nothing to withdraw
			login = losingLogin
			typ, debit, credit = platform.Withdraw, mirror(login), "funding:USD"
		case i%3 == 2:
			typ, debit, credit = platform.Withdraw, credit, debit
		}
		id := fmt.Sprintf("psh_%05d", i)
		err := db.Transact(ctx, func(tx *sqlstore.Tx) error {
			if _, err := l.PostTx(ctx, tx, ledger.Transfer{ID: "book:" + id, Debit: debit, Credit: credit, Amount: amount, Code: "push.booked"}); err != nil {
				return err
			}
			_, err := svc.EnqueueTx(ctx, tx, push.Request{ID: id, Owner: "campaign", OwnerID: id,
				Change: platform.BalanceChange{Login: login, Type: typ, Amount: amount, Comment: "campaign"}})
			return err
		})
		if err != nil {
			t.Fatalf("enqueue %s: %v", id, err)
		}
	}

	// Deliver with a fresh runner (a restarted worker) every few batches;
	// move the clock on whenever nothing is due, until no job is left.
	restarts := 0
	for round := 0; ; round++ {
		r := jobs.NewRunner(db, jobs.Options{Clock: fc, Workers: 8, HeartbeatInterval: -1, Lease: time.Minute,
			BackoffBase: time.Second, BackoffMax: 5 * time.Second, WorkerID: fmt.Sprintf("worker-%d", round), Logger: quiet})
		svc.Register(r)
		restarts++
		ran := 0
		for range 6 {
			k, err := r.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ran += k
			if k == 0 {
				break
			}
		}
		if ran > 0 {
			continue
		}
		st, err := jobs.Stats(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if st[jobs.Queued]+st[jobs.Running] == 0 {
			if st[jobs.Dead] != 0 {
				t.Fatalf("%d push jobs died", st[jobs.Dead])
			}
			break
		}
		if round > 100000 {
			t.Fatalf("campaign does not converge: %v", st)
		}
		fc.Advance(time.Minute) // leases, backoff and look-up deadlines pass
	}

	// Check: the platform's history against our pushes.
	res := campaignResult{states: map[string]push.State{}}
	ps, err := svc.List(ctx, "", n+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n {
		t.Fatalf("%d pushes, want %d", len(ps), n)
	}
	onPlatform := map[string]int{}
	simBalance := map[int64]int64{}
	for i := range campaignLogins {
		login := int64(5000001 + i)
		hist, err := srv.Sim().History(login)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			onPlatform[h.ExternalID]++
		}
		tr, err := srv.Sim().Trader(login)
		if err != nil {
			t.Fatal(err)
		}
		simBalance[login] = tr.Balance.Minor()
	}
	var doubtfulDelta = map[int64]int64{}
	for _, p := range ps {
		res.states[p.ID] = p.State
		times := onPlatform[p.ID]
		switch {
		case p.State.WasApplied():
			res.applied++
			if times != 1 {
				t.Errorf("push %s is %s but the platform applied it %d times", p.ID, p.State, times)
			}
		case p.State == push.Rejected || p.State == push.ResolvedNotApplied:
			res.notApplied++
			if times != 0 {
				t.Errorf("push %s is %s but the platform applied it %d times", p.ID, p.State, times)
			}
			if p.State == push.ResolvedNotApplied && p.Sends < campaignMaxSends {
				t.Errorf("push %s was given up after %d sends, with %d allowed", p.ID, p.Sends, campaignMaxSends)
			}
		case p.State == push.InDoubt:
			res.inDoubt++
			if p.Evidence == "" {
				t.Errorf("push %s is in doubt without evidence", p.ID)
			}
			if times > 1 {
				t.Errorf("push %s in doubt was applied %d times", p.ID, times)
			}
			if times == 0 { // booked in our ledger, not on the platform (yet)
				d := p.Change.Amount.Minor()
				if p.Change.Type == platform.Withdraw {
					d = -d
				}
				doubtfulDelta[p.Change.Login] += d
			}
		default:
			t.Errorf("push %s ended in %s", p.ID, p.State)
		}
		if p.Sends > 1 {
			// A push is sent again only once it is proved not applied: after
			// a definite refusal that applied nothing and may pass later (a
			// rate limit, a credential the connector could not get on a
			// loaded machine), or after a look-up found nothing once the
			// earlier send could no longer land. Never after an answer that
			// may have applied it.
			evs, err := svc.Events(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			proved := 0
			for _, e := range evs {
				switch {
				case e.From == push.Sending && e.To == push.Queued && strings.HasPrefix(e.Detail, "refused, nothing applied"):
					proved++
				case e.From == push.InDoubt && e.To == push.Queued && strings.HasPrefix(e.Detail, "look-up after") &&
					strings.Contains(e.Detail, "not applied"):
					proved++
				case e.To == push.Queued && e.From != "":
					t.Errorf("push %s went back to queued without proof: %+v", p.ID, e)
				}
			}
			if p.Sends > proved+1 {
				t.Errorf("push %s was sent %d times after %d proofs that nothing was applied", p.ID, p.Sends, proved)
			}
			if !withLookup && proved != p.Sends-1 {
				t.Errorf("push %s was sent %d times without look-up, after %d refusals", p.ID, p.Sends, proved)
			}
			res.resent++
		}
	}
	for login, bal := range simBalance {
		b, err := l.Balance(ctx, mirror(login))
		if err != nil {
			t.Fatal(err)
		}
		if want := b.Posted.Minor() - doubtfulDelta[login]; bal != want {
			t.Errorf("login %d: simulator balance %d, ledger %d (less %d in doubt) = %d", login, bal, b.Posted.Minor(), doubtfulDelta[login], want)
		}
	}
	rep, err := ledger.Verify(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("ledger invariants:\n%s", rep)
	}
	simStats := srv.Sim().Stats()
	if simStats.DuplicateExternalIDs != 0 {
		t.Errorf("the simulator saw %d changes with an externalId it had already applied", simStats.DuplicateExternalIDs)
	}
	stats := simStats.Endpoints[ctradersim.EndpointChangeBalance]
	t.Logf("%d pushes: %d applied, %d not applied, %d in doubt, %d sent more than once; %d runners; platform faults: %+v",
		n, res.applied, res.notApplied, res.inDoubt, res.resent, restarts, stats)
	if rejected := countState(res.states, push.Rejected); withLookup && rejected == 0 {
		t.Error("no push was rejected by the platform")
	}
	if stats.Latency == 0 || stats.Error == 0 || stats.Drop == 0 || stats.ApplyTimeout == 0 || stats.ApplyReset == 0 {
		t.Errorf("the campaign did not exercise every fault: %+v", stats)
	}
	return res
}

func TestFaultCampaignWithLookup(t *testing.T) {
	n := campaignSize(t)
	var mu sync.Mutex
	results := map[sqlstore.Dialect]campaignResult{}
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		res := runCampaign(t, db, n, true)
		if res.inDoubt != 0 {
			t.Errorf("%d pushes left in doubt although the platform offers a look-up", res.inDoubt)
		}
		if res.resent == 0 {
			t.Error("no push was sent again after the look-up proved it not applied")
		}
		if countState(res.states, push.ResolvedNotApplied) == 0 {
			t.Error("no push used up its sends (the workers that die before every call)")
		}
		mu.Lock()
		results[db.Dialect()] = res
		mu.Unlock()
	}, ledger.Schema, jobs.Schema, push.Schema)
	// The same seed gives the same outcome, whatever the database and the
	// interleaving of workers.
	// The outcome is whether the platform holds the change. (Whether it was
	// learnt from the answer or from a look-up may differ: on a loaded
	// machine an answer can miss the client's timeout.)
	if a, b := results[sqlstore.SQLite], results[sqlstore.Postgres]; a.states != nil && b.states != nil {
		if diff := cmp.Diff(outcomes(a.states), outcomes(b.states)); diff != "" {
			t.Errorf("two runs with seed %d differ (-sqlite +postgres):\n%s", campaignSeed, diff)
		}
	}
}

func TestFaultCampaignWithoutLookup(t *testing.T) {
	n := campaignSize(t) / 8
	dbtest.Each(t, func(t *testing.T, db *sqlstore.DB) {
		res := runCampaign(t, db, n, false)
		if res.inDoubt == 0 {
			t.Error("no push was left in doubt: the campaign's faults did not reach the push")
		}
	}, ledger.Schema, jobs.Schema, push.Schema)
}

func countState(states map[string]push.State, want push.State) int {
	n := 0
	for _, s := range states {
		if s == want {
			n++
		}
	}
	return n
}

// outcomes maps each push to whether the platform holds its change.
func outcomes(states map[string]push.State) map[string]bool {
	out := make(map[string]bool, len(states))
	for id, s := range states {
		out[id] = s.WasApplied()
	}
	return out
}
