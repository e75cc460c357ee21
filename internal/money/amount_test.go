package money

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/errs"
)

func TestDecimalAndString(t *testing.T) {
	tests := []struct {
		name    string
		amount  Amount
		decimal string
		str     string
	}{
		{"USD cents", New(1230, usd), "12.30", "12.30 USD"},
		{"USD negative cents", New(-5, usd), "-0.05", "-0.05 USD"},
		{"USD zero", Zero(usd), "0.00", "0.00 USD"},
		{"JPY", New(1000, jpy), "1000", "1000 JPY"},
		{"JPY negative", New(-1, jpy), "-1", "-1 JPY"},
		{"KWD", New(1, kwd), "0.001", "0.001 KWD"},
		{"BTC", New(100000, btc), "0.00100000", "0.00100000 BTC"},
		{"BTC whole", New(2_100_000_000_000_000, btc), "21000000.00000000", "21000000.00000000 BTC"},
		{"USD max", New(math.MaxInt64, usd), "92233720368547758.07", "92233720368547758.07 USD"},
		{"USD min", New(MinMinor, usd), "-92233720368547758.07", "-92233720368547758.07 USD"},
		{"BTC min", New(MinMinor, btc), "-92233720368.54775807", "-92233720368.54775807 BTC"},
		{"zero value", Amount{}, "0", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.amount.Decimal(); got != tc.decimal {
				t.Errorf("Decimal() = %q, want %q", got, tc.decimal)
			}
			if got := tc.amount.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := string(tc.amount.JSONNumber()); got != tc.decimal {
				t.Errorf("JSONNumber() = %q, want %q", got, tc.decimal)
			}
		})
	}
}

// Every representable amount survives Decimal → Parse unchanged, in
// currencies of every digit count.
func TestDecimalParseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260101, 4217))
	curs := []Currency{jpy, usd, kwd, MustCurrency("CLF"), usdt, btc}
	values := []int64{0, 1, -1, 9, 10, 99, 100, -100, math.MaxInt64, MinMinor, math.MaxInt64 - 1, MinMinor + 1}
	for range 5000 {
		v := int64(rng.Uint64())
		if v == math.MinInt64 {
			continue
		}
		// Also small magnitudes, where leading zeros in the fraction matter.
		values = append(values, v, v>>uint(rng.IntN(63)))
	}
	for _, cur := range curs {
		for _, v := range values {
			a := New(v, cur)
			back, err := Parse(a.Decimal(), cur)
			if err != nil {
				t.Fatalf("Parse(%q, %s): %v", a.Decimal(), cur, err)
			}
			if back != a {
				t.Fatalf("round trip of %d %s via %q gave %d", v, cur, a.Decimal(), back.Minor())
			}
			num, err := ParseNumber(a.JSONNumber(), cur)
			if err != nil || num != a {
				t.Fatalf("ParseNumber(%q, %s) = %v, %v", a.JSONNumber(), cur, num, err)
			}
		}
	}
}

func TestNewPanicsOnMinInt64(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(math.MinInt64) did not panic")
		}
	}()
	New(math.MinInt64, usd)
}

func TestFromMinor(t *testing.T) {
	got, err := FromMinor(-42, kwd)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(New(-42, kwd), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_, err = FromMinor(math.MinInt64, usd)
	wantCode(t, err, errs.Invalid, "out of range")
	_, err = FromMinor(1, Currency{})
	wantCode(t, err, errs.Invalid, "currency is not set")
}

func TestSignAndPredicates(t *testing.T) {
	tests := []struct {
		name         string
		a            Amount
		sign         int
		zero, neg    bool
		negated, abs Amount
	}{
		{"positive", New(5, usd), 1, false, false, New(-5, usd), New(5, usd)},
		{"negative", New(-5, usd), -1, false, true, New(5, usd), New(5, usd)},
		{"zero", Zero(usd), 0, true, false, Zero(usd), Zero(usd)},
		{"max", New(math.MaxInt64, usd), 1, false, false, New(MinMinor, usd), New(math.MaxInt64, usd)},
		{"min", New(MinMinor, usd), -1, false, true, New(math.MaxInt64, usd), New(math.MaxInt64, usd)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Sign(); got != tc.sign {
				t.Errorf("Sign() = %d, want %d", got, tc.sign)
			}
			if got := tc.a.IsZero(); got != tc.zero {
				t.Errorf("IsZero() = %v", got)
			}
			if got := tc.a.IsNegative(); got != tc.neg {
				t.Errorf("IsNegative() = %v", got)
			}
			if diff := cmp.Diff(tc.negated, tc.a.Neg()); diff != "" {
				t.Errorf("Neg() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.abs, tc.a.Abs()); diff != "" {
				t.Errorf("Abs() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddSub(t *testing.T) {
	tests := []struct {
		name     string
		a, b     Amount
		add, sub Amount
		addErr   string
		subErr   string
	}{
		{name: "cents", a: New(1050, usd), b: New(275, usd), add: New(1325, usd), sub: New(775, usd)},
		{name: "goes negative", a: New(100, usd), b: New(250, usd), add: New(350, usd), sub: New(-150, usd)},
		{name: "up to max", a: New(math.MaxInt64-1, jpy), b: New(1, jpy), add: New(math.MaxInt64, jpy), sub: New(math.MaxInt64-2, jpy)},
		{name: "past max", a: New(math.MaxInt64, jpy), b: New(1, jpy), addErr: "9223372036854775807 JPY + 1 JPY is out of range", sub: New(math.MaxInt64-1, jpy)},
		{name: "down to min", a: New(MinMinor+1, jpy), b: New(1, jpy), add: New(MinMinor+2, jpy), sub: New(MinMinor, jpy)},
		{name: "past min", a: New(MinMinor, jpy), b: New(1, jpy), add: New(MinMinor+1, jpy), subErr: "is out of range"},
		{name: "min minus max", a: New(MinMinor, jpy), b: New(math.MaxInt64, jpy), add: Zero(jpy), subErr: "is out of range"},
		{name: "currency mismatch", a: New(1, usd), b: New(1, eur), addErr: "currency mismatch: USD and EUR", subErr: "currency mismatch: USD and EUR"},
		{name: "same code, other digits", a: New(1, usd), b: New(1, Currency{Code: "USD", Digits: 3}), addErr: "currency mismatch", subErr: "currency mismatch"},
		{name: "zero value is not zero dollars", a: New(1, usd), b: Amount{}, addErr: "USD and no currency", subErr: "USD and no currency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			add, err := tc.a.Add(tc.b)
			if tc.addErr != "" {
				wantCode(t, err, errs.Invalid, tc.addErr)
			} else if err != nil {
				t.Errorf("Add: %v", err)
			} else if diff := cmp.Diff(tc.add, add); diff != "" {
				t.Errorf("Add (-want +got):\n%s", diff)
			}
			sub, err := tc.a.Sub(tc.b)
			if tc.subErr != "" {
				wantCode(t, err, errs.Invalid, tc.subErr)
			} else if err != nil {
				t.Errorf("Sub: %v", err)
			} else if diff := cmp.Diff(tc.sub, sub); diff != "" {
				t.Errorf("Sub (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCmp(t *testing.T) {
	tests := []struct {
		name string
		a, b Amount
		want int
	}{
		{"less", New(1, usd), New(2, usd), -1},
		{"equal", New(2, usd), New(2, usd), 0},
		{"greater", New(3, usd), New(2, usd), 1},
		{"extremes", New(MinMinor, usd), New(math.MaxInt64, usd), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Cmp(tc.b)
			if err != nil || got != tc.want {
				t.Errorf("Cmp = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	_, err := New(1, usd).Cmp(New(1, jpy))
	wantCode(t, err, errs.Invalid, "currency mismatch: USD and JPY")
}

func TestSum(t *testing.T) {
	tests := []struct {
		name string
		cur  Currency
		as   []Amount
		want Amount
		err  string
	}{
		{name: "none", cur: kwd, want: Zero(kwd)},
		{name: "several", cur: usd, as: []Amount{New(1050, usd), New(-50, usd), New(1, usd)}, want: New(1001, usd)},
		{name: "overflow in the middle is fine", cur: jpy, as: []Amount{New(math.MaxInt64, jpy), New(10, jpy), New(-20, jpy)}, want: New(math.MaxInt64-10, jpy)},
		{name: "total out of range", cur: jpy, as: []Amount{New(math.MaxInt64, jpy), New(math.MaxInt64, jpy), New(-1, jpy)}, err: "sum of 3 JPY amounts is out of range"},
		{name: "total is min int64", cur: jpy, as: []Amount{New(MinMinor, jpy), New(-1, jpy)}, err: "out of range"},
		{name: "mixed currencies", cur: usd, as: []Amount{New(1, usd), New(1, eur)}, err: "currency mismatch: EUR in a sum of USD"},
		{name: "no currency", cur: Currency{}, err: "currency is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sum(tc.cur, tc.as...)
			if tc.err != "" {
				wantCode(t, err, errs.Invalid, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		a    Amount
		json string
	}{
		{"USD", New(1230, usd), `{"amount":"12.30","currency":"USD"}`},
		{"negative USD", New(-5, usd), `{"amount":"-0.05","currency":"USD"}`},
		{"JPY", New(1000, jpy), `{"amount":"1000","currency":"JPY"}`},
		{"KWD", New(1234, kwd), `{"amount":"1.234","currency":"KWD"}`},
		{"BTC", New(100000, btc), `{"amount":"0.00100000","currency":"BTC"}`},
		{"max", New(math.MaxInt64, usd), `{"amount":"92233720368547758.07","currency":"USD"}`},
		{"min", New(MinMinor, btc), `{"amount":"-92233720368.54775807","currency":"BTC"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.json {
				t.Errorf("Marshal = %s, want %s", b, tc.json)
			}
			var back Amount
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.a, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONInsideStructs(t *testing.T) {
	type deposit struct {
		ID     string  `json:"id"`
		Amount Amount  `json:"amount"`
		Fee    *Amount `json:"fee,omitempty"`
	}
	in := deposit{ID: "dep_1", Amount: New(10000, eur)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"dep_1","amount":{"amount":"100.00","currency":"EUR"}}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out deposit
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// cTrader's changebalance wants preciseAmount as a bare JSON number.
func TestJSONNumberInCTraderBody(t *testing.T) {
	body := struct {
		Login         int64       `json:"login"`
		PreciseAmount json.Number `json:"preciseAmount"`
	}{8673590, New(12345, usd).JSONNumber()}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"login":8673590,"preciseAmount":123.45}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	b, err = json.Marshal(struct {
		P json.Number `json:"preciseAmount"`
	}{New(1, btc).JSONNumber()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"preciseAmount":0.00000001}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}

func TestUnmarshalJSON(t *testing.T) {
	accepts := []struct {
		name string
		json string
		want Amount
	}{
		{"bare number", `{"amount":12.3,"currency":"USD"}`, New(1230, usd)},
		{"currency first", `{"currency":"KWD","amount":"0.001"}`, New(1, kwd)},
		{"spaces in the document", ` { "amount" : "5" , "currency" : "JPY" } `, New(5, jpy)},
	}
	for _, tc := range accepts {
		t.Run(tc.name, func(t *testing.T) {
			var got Amount
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("null leaves the amount alone", func(t *testing.T) {
		got := New(7, usd)
		if err := json.Unmarshal([]byte(`null`), &got); err != nil {
			t.Fatal(err)
		}
		if got != New(7, usd) {
			t.Errorf("got %v", got)
		}
	})
	rejects := []struct {
		name string
		json string
		msg  string
	}{
		{"excess decimals", `{"amount":"1.234","currency":"USD"}`, "amount 1.234 has more decimals than USD allows (2)"},
		{"excess decimals as number", `{"amount":1.234,"currency":"USD"}`, "more decimals than USD allows (2)"},
		{"exponent", `{"amount":1e2,"currency":"USD"}`, "has an exponent"},
		{"unknown currency", `{"amount":"1","currency":"XYZ"}`, `currency "XYZ" is unknown`},
		{"lower-case currency", `{"amount":"1","currency":"usd"}`, "upper case"},
		{"missing currency", `{"amount":"1"}`, "amount has no currency"},
		{"missing amount", `{"currency":"USD"}`, "amount is missing"},
		{"null amount", `{"amount":null,"currency":"USD"}`, "amount is missing"},
		{"boolean amount", `{"amount":true,"currency":"USD"}`, "is not a decimal number"},
		{"unknown field", `{"amount":"1","currency":"USD","fx":"1.1"}`, `an amount must look like {"amount":"12.30","currency":"USD"}`},
		{"bare string", `"12.30"`, "must look like"},
		{"bare number", `12.30`, "must look like"},
		{"empty string amount", `{"amount":"","currency":"USD"}`, "amount is empty"},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			var got Amount
			err := json.Unmarshal([]byte(tc.json), &got)
			wantCode(t, err, errs.Invalid, tc.msg)
			if got != (Amount{}) {
				t.Errorf("Unmarshal changed the amount to %v on error", got)
			}
		})
	}
}

func TestMarshalJSONNeedsCurrency(t *testing.T) {
	_, err := json.Marshal(Amount{})
	if err == nil || !strings.Contains(err.Error(), "currency is not set") {
		t.Errorf("Marshal(Amount{}) error = %v", err)
	}
}
