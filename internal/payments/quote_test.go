package payments

import (
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

var (
	usd = money.MustCurrency("USD")
	eur = money.MustCurrency("EUR")
	jpy = money.MustCurrency("JPY")
	kwd = money.MustCurrency("KWD")
)

func amt(t *testing.T, s string, c money.Currency) money.Amount {
	t.Helper()
	a, err := money.Parse(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const quoteDoc = `{"methods":[
 {"id":"card","kind":"card","provider":"sandbox","icon":"card","names":{"en":"Bank card"},
  "deposit":{"limits":{
     "USD":{"min":"10.00","max":"10000.00"},
     "JPY":{"min":"1500","max":"1500000"},
     "KWD":{"min":"3.000","max":"3000.000"}},
   "fee":{"percent":"2.5","fixed":{"USD":"0.30","JPY":"40","KWD":"0.100"},"paidBy":"client"}},
  "withdrawal":{"limits":{"USD":{"min":"20.00"},"JPY":{"min":"3000"},"KWD":{"min":"6.000"}},
   "fee":{"percent":"1","paidBy":"broker"}}},
 {"id":"bank","kind":"bank_transfer","provider":"sandbox","icon":"bank","names":{"en":"Bank transfer"},
  "withdrawal":{"limits":{"USD":{"min":"5.00"}},"fee":{"fixed":{"USD":"5.00"},"paidBy":"client"}}}
]}`

func TestQuoteFees(t *testing.T) {
	c, err := LoadMethods(strings.NewReader(quoteDoc))
	if err != nil {
		t.Fatal(err)
	}
	// Fee = fixed + gross × percent, the percent part rounded up to the
	// minor unit. Each line is computed by hand in the comment.
	tests := []struct {
		name     string
		method   string
		dir      Direction
		gross    money.Amount
		fee, net money.Amount
		paidBy   Payer
	}{
		// 100.00 × 2.5 % = 2.50 exactly; + 0.30 = 2.80; net 97.20.
		{"USD exact", "card", Deposit, amt(t, "100.00", usd), amt(t, "2.80", usd), amt(t, "97.20", usd), PaidByClient},
		// 10.01 × 2.5 % = 0.25025 → 0.26 (up); + 0.30 = 0.56; net 9.45.
		{"USD rounds up", "card", Deposit, amt(t, "10.01", usd), amt(t, "0.56", usd), amt(t, "9.45", usd), PaidByClient},
		// 10001 × 2.5 % = 250.025 → 251 (up); + 40 = 291; net 9710.
		{"JPY zero decimals", "card", Deposit, amt(t, "10001", jpy), amt(t, "291", jpy), amt(t, "9710", jpy), PaidByClient},
		// 1500 × 2.5 % = 37.5 → 38; + 40 = 78; net 1422.
		{"JPY minimum", "card", Deposit, amt(t, "1500", jpy), amt(t, "78", jpy), amt(t, "1422", jpy), PaidByClient},
		// 10.001 × 2.5 % = 0.250025 → 0.251 (up); + 0.100 = 0.351; net 9.650.
		{"KWD three decimals", "card", Deposit, amt(t, "10.001", kwd), amt(t, "0.351", kwd), amt(t, "9.650", kwd), PaidByClient},
		// 3.000 × 2.5 % = 0.075 exactly; + 0.100 = 0.175; net 2.825.
		{"KWD minimum", "card", Deposit, amt(t, "3.000", kwd), amt(t, "0.175", kwd), amt(t, "2.825", kwd), PaidByClient},
		// Broker pays: 123.45 × 1 % = 1.2345 → 1.24; the customer gets all of it.
		{"broker pays USD", "card", Withdrawal, amt(t, "123.45", usd), amt(t, "1.24", usd), amt(t, "123.45", usd), PaidByBroker},
		// 3001 × 1 % = 30.01 → 31 JPY, broker's cost.
		{"broker pays JPY", "card", Withdrawal, amt(t, "3001", jpy), amt(t, "31", jpy), amt(t, "3001", jpy), PaidByBroker},
		// 6.001 × 1 % = 0.06001 → 0.061 KWD, broker's cost.
		{"broker pays KWD", "card", Withdrawal, amt(t, "6.001", kwd), amt(t, "0.061", kwd), amt(t, "6.001", kwd), PaidByBroker},
		// Fixed only.
		{"fixed only", "bank", Withdrawal, amt(t, "50.00", usd), amt(t, "5.00", usd), amt(t, "45.00", usd), PaidByClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := c.Quote(tc.method, tc.dir, tc.gross, "en")
			if err != nil {
				t.Fatal(err)
			}
			if q.Gross != tc.gross || q.Fee != tc.fee || q.Net != tc.net || q.PaidBy != tc.paidBy {
				t.Errorf("Quote = gross %s fee %s net %s paid by %s; want gross %s fee %s net %s paid by %s",
					q.Gross, q.Fee, q.Net, q.PaidBy, tc.gross, tc.fee, tc.net, tc.paidBy)
			}
		})
	}
}

func TestQuoteLimits(t *testing.T) {
	c, err := LoadMethods(strings.NewReader(quoteDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method string
		dir    Direction
		amount money.Amount
		lang   string
		kind   LimitKind
		limit  money.Amount
		msg    string
	}{
		{"USD below", "card", Deposit, amt(t, "9.99", usd), "en", BelowMinimum, amt(t, "10.00", usd), "The minimum for Bank card is $10.00"},
		{"USD above", "card", Deposit, amt(t, "10000.01", usd), "en", AboveMaximum, amt(t, "10000.00", usd), "The maximum for Bank card is $10,000.00"},
		{"USD above in German", "card", Deposit, amt(t, "10000.01", usd), "de", AboveMaximum, amt(t, "10000.00", usd), "The maximum for Bank card is 10.000,00\u00a0$"},
		{"JPY below", "card", Deposit, amt(t, "1499", jpy), "en", BelowMinimum, amt(t, "1500", jpy), "The minimum for Bank card is ¥1,500"},
		{"JPY above", "card", Deposit, amt(t, "1500001", jpy), "en", AboveMaximum, amt(t, "1500000", jpy), "The maximum for Bank card is ¥1,500,000"},
		{"KWD below", "card", Deposit, amt(t, "2.999", kwd), "en", BelowMinimum, amt(t, "3.000", kwd), "The minimum for Bank card is KWD\u00a03.000"},
		{"KWD above", "card", Deposit, amt(t, "3000.001", kwd), "en", AboveMaximum, amt(t, "3000.000", kwd), "The maximum for Bank card is KWD\u00a03,000.000"},
		{"fee takes it all", "bank", Withdrawal, amt(t, "5.00", usd), "en", FeeTooLarge, amt(t, "5.00", usd), "The fee of $5.00 for Bank transfer is more than the amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Quote(tc.method, tc.dir, tc.amount, tc.lang)
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Quote = %v, want EINVALID", err)
			}
			le, ok := AsLimitError(err)
			if !ok {
				t.Fatalf("error %v has no *LimitError", err)
			}
			if le.Kind != tc.kind || le.Limit != tc.limit || le.Amount != tc.amount {
				t.Errorf("LimitError = %+v, want kind %s limit %s", le, tc.kind, tc.limit)
			}
			if got := errs.MessageOf(err); got != tc.msg {
				t.Errorf("message = %q, want %q", got, tc.msg)
			}
		})
	}
	// The limits themselves are inside.
	for _, ok := range []money.Amount{amt(t, "10.00", usd), amt(t, "10000.00", usd), amt(t, "1500", jpy), amt(t, "3000.000", kwd)} {
		if _, err := c.Quote("card", Deposit, ok, "en"); err != nil {
			t.Errorf("Quote(%s) at the limit: %v", ok, err)
		}
	}
	other := []struct {
		name   string
		method string
		dir    Direction
		amount money.Amount
		code   errs.Code
	}{
		{"unknown method", "cheque", Deposit, amt(t, "10.00", usd), errs.NotFound},
		{"currency not offered", "card", Deposit, amt(t, "10.00", eur), errs.Invalid},
		{"direction not offered", "bank", Deposit, amt(t, "10.00", usd), errs.Invalid},
		{"zero", "card", Deposit, money.Zero(usd), errs.Invalid},
		{"negative", "card", Deposit, amt(t, "-20.00", usd), errs.Invalid},
	}
	for _, tc := range other {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Quote(tc.method, tc.dir, tc.amount, "en"); errs.CodeOf(err) != tc.code {
				t.Errorf("Quote = %v, want %s", err, tc.code)
			}
		})
	}
}
