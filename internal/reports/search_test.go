package reports_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opencashier/cashier/internal/funding"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/reports"
	"github.com/opencashier/cashier/internal/sqlstore"
)

func TestSearchFindsByEachFilter(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()
		all := newest(s.order)
		alice, bob := r.users["alice"].UserID, r.users["bob"].UserID
		for _, c := range []struct {
			name string
			f    reports.Filter
			want []string // transaction names, newest first
		}{
			{"no filter: everything, newest first", reports.Filter{}, all},
			{"kind any", reports.Filter{Kind: "any"}, all},
			{"user id", reports.Filter{UserID: bob}, []string{"bobWd", "bobSmallWd"}},
			{"e-mail, any case and spaces", reports.Filter{Email: "  ALICE@Example.com "},
				[]string{"aliceUnpaid", "aliceWd", "aliceEURDep", "aliceDeclined", "aliceDep"}},
			{"e-mail of a user", reports.Filter{Email: " =1+2@EXAMPLE.com"}, []string{"malloryDep"}},
			{"login", reports.Filter{Login: aliceEUR}, []string{"aliceEURDep"}},
			{"deposits", reports.Filter{Kind: reports.KindDeposit},
				[]string{"aliceUnpaid", "malloryDep", "aliceEURDep", "aliceDeclined", "aliceDep"}},
			{"withdrawals", reports.Filter{Kind: reports.KindWithdrawal}, []string{"bobWd", "bobSmallWd", "aliceWd"}},
			{"status completed, both kinds", reports.Filter{Status: []string{"completed"}},
				[]string{"bobSmallWd", "aliceWd", "malloryDep", "aliceEURDep", "aliceDep"}},
			{"status of one kind only", reports.Filter{Status: []string{"returned", "awaiting_payment"}}, []string{"aliceUnpaid", "bobWd"}},
			{"status declined", reports.Filter{Status: []string{"declined"}}, []string{"aliceDeclined"}},
			{"method card", reports.Filter{MethodID: "card"}, []string{"aliceUnpaid", "malloryDep", "aliceEURDep", "aliceDeclined", "aliceDep"}},
			{"method bank transfer", reports.Filter{MethodID: "bank-transfer"}, []string{"bobWd", "bobSmallWd", "aliceWd"}},
			{"created on day 2", reports.Filter{From: s.day2, To: s.day2.AddDate(0, 0, 1)}, []string{"aliceUnpaid", "bobWd", "bobSmallWd", "aliceWd"}},
			{"created before day 2", reports.Filter{To: s.day2}, []string{"malloryDep", "aliceEURDep", "aliceDeclined", "aliceDep"}},
			{"from the instant of a row, inclusive", reports.Filter{From: s.deposits["malloryDep"].CreatedAt},
				[]string{"aliceUnpaid", "bobWd", "bobSmallWd", "aliceWd", "malloryDep"}},
			{"currency EUR", reports.Filter{Currency: "eur"}, []string{"aliceEURDep"}},
			{"minimum amount, inclusive and exact", reports.Filter{MinAmount: mustAmount("100.00", usd)}, []string{"bobWd", "aliceWd", "aliceDep"}},
			{"minimum one cent above", reports.Filter{MinAmount: mustAmount("100.01", usd)}, []string{"bobWd", "aliceWd"}},
			{"maximum amount", reports.Filter{MaxAmount: mustAmount("50.00", usd)},
				[]string{"aliceUnpaid", "bobSmallWd", "malloryDep", "aliceDeclined"}},
			{"amount range with currency", reports.Filter{Currency: "USD", MinAmount: mustAmount("30.00", usd), MaxAmount: mustAmount("50.00", usd)},
				[]string{"bobSmallWd", "malloryDep", "aliceDeclined"}},
			{"amount bound in EUR keeps EUR", reports.Filter{MinAmount: mustAmount("0.01", eur)}, []string{"aliceEURDep"}},
			{"combined: alice's completed USD withdrawals", reports.Filter{UserID: alice, Kind: reports.KindWithdrawal, Status: []string{"completed"}, Login: aliceUSD},
				[]string{"aliceWd"}},
			{"nothing matches", reports.Filter{UserID: bob, Kind: reports.KindDeposit}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				p, err := r.rep.Search(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(s.ids(c.want...), rowIDs(p.Rows), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("rows (-want +got):\n%s", diff)
				}
				if p.Next != "" {
					t.Errorf("one page holds all %d rows, but Next is %q", len(p.Rows), p.Next)
				}
			})
		}
	})
}

func TestSearchRowShowsTheTransaction(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()
		p, err := r.rep.Search(ctx, reports.Filter{Login: aliceEUR})
		if err != nil || len(p.Rows) != 1 {
			t.Fatalf("EUR deposit: %+v, %v", p, err)
		}
		d := s.deposits["aliceEURDep"]
		want := reports.Row{ID: d.ID, Kind: reports.KindDeposit, UserID: r.users["alice"].UserID, Email: "alice@example.com",
			Login: aliceEUR, MethodID: "card", Provider: "sandbox", State: "completed", Amount: d.Amount, Fee: d.Fee, Credit: d.Credit,
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
		if diff := cmp.Diff(want, p.Rows[0]); diff != "" {
			t.Errorf("deposit row (-want +got):\n%s", diff)
		}
		if got := p.Rows[0].Credit.String(); got != "97.20 EUR" {
			t.Errorf("credit %s, want 97.20 EUR (100.00 less the 2.80 card fee)", got)
		}

		p, err = r.rep.Search(ctx, reports.Filter{UserID: r.users["bob"].UserID, Status: []string{"returned"}})
		if err != nil || len(p.Rows) != 1 {
			t.Fatalf("bob's returned withdrawal: %+v, %v", p, err)
		}
		w := s.withdrawals["bobWd"]
		want = reports.Row{ID: w.ID, Kind: reports.KindWithdrawal, UserID: r.users["bob"].UserID, Email: "bob@example.com",
			Login: bobUSD, MethodID: "bank-transfer", Provider: "sandbox", State: "returned", Amount: w.Amount, Fee: w.Fee, Credit: w.Net,
			CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
		if diff := cmp.Diff(want, p.Rows[0]); diff != "" {
			t.Errorf("withdrawal row (-want +got):\n%s", diff)
		}
	})
}

func TestSearchRefusesBadFilters(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			name string
			f    reports.Filter
			want string // part of the message
		}{
			{"unknown kind", reports.Filter{Kind: "refund"}, `kind "refund" is not deposit, withdrawal or any`},
			{"unknown status", reports.Filter{Status: []string{"lost"}}, `status "lost" is not a deposit or withdrawal status`},
			{"shown-only status", reports.Filter{Status: []string{"processing"}}, `only shown to traders`},
			{"withdrawal status for deposits", reports.Filter{Kind: reports.KindDeposit, Status: []string{"approved"}}, `status "approved" is not a deposit status`},
			{"deposit status for withdrawals", reports.Filter{Kind: reports.KindWithdrawal, Status: []string{"crediting"}}, `status "crediting" is not a withdrawal status`},
			{"negative login", reports.Filter{Login: -1}, "login -1 is not a trading account number"},
			{"end before start", reports.Filter{From: day, To: day.Add(-time.Hour)}, "must be after its start"},
			{"empty period", reports.Filter{From: day, To: day}, "must be after its start"},
			{"unknown currency", reports.Filter{Currency: "XYZ"}, `currency "XYZ" is not known`},
			{"amount in another currency", reports.Filter{Currency: "USD", MinAmount: mustAmount("1.00", eur)}, "the minimum amount is in EUR but the currency filter is USD"},
			{"bounds in two currencies", reports.Filter{MinAmount: mustAmount("1.00", usd), MaxAmount: mustAmount("2.00", eur)}, "the maximum amount is in EUR but the currency filter is USD"},
			{"negative bound", reports.Filter{MaxAmount: mustAmount("-1.00", usd)}, "is negative"},
			{"reversed bounds", reports.Filter{MinAmount: mustAmount("10.00", usd), MaxAmount: mustAmount("9.99", usd)}, "the minimum amount 10.00 USD is above the maximum 9.99 USD"},
			{"negative limit", reports.Filter{Limit: -1}, "limit -1 is out of range"},
			{"limit too large", reports.Filter{Limit: reports.MaxLimit + 1}, "out of range"},
			{"garbage cursor", reports.Filter{Cursor: "not a cursor!"}, "cursor is malformed"},
			{"cursor of another shape", reports.Filter{Cursor: "MTpub3Q6YW4gaWQ"}, "cursor is malformed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := r.rep.Search(ctx, c.f)
				if !isInvalid(err, c.want) {
					t.Errorf("Search: %v; want EINVALID with %q", err, c.want)
				}
			})
		}
	})
}

func TestSearchPagesAreStable(t *testing.T) {
	each(t, func(t *testing.T, db *sqlstore.DB) {
		r := newRig(t, db)
		s := drive(r)
		ctx := context.Background()
		// Five deposits created at the same instant: the id breaks the tie.
		var same []string
		for range 5 {
			d, err := r.fund.StartDeposit(ctx, depositRequest(r, "bob", len(same)))
			if err != nil {
				t.Fatal(err)
			}
			same = append(same, d.ID)
		}
		r.clk.Advance(time.Second)
		full, err := r.rep.Search(ctx, reports.Filter{Limit: reports.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Rows) != len(s.order)+5 {
			t.Fatalf("%d rows, want %d", len(full.Rows), len(s.order)+5)
		}

		var paged []string
		f := reports.Filter{Limit: 2}
		for page := 0; ; page++ {
			p, err := r.rep.Search(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rows) > 2 {
				t.Fatalf("page %d holds %d rows, limit 2", page, len(p.Rows))
			}
			paged = append(paged, rowIDs(p.Rows)...)
			if page == 1 {
				// New business between pages lands before the first page
				// and disturbs nothing after the cursor.
				r.deposit("alice", aliceUSD, money.New(1000, usd))
			}
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
		}
		if diff := cmp.Diff(rowIDs(full.Rows), paged); diff != "" {
			t.Errorf("paged rows differ from one page (-one +paged):\n%s", diff)
		}
	})
}

// depositRequest is a card deposit request of the user with a unique form id.
func depositRequest(r *rig, user string, n int) funding.DepositRequest {
	return funding.DepositRequest{ID: "same-instant-" + string(rune('a'+n)), Customer: r.users[user], Login: bobUSD, MethodID: "card",
		Amount: money.New(1000, usd), ReturnURL: "https://cashier.example/return", Lang: "en"}
}

func rowIDs(rows []reports.Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}
