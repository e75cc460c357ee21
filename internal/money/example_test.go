package money_test

import (
	"encoding/json"
	"fmt"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

func ExampleParse() {
	usd := money.MustCurrency("USD")
	a, err := money.Parse("12.3", usd)
	fmt.Println(a, err)
	_, err = money.Parse("1.234", usd)
	fmt.Println(errs.CodeOf(err), errs.MessageOf(err))
	// Output:
	// 12.30 USD <nil>
	// EINVALID amount 1.234 has more decimals than USD allows (2)
}

func ExampleConvert() {
	eur, usd := money.MustCurrency("EUR"), money.MustCurrency("USD")
	deposit, _ := money.Parse("100.00", eur)
	quote, _ := money.ParseRate("1.08345")
	rate, _ := quote.WithSpread(25) // the broker's 0.25 % margin
	credit, _ := money.Convert(deposit, usd, rate, money.RoundHalfEven)
	fmt.Println(deposit, "at", rate, "is", credit)
	// Output:
	// 100.00 EUR at 1.080741375 is 108.07 USD
}

func ExampleAmount_PercentBps() {
	a, _ := money.Parse("3.00", money.MustCurrency("USD"))
	for _, mode := range []money.RoundingMode{money.RoundHalfEven, money.RoundUp, money.RoundDown} {
		fee, _ := a.PercentBps(50, mode) // 0.5 % of 3.00 is 0.015
		fmt.Println(mode, fee)
	}
	// Output:
	// RoundHalfEven 0.02 USD
	// RoundUp 0.02 USD
	// RoundDown 0.01 USD
}

func ExampleAmount_MarshalJSON() {
	a, _ := money.Parse("0.001", money.MustCurrency("BTC"))
	b, _ := json.Marshal(a)
	fmt.Println(string(b))
	fmt.Println(a.JSONNumber())
	fmt.Printf("%q\n", a.Display("en"))
	// Output:
	// {"amount":"0.00100000","currency":"BTC"}
	// 0.00100000
	// "BTC\u00a00.00100000"
}
