package payments

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/language"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
	"github.com/opencashier/cashier/internal/psp"
)

// Direction says which way a payment moves money.
type Direction string

// The directions.
const (
	Deposit    Direction = "deposit"    // the customer pays the broker
	Withdrawal Direction = "withdrawal" // the broker pays the customer (a payout)
)

// Valid reports whether d is Deposit or Withdrawal.
func (d Direction) Valid() bool { return d == Deposit || d == Withdrawal }

// Payer says who bears a payment method's fee.
type Payer string

// The payers.
const (
	// PaidByClient: the fee is taken from the customer's money: a deposit
	// credits less than was paid, a withdrawal pays out less than was
	// debited.
	PaidByClient Payer = "client"
	// PaidByBroker: the customer moves the full amount; the fee is the
	// broker's cost, recorded with the payment.
	PaidByBroker Payer = "broker"
)

// Limit is the smallest and largest amount a method takes in one currency.
// Either may be zero: no minimum, or no maximum.
type Limit struct {
	Min money.Amount
	Max money.Amount
}

// FeeRule is a method's fee in one direction: a fixed part per currency
// plus a percentage of the gross amount, in basis points.
type FeeRule struct {
	Fixed      map[string]money.Amount // by currency code; absent means 0
	PercentBps int64                   // 250 is 2.5 %
	PaidBy     Payer
}

// DirectionRules are a method's rules for deposits or for withdrawals.
type DirectionRules struct {
	// KYCLevel is the lowest KYC level a customer needs to use the method.
	KYCLevel int
	// Limits are per currency code; the keys are the currencies the method
	// offers in this direction.
	Limits map[string]Limit
	Fee    FeeRule
}

// Currencies returns the currency codes the rules offer, sorted.
func (r *DirectionRules) Currencies() []string {
	return slices.Sorted(maps.Keys(r.Limits))
}

// Method is one payment method as configured.
type Method struct {
	ID       string
	Kind     psp.MethodKind
	Provider string
	// Order sorts methods on the cashier screens, lowest first.
	Order int
	// Icon names an embedded SVG icon (see IconNames).
	Icon string
	// Names are display names by BCP 47 language; "en" is always present.
	Names map[string]string
	// Countries, when not empty, are the only ISO 3166-1 alpha-2 countries
	// the method is offered in. ExcludedCountries are never offered it.
	Countries         []string
	ExcludedCountries []string
	// Deposit and Withdrawal are nil when the method does not offer that
	// direction.
	Deposit    *DirectionRules
	Withdrawal *DirectionRules
}

// Rules returns the method's rules for d, or nil if it does not offer d.
func (m Method) Rules(d Direction) *DirectionRules {
	switch d {
	case Deposit:
		return m.Deposit
	case Withdrawal:
		return m.Withdrawal
	}
	return nil
}

// Name returns the display name in lang: the exact tag, then its base
// language, then English.
func (m Method) Name(lang string) string {
	if n, ok := m.Names[lang]; ok {
		return n
	}
	if tag, err := language.Parse(lang); err == nil {
		base, _ := tag.Base()
		if n, ok := m.Names[base.String()]; ok {
			return n
		}
	}
	return m.Names["en"]
}

// OfferedIn reports whether the method is offered to customers in country
// (ISO 3166-1 alpha-2, upper case). An empty country matches only methods
// without a country list.
func (m Method) OfferedIn(country string) bool {
	if slices.Contains(m.ExcludedCountries, country) {
		return false
	}
	return len(m.Countries) == 0 || slices.Contains(m.Countries, country)
}

// Catalog is the set of configured payment methods. It is immutable once
// loaded and safe for concurrent use.
type Catalog struct {
	methods []Method // sorted by Order, then ID
	byID    map[string]int
}

//go:embed default_methods.json
var defaultMethods []byte

// DefaultMethodsJSON returns the built-in method configuration that the
// demo uses and that LoadMethodsFile falls back to when no file is named.
func DefaultMethodsJSON() []byte { return bytes.Clone(defaultMethods) }

// DefaultCatalog parses the built-in configuration. It panics if the
// embedded file is broken, which a test prevents.
func DefaultCatalog() *Catalog {
	c, err := LoadMethods(bytes.NewReader(defaultMethods))
	if err != nil {
		panic("payments: embedded default_methods.json: " + err.Error())
	}
	return c
}

// LoadMethodsFile reads a methods file (see docs/payments.md); an empty
// path gives DefaultCatalog. It returns the errors of LoadMethods and an
// errs.Invalid error when the file cannot be read.
func LoadMethodsFile(path string) (*Catalog, error) {
	if path == "" {
		return DefaultCatalog(), nil
	}
	f, err := os.Open(path) // #nosec G304 -- the methods file the operator configures
	if err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Op: "payments.LoadMethodsFile", Message: fmt.Sprintf("cannot read payment methods file %s", path), Err: err}
	}
	defer f.Close()
	c, err := LoadMethods(f)
	if err != nil {
		return nil, errs.Wrap("payments.LoadMethodsFile: "+path, err)
	}
	return c, nil
}

type methodsFile struct {
	Methods []methodJSON `json:"methods"`
}

type methodJSON struct {
	ID                string            `json:"id"`
	Kind              psp.MethodKind    `json:"kind"`
	Provider          string            `json:"provider"`
	Order             int               `json:"order"`
	Icon              string            `json:"icon"`
	Names             map[string]string `json:"names"`
	Countries         []string          `json:"countries"`
	ExcludedCountries []string          `json:"excludedCountries"`
	Deposit           *directionJSON    `json:"deposit"`
	Withdrawal        *directionJSON    `json:"withdrawal"`
}

type directionJSON struct {
	KYCLevel int                  `json:"kycLevel"`
	Limits   map[string]limitJSON `json:"limits"`
	Fee      *feeJSON             `json:"fee"`
}

type limitJSON struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

type feeJSON struct {
	Fixed   map[string]string `json:"fixed"`
	Percent string            `json:"percent"`
	PaidBy  Payer             `json:"paidBy"`
}

var (
	methodID    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
)

// LoadMethods parses and validates a methods configuration (JSON, see
// docs/payments.md). It returns an errs.Invalid error that names the method
// and field at fault for: malformed JSON or unknown fields; a missing or
// malformed or repeated id; an unknown kind or icon; a missing provider
// name; no English name; malformed country codes; a method with neither
// direction or a direction without currencies; an unknown currency; limits
// with more decimals than the currency has, negative, or with min above
// max; a percent outside 0..100 or with more than two decimals; a fixed fee
// in a currency the direction does not offer; and a missing or unknown
// paidBy when a fee is set.
func LoadMethods(r io.Reader) (*Catalog, error) {
	const op = "payments.LoadMethods"
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var f methodsFile
	if err := dec.Decode(&f); err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Op: op, Message: "payment methods file is not valid: " + err.Error(), Err: err}
	}
	if dec.More() {
		return nil, errs.E(errs.Invalid, op, "payment methods file has data after the JSON object")
	}
	if len(f.Methods) == 0 {
		return nil, errs.E(errs.Invalid, op, `payment methods file has no "methods"`)
	}
	c := &Catalog{byID: map[string]int{}}
	for i, mj := range f.Methods {
		m, err := mj.build()
		if err != nil {
			name := mj.ID
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return nil, errs.Ef(errs.Invalid, op, "payment method %s: %s", name, errs.MessageOf(err))
		}
		if _, dup := c.byID[m.ID]; dup {
			return nil, errs.Ef(errs.Invalid, op, "payment method id %q is used twice", m.ID)
		}
		c.byID[m.ID] = -1
		c.methods = append(c.methods, m)
	}
	slices.SortStableFunc(c.methods, func(a, b Method) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i, m := range c.methods {
		c.byID[m.ID] = i
	}
	return c, nil
}

func (mj methodJSON) build() (Method, error) {
	const op = "payments.LoadMethods"
	bad := func(format string, args ...any) (Method, error) {
		return Method{}, errs.Ef(errs.Invalid, op, format, args...)
	}
	switch {
	case !methodID.MatchString(mj.ID):
		return bad("id must be 1-40 lower-case letters, digits, '-' or '_', starting with a letter")
	case !mj.Kind.Valid():
		return bad("kind %q must be card, bank_transfer, ewallet or crypto", mj.Kind)
	case !psp.ValidName(mj.Provider):
		return bad("provider %q is not a provider name", mj.Provider)
	case mj.Names["en"] == "":
		return bad(`names needs an "en" entry`)
	case mj.Deposit == nil && mj.Withdrawal == nil:
		return bad(`needs "deposit", "withdrawal" or both`)
	}
	if _, ok := iconFile(mj.Icon); !ok {
		return bad("icon %q is not one of %s", mj.Icon, strings.Join(IconNames(), ", "))
	}
	for lang := range mj.Names {
		if _, err := language.Parse(lang); err != nil {
			return bad("names: %q is not a language tag", lang)
		}
	}
	for _, list := range [][]string{mj.Countries, mj.ExcludedCountries} {
		for _, cc := range list {
			if !countryCode.MatchString(cc) {
				return bad("country %q must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE", cc)
			}
		}
	}
	m := Method{
		ID: mj.ID, Kind: mj.Kind, Provider: mj.Provider, Order: mj.Order, Icon: mj.Icon,
		Names: maps.Clone(mj.Names), Countries: slices.Clone(mj.Countries), ExcludedCountries: slices.Clone(mj.ExcludedCountries),
	}
	var err error
	if mj.Deposit != nil {
		if m.Deposit, err = mj.Deposit.build("deposit"); err != nil {
			return Method{}, err
		}
	}
	if mj.Withdrawal != nil {
		if m.Withdrawal, err = mj.Withdrawal.build("withdrawal"); err != nil {
			return Method{}, err
		}
	}
	return m, nil
}

func (dj *directionJSON) build(dir string) (*DirectionRules, error) {
	const op = "payments.LoadMethods"
	bad := func(format string, args ...any) (*DirectionRules, error) {
		return nil, errs.Ef(errs.Invalid, op, dir+": "+format, args...)
	}
	if dj.KYCLevel < 0 {
		return bad("kycLevel must not be negative")
	}
	if len(dj.Limits) == 0 {
		return bad(`"limits" must name at least one currency`)
	}
	r := &DirectionRules{KYCLevel: dj.KYCLevel, Limits: map[string]Limit{}}
	for code, lj := range dj.Limits {
		cur, err := money.LookupCurrency(code)
		if err != nil {
			return bad("limits: %s", errs.MessageOf(err))
		}
		var l Limit
		for _, f := range []struct {
			name string
			text string
			dst  *money.Amount
		}{{"min", lj.Min, &l.Min}, {"max", lj.Max, &l.Max}} {
			if f.text == "" {
				*f.dst = money.Zero(cur)
				continue
			}
			a, err := money.Parse(f.text, cur)
			if err != nil {
				return bad("limits.%s.%s: %s", code, f.name, errs.MessageOf(err))
			}
			if a.IsNegative() {
				return bad("limits.%s.%s must not be negative", code, f.name)
			}
			*f.dst = a
		}
		if !l.Max.IsZero() && l.Min.Minor() > l.Max.Minor() {
			return bad("limits.%s: min %s is above max %s", code, l.Min.Decimal(), l.Max.Decimal())
		}
		r.Limits[code] = l
	}
	if dj.Fee != nil {
		fee, err := dj.Fee.build(r.Limits)
		if err != nil {
			return bad("fee: %s", errs.MessageOf(err))
		}
		r.Fee = fee
	} else {
		r.Fee = FeeRule{PaidBy: PaidByClient}
	}
	return r, nil
}

func (fj *feeJSON) build(limits map[string]Limit) (FeeRule, error) {
	const op = "payments.LoadMethods"
	f := FeeRule{Fixed: map[string]money.Amount{}}
	if fj.Percent != "" {
		bps, err := parsePercentBps(fj.Percent)
		if err != nil {
			return FeeRule{}, err
		}
		f.PercentBps = bps
	}
	for code, text := range fj.Fixed {
		l, ok := limits[code]
		if !ok {
			return FeeRule{}, errs.Ef(errs.Invalid, op, "fixed fee in %s, which the method does not offer in this direction", code)
		}
		a, err := money.Parse(text, l.Min.Currency())
		if err != nil {
			return FeeRule{}, errs.Ef(errs.Invalid, op, "fixed.%s: %s", code, errs.MessageOf(err))
		}
		if a.IsNegative() {
			return FeeRule{}, errs.Ef(errs.Invalid, op, "fixed.%s must not be negative", code)
		}
		f.Fixed[code] = a
	}
	switch fj.PaidBy {
	case PaidByClient, PaidByBroker:
		f.PaidBy = fj.PaidBy
	case "":
		return FeeRule{}, errs.E(errs.Invalid, op, `paidBy must say who pays the fee: "client" or "broker"`)
	default:
		return FeeRule{}, errs.Ef(errs.Invalid, op, `paidBy %q must be "client" or "broker"`, fj.PaidBy)
	}
	return f, nil
}

// parsePercentBps reads a percentage with at most two decimals ("2.5",
// "0.25") as basis points.
func parsePercentBps(s string) (int64, error) {
	const op = "payments.LoadMethods"
	// A currency with two decimals parses the percentage exactly: 2.5 % is
	// 250 hundredths, i.e. 250 basis points.
	a, err := money.Parse(s, money.Currency{Code: "PCT", Digits: 2})
	if err != nil {
		return 0, errs.Ef(errs.Invalid, op, "percent %q must be a decimal with at most two decimals, e.g. 2.5", s)
	}
	if a.IsNegative() || a.Minor() >= 10000 {
		return 0, errs.Ef(errs.Invalid, op, "percent %s must be at least 0 and below 100", s)
	}
	return a.Minor(), nil
}

// Methods returns every method, in display order.
func (c *Catalog) Methods() []Method { return slices.Clone(c.methods) }

// Method returns the method with the given id. It returns an errs.NotFound
// error if there is none.
func (c *Catalog) Method(id string) (Method, error) {
	i, ok := c.byID[id]
	if !ok {
		return Method{}, errs.Ef(errs.NotFound, "payments.Catalog.Method", "payment method %q does not exist", id)
	}
	return c.methods[i], nil
}

// Filter selects the methods a customer can use.
type Filter struct {
	Direction Direction
	// Currency, when not empty, is the code the customer wants to pay or be
	// paid in.
	Currency string
	// Country is the customer's ISO 3166-1 alpha-2 country.
	Country string
	// KYCLevel is the customer's verified KYC level.
	KYCLevel int
}

// Available returns the methods offered for f, in display order.
func (c *Catalog) Available(f Filter) []Method {
	var out []Method
	for _, m := range c.methods {
		if c.eligibility(m, f) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Eligible checks that the method with the given id is offered for f. It
// returns an errs.NotFound error for an unknown method, an errs.Invalid
// error when the method does not offer the direction or currency, and an
// errs.Forbidden error when the customer's country or KYC level rules it
// out. The messages say which.
func (c *Catalog) Eligible(id string, f Filter) error {
	m, err := c.Method(id)
	if err != nil {
		return err
	}
	return c.eligibility(m, f)
}

func (c *Catalog) eligibility(m Method, f Filter) error {
	const op = "payments.Catalog.Eligible"
	if err := offers(m, f.Direction, f.Currency); err != nil {
		return errs.Wrap(op, err)
	}
	name := m.Name("en")
	switch {
	case !m.OfferedIn(f.Country):
		return errs.Ef(errs.Forbidden, op, "%s is not offered in your country", name)
	case f.KYCLevel < m.Rules(f.Direction).KYCLevel:
		return errs.Ef(errs.Forbidden, op, "%s needs identity verification level %d", name, m.Rules(f.Direction).KYCLevel)
	}
	return nil
}

// offers checks that m offers direction d in currency code (any currency
// when code is empty). It returns an errs.Invalid error that says what is
// missing.
func offers(m Method, d Direction, code string) error {
	const op = "payments.offers"
	r := m.Rules(d)
	switch {
	case r == nil:
		return errs.Ef(errs.Invalid, op, "%s does not offer %ss", m.Name("en"), d)
	case code != "" && !hasKey(r.Limits, code):
		return errs.Ef(errs.Invalid, op, "%s does not offer %ss in %s", m.Name("en"), d, code)
	}
	return nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
