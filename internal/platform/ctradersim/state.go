package ctradersim

import (
	"crypto/md5" // #nosec G501 -- cTrader's wire protocol hashes passwords with MD5
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// state is everything the simulator holds. It is guarded by Sim.mu. The
// exported fields are what -state FILE persists; tokens are not persisted.
type state struct {
	Managers map[int64]*managerState `json:"managers"`
	Traders  map[int64]*traderState  `json:"traders"`
	Users    map[int64]*userState    `json:"users"`
	Links    []*linkState            `json:"links"`

	NextLogin     int64 `json:"nextLogin"`
	NextUserID    int64 `json:"nextUserId"`
	NextLinkID    int64 `json:"nextLinkId"`
	NextHistoryID int64 `json:"nextHistoryId"`

	tokens       map[string]int64 // webservToken → manager login
	managerToken map[int64]string // manager login → its current token
	writes       map[int64]*writeWindow
	handoff      map[string]*handoffToken // sha256(token) hex → token
	externalIDs  map[string]int           // "login/externalId" → times applied

	changes        int // balance changes applied, duplicates included
	duplicateIDs   int // changes applied with an externalId seen before on that login
	callbackMisses int // callbacks whose newBalance differed from the balance they produced
}

type managerState struct {
	Login          int64  `json:"login"`
	HashedPassword string `json:"hashedPassword"` // MD5 hex
	ReadOnly       bool   `json:"readOnly,omitempty"`
}

type writeWindow struct {
	hour time.Time
	n    int
}

// traderState is a trading account. Money is held as integers scaled by
// 10^MoneyDigits, exactly as cTrader reports it.
type traderState struct {
	Login                                int64           `json:"login"`
	GroupName                            string          `json:"groupName"`
	DepositCurrency                      string          `json:"depositCurrency"`
	AccessRights                         string          `json:"accessRights"`
	AccountType                          string          `json:"accountType"`
	BrokerName                           string          `json:"brokerName"`
	Description                          string          `json:"description,omitempty"`
	Name                                 string          `json:"name,omitempty"`
	LastName                             string          `json:"lastName,omitempty"`
	HashedPassword                       string          `json:"hashedPassword"`
	LeverageInCents                      int64           `json:"leverageInCents"`
	MaxLeverage                          int64           `json:"maxLeverage,omitempty"`
	TotalMarginCalculationType           string          `json:"totalMarginCalculationType"`
	IsLimitedRisk                        bool            `json:"isLimitedRisk,omitempty"`
	LimitedRiskMarginCalculationStrategy string          `json:"limitedRiskMarginCalculationStrategy,omitempty"`
	SwapFree                             bool            `json:"swapFree,omitempty"`
	SendOwnStatement                     bool            `json:"sendOwnStatement,omitempty"`
	SendStatementToBroker                bool            `json:"sendStatementToBroker,omitempty"`
	FrenchRisk                           bool            `json:"frenchRisk,omitempty"`
	ContactDetails                       *ContactDetails `json:"contactDetails,omitempty"`

	MoneyDigits          int   `json:"moneyDigits"`
	Balance              int64 `json:"balance"`
	Bonus                int64 `json:"bonus"`
	NonWithdrawableBonus int64 `json:"nonWithdrawableBonus"`
	UnrealizedPnL        int64 `json:"unrealizedPnl"`
	UsedMargin           int64 `json:"usedMargin"`

	Registered int64 `json:"registrationTimestamp"`
	Updated    int64 `json:"lastUpdateTimestamp"`

	History []HistoryEntry `json:"history"`
}

// ContactDetails are a trader's contact fields (TraderTO.contactDetails).
type ContactDetails struct {
	Address            string `json:"address,omitempty"`
	City               string `json:"city,omitempty"`
	CountryID          int64  `json:"countryId,omitempty"`
	DocumentID         string `json:"documentId,omitempty"`
	Email              string `json:"email,omitempty"`
	Phone              string `json:"phone,omitempty"`
	State              string `json:"state,omitempty"`
	ZipCode            string `json:"zipCode,omitempty"`
	IntroducingBroker1 string `json:"introducingBroker1,omitempty"`
	IntroducingBroker2 string `json:"introducingBroker2,omitempty"`
}

// cashEquity is balance plus unrealised P&L (the simulator charges no fees).
func (t *traderState) cashEquity() int64 { return t.Balance + t.UnrealizedPnL }

// equity counts the non-withdrawable bonus (credit) as well.
func (t *traderState) equity() int64 { return t.cashEquity() + t.NonWithdrawableBonus }

func (t *traderState) freeMargin() int64 { return t.equity() - t.UsedMargin }

func (t *traderState) currency() money.Currency {
	return money.Currency{Code: t.DepositCurrency, Digits: t.MoneyDigits}
}

// amount turns a scaled integer of this trader into a money.Amount.
func (t *traderState) amount(v int64) money.Amount { return money.New(v, t.currency()) }

// decimal formats a scaled integer of this trader, e.g. "12.30".
func (t *traderState) decimal(v int64) string { return t.amount(v).Decimal() }

// HistoryEntry is one applied change in a trader's balance history.
type HistoryEntry struct {
	// BalanceHistoryID is the id changebalance returned; 0 for the bonus
	// types, which cTrader keeps out of the balance history.
	BalanceHistoryID     int64  `json:"balanceHistoryId,omitempty"`
	Login                int64  `json:"login"`
	Type                 string `json:"type"`
	Delta                int64  `json:"delta"`                // signed, scaled by moneyDigits
	Balance              int64  `json:"balance"`              // balance after the change, scaled
	NonWithdrawableBonus int64  `json:"nonWithdrawableBonus"` // after the change, scaled
	MoneyDigits          int    `json:"moneyDigits"`
	ExternalID           string `json:"externalId,omitempty"`
	Comment              string `json:"comment,omitempty"`
	ExternalNote         string `json:"externalNote,omitempty"`
	Source               string `json:"source,omitempty"`
	Timestamp            int64  `json:"changeTimestamp"` // epoch ms
	// Via is "changebalance" or "callback": which endpoint applied it.
	Via string `json:"via"`
}

type userState struct {
	UserID            int64  `json:"userId"`
	Email             string `json:"email"`
	NickName          string `json:"nickName"`
	FirstName         string `json:"firstName,omitempty"`
	PreferredLanguage string `json:"preferredLanguage,omitempty"`
	BrokerCrmName     string `json:"brokerCrmName"`
	Created           int64  `json:"utcCreateTimestamp"`
}

type linkState struct {
	CtidTraderAccountID int64  `json:"ctidTraderAccountId"`
	UserID              int64  `json:"userId"`
	Login               int64  `json:"traderLogin"`
	BrokerName          string `json:"brokerName"`
	Environment         string `json:"environmentName"`
}

type handoffToken struct {
	userID  int64
	login   int64
	expires time.Time
	used    bool
}

// wsError is a WebServices error answer.
type wsError struct {
	status      int
	code        string
	description string
}

func wsErr(status int, code, format string, args ...any) *wsError {
	return &wsError{status: status, code: code, description: fmt.Sprintf(format, args...)}
}

// The WebServices error codes (spec §6.2) and the statuses the simulator
// gives them (the real statuses are undocumented).
const (
	codeInvalidRequest   = "INVALID_REQUEST"
	codeNotEnoughRights  = "NOT_ENOUGH_RIGHTS"
	codeTraderNotFound   = "TRADER_NOT_FOUND"
	codeGroupNotFound    = "TRADER_GROUP_NOT_FOUND"
	codeBrokerNotFound   = "CH_BROKER_NOT_FOUND"
	codeNotEnoughMoney   = "NOT_ENOUGH_MONEY"
	codeBadAmount        = "CHANGE_BALANCE_BAD_AMOUNT"
	codeFrequency        = "REQUEST_FREQUENCY_EXCEEDED"
	codeUnknown          = "UNKNOWN_ERROR"
	codeWrongPassword    = "WRONG_PASSWORD"
	codeUserNotFound     = "USER_NOT_FOUND"  // simulator's own: cTID user unknown
	codeTokenNotFound    = "TOKEN_NOT_FOUND" // simulator's own: handoff token unknown/expired/used
	statusNotEnoughMoney = 409
)

// maxScaled bounds every money figure of a trader (balance, bonus, P&L,
// margin) in scaled units, so that sums of them cannot overflow an int64.
const maxScaled = 100_000_000_000_000_000

// md5Hex is how cTrader hashes passwords on the wire.
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s)) // #nosec G401 -- cTrader's wire protocol hashes passwords with MD5
	return hex.EncodeToString(sum[:])
}

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newWebservToken returns an opaque token shaped like cTrader's examples.
func newWebservToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// newState builds the state from a seed. It returns an errs.Invalid error for
// a seed that does not make sense.
func newState(cfg *Config, now time.Time) (*state, error) {
	const op = "ctradersim.seed"
	st := &state{
		Managers:      map[int64]*managerState{},
		Traders:       map[int64]*traderState{},
		Users:         map[int64]*userState{},
		NextLogin:     3000001,
		NextUserID:    10000001,
		NextLinkID:    50000001,
		NextHistoryID: 6340001,
	}
	st.initVolatile()
	ms := now.UnixMilli()
	for _, m := range cfg.Seed.Managers {
		if m.Login <= 0 || m.Password == "" {
			return nil, errs.Ef(errs.Invalid, op, "manager %d needs a positive login and a password", m.Login)
		}
		st.Managers[m.Login] = &managerState{Login: m.Login, HashedPassword: md5Hex(m.Password), ReadOnly: m.ReadOnly}
	}
	for _, ts := range cfg.Seed.Traders {
		if ts.Login <= 0 || st.Traders[ts.Login] != nil {
			return nil, errs.Ef(errs.Invalid, op, "trader login %d is not positive or not unique", ts.Login)
		}
		cur, err := money.LookupCurrency(ts.Currency)
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		bal, err := money.Parse(ts.Balance, cur)
		if err != nil {
			return nil, errs.Wrap(fmt.Sprintf("%s: trader %d balance", op, ts.Login), err)
		}
		t := &traderState{
			Login: ts.Login, GroupName: ts.GroupName, DepositCurrency: cur.Code,
			AccessRights: "FULL_ACCESS", AccountType: "HEDGED", BrokerName: ts.BrokerName,
			Name: ts.Name, LastName: ts.LastName, HashedPassword: md5Hex(ts.Password),
			LeverageInCents: 10000, TotalMarginCalculationType: "MAX",
			MoneyDigits: cur.Digits, Balance: bal.Minor(), Registered: ms, Updated: ms,
		}
		if t.GroupName == "" {
			t.GroupName = "default"
		}
		if t.BrokerName == "" {
			t.BrokerName = cfg.BrokerName
		}
		if ts.Email != "" {
			t.ContactDetails = &ContactDetails{Email: ts.Email}
		}
		st.Traders[t.Login] = t
		st.NextLogin = max(st.NextLogin, t.Login+1)
	}
	for _, us := range cfg.Seed.Users {
		if us.UserID <= 0 || st.Users[us.UserID] != nil || us.Email == "" {
			return nil, errs.Ef(errs.Invalid, op, "user %d needs a unique positive id and an email", us.UserID)
		}
		nick := us.NickName
		if nick == "" {
			nick = "ctid" + strconv.FormatInt(us.UserID, 10)
		}
		st.Users[us.UserID] = &userState{UserID: us.UserID, Email: strings.ToLower(us.Email), NickName: nick,
			PreferredLanguage: us.PreferredLanguage, BrokerCrmName: cfg.BrokerCrmName, Created: ms}
		st.NextUserID = max(st.NextUserID, us.UserID+1)
		for _, login := range us.Logins {
			t := st.Traders[login]
			if t == nil {
				return nil, errs.Ef(errs.Invalid, op, "user %d links trader %d, which is not seeded", us.UserID, login)
			}
			st.Links = append(st.Links, &linkState{CtidTraderAccountID: st.NextLinkID, UserID: us.UserID, Login: login,
				BrokerName: t.BrokerName, Environment: cfg.Environment})
			st.NextLinkID++
		}
	}
	return st, nil
}

// initVolatile sets up the parts of the state that are not persisted.
func (st *state) initVolatile() {
	st.tokens = map[string]int64{}
	st.managerToken = map[int64]string{}
	st.writes = map[int64]*writeWindow{}
	st.handoff = map[string]*handoffToken{}
	st.externalIDs = map[string]int{}
	for _, t := range st.Traders {
		for _, h := range t.History {
			if h.ExternalID != "" {
				st.externalIDs[externalKey(t.Login, h.ExternalID)]++
			}
		}
	}
}

func externalKey(login int64, id string) string { return strconv.FormatInt(login, 10) + "/" + id }

// login returns the manager's token, issuing one if it has none. The token
// stays valid until the tokens are expired (ExpireManagerTokens).
func (st *state) login(login int64, hashed string) (string, *wsError) {
	m := st.Managers[login]
	if m == nil || !strings.EqualFold(m.HashedPassword, hashed) {
		return "", wsErr(403, codeNotEnoughRights, "wrong manager login or password")
	}
	if tok, ok := st.managerToken[login]; ok {
		return tok, nil
	}
	tok := newWebservToken()
	st.managerToken[login] = tok
	st.tokens[tok] = login
	return tok, nil
}

// allowWrite counts a non-GET request of manager m against the hourly limit.
func (st *state) allowWrite(m *managerState, limit int, now time.Time) *wsError {
	if limit <= 0 {
		return nil
	}
	hour := now.Truncate(time.Hour)
	w := st.writes[m.Login]
	if w == nil || !w.hour.Equal(hour) {
		w = &writeWindow{hour: hour}
		st.writes[m.Login] = w
	}
	if w.n >= limit {
		return wsErr(429, codeFrequency, "more than %d write requests this hour", limit)
	}
	w.n++
	return nil
}

// change is one balance change as the simulator applies it.
type change struct {
	typ          string
	amount       int64 // positive, scaled by the trader's moneyDigits
	externalID   string
	comment      string
	externalNote string
	source       string
	via          string
}

// apply applies c to t and records it. It returns NOT_ENOUGH_MONEY when a
// withdrawal exceeds what the account can give, and CHANGE_BALANCE_BAD_AMOUNT
// when the result would overflow.
func (st *state) apply(t *traderState, c change, now time.Time) (HistoryEntry, *wsError) {
	if c.amount <= 0 || c.amount > maxScaled {
		return HistoryEntry{}, wsErr(400, codeBadAmount, "amount must be positive and at most %s", t.decimal(maxScaled))
	}
	delta := c.amount
	switch c.typ {
	case "DEPOSIT":
		if t.Balance > maxScaled-c.amount {
			return HistoryEntry{}, wsErr(400, codeBadAmount, "amount is too large")
		}
		t.Balance += c.amount
	case "WITHDRAW":
		if avail := min(t.Balance, t.cashEquity(), t.freeMargin()); c.amount > avail {
			return HistoryEntry{}, wsErr(statusNotEnoughMoney, codeNotEnoughMoney,
				"cannot withdraw %s: balance %s, cash equity %s, free margin %s",
				t.decimal(c.amount), t.decimal(t.Balance), t.decimal(t.cashEquity()), t.decimal(t.freeMargin()))
		}
		t.Balance -= c.amount
		delta = -c.amount
	case "DEPOSIT_NONWITHDRAWABLE_BONUS":
		if t.NonWithdrawableBonus > maxScaled-c.amount {
			return HistoryEntry{}, wsErr(400, codeBadAmount, "amount is too large")
		}
		t.NonWithdrawableBonus += c.amount
	case "WITHDRAW_NONWITHDRAWABLE_BONUS":
		if avail := min(t.NonWithdrawableBonus, t.freeMargin()); c.amount > avail {
			return HistoryEntry{}, wsErr(statusNotEnoughMoney, codeNotEnoughMoney,
				"cannot remove bonus %s: non-withdrawable bonus %s, free margin %s",
				t.decimal(c.amount), t.decimal(t.NonWithdrawableBonus), t.decimal(t.freeMargin()))
		}
		t.NonWithdrawableBonus -= c.amount
		delta = -c.amount
	default:
		return HistoryEntry{}, wsErr(400, codeInvalidRequest, "type %q is not a change type", c.typ)
	}
	ms := now.UnixMilli()
	t.Updated = ms
	h := HistoryEntry{
		Login: t.Login, Type: c.typ, Delta: delta, Balance: t.Balance, NonWithdrawableBonus: t.NonWithdrawableBonus,
		MoneyDigits: t.MoneyDigits, ExternalID: c.externalID, Comment: c.comment, ExternalNote: c.externalNote,
		Source: c.source, Timestamp: ms, Via: c.via,
	}
	if c.typ == "DEPOSIT" || c.typ == "WITHDRAW" {
		h.BalanceHistoryID = st.NextHistoryID
		st.NextHistoryID++
	}
	t.History = append(t.History, h)
	st.changes++
	if c.externalID != "" {
		k := externalKey(t.Login, c.externalID)
		if st.externalIDs[k] > 0 {
			st.duplicateIDs++
		}
		st.externalIDs[k]++
	}
	return h, nil
}

// linkedLogins returns the trading accounts linked to a user, in link order.
func (st *state) linkedLogins(userID int64) []int64 {
	var out []int64
	for _, l := range st.Links {
		if l.UserID == userID {
			out = append(out, l.Login)
		}
	}
	return out
}

// issueHandoff creates a single-use in-app token for a user and account.
func (st *state) issueHandoff(userID, login int64, now time.Time, ttl time.Duration) (string, time.Time, error) {
	const op = "ctradersim.IssueHandoffToken"
	if st.Users[userID] == nil {
		return "", time.Time{}, errs.Ef(errs.NotFound, op, "user %d does not exist", userID)
	}
	linked := st.linkedLogins(userID)
	if login == 0 && len(linked) > 0 {
		login = linked[0]
	}
	if !slices.Contains(linked, login) {
		return "", time.Time{}, errs.Ef(errs.Invalid, op, "trading account %d is not linked to user %d", login, userID)
	}
	for h, tok := range st.handoff { // forget tokens that can no longer be redeemed
		if tok.used || !now.Before(tok.expires) {
			delete(st.handoff, h)
		}
	}
	tok := randomToken(32)
	exp := now.Add(ttl)
	st.handoff[hashToken(tok)] = &handoffToken{userID: userID, login: login, expires: exp}
	return tok, exp, nil
}

// redeemHandoff consumes a handoff token. Unknown, expired and used tokens
// are all "not found", as spec §5.5 says.
func (st *state) redeemHandoff(tok string, now time.Time) (*handoffToken, bool) {
	h := st.handoff[hashToken(tok)]
	if h == nil || h.used || !now.Before(h.expires) {
		return nil, false
	}
	h.used = true
	return h, true
}
