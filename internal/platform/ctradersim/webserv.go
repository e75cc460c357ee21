package ctradersim

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
)

// timestampLayout is the WebServices query timestamp format (UTC).
const timestampLayout = "2006-01-02T15:04:05.000"

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	ws := func(pattern, name string, key func([]byte) string, h handlerFunc) {
		mux.HandleFunc(pattern, s.endpoint(name, styleWebServices, key, h))
	}
	ws("POST /v2/webserv/managers/token", EndpointToken, nil, s.handleManagerToken)
	ws("POST /v2/webserv/traders", EndpointTraderCreate, nil, s.handleCreateTrader)
	ws("GET /v2/webserv/traders", EndpointTraderList, nil, s.handleListTraders)
	ws("GET /v2/webserv/traders/{login}", EndpointTraderRead, nil, s.handleGetTrader)
	ws("PATCH /v2/webserv/traders/{login}", EndpointTraderUpdate, nil, s.handlePatchTrader)
	ws("POST /v2/webserv/traders/{login}/changebalance", EndpointChangeBalance, keyField("externalId"), s.handleChangeBalance)
	if !s.cfg.DisableHistoryExtension {
		ws("GET /v2/webserv/traders/{login}/balancehistory", EndpointBalanceHistory, nil, s.handleBalanceHistory)
	}
	ws("POST /cid/oauth2/ctid/create", EndpointCTIDCreate, nil, s.handleCTIDCreate)
	ws("POST /cid/ctid/link", EndpointCTIDLink, nil, s.handleLink)
	ws("PUT /cid/oauth2/ctid/changeEmail", EndpointCTIDEmail, nil, s.handleChangeEmail)
	ws("POST /ctid2/inAppToken/redeem", EndpointRedeem, keyField("token"), s.handleRedeem)
	ws("POST /cid/ctid2/inAppToken/redeem", EndpointRedeem, keyField("token"), s.handleRedeem)
	if s.cfg.CallbackToken != "" {
		mux.HandleFunc("POST /ctrader/callback/balance-update",
			s.endpoint(EndpointCallback, styleCallback, keyField("transactionId"), s.handleCallback))
	}
	mux.Handle("/_sim/", s.adminHandler())
	s.app.mount(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/app/", http.StatusSeeOther)
	})
	return mux
}

// decodeBody decodes a JSON request body strictly (numbers exact, unknown
// fields rejected) and turns failures into INVALID_REQUEST.
func decodeBody(r *http.Request, body []byte, dst any) *wsError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !containsFold(ct, "json") {
		return wsErr(415, codeInvalidRequest, "Content-Type %q is not JSON; the simulator reads JSON only", ct)
	}
	if err := httpx.DecodeBytes(body, dst, false); err != nil {
		return wsErr(400, codeInvalidRequest, "%s", errs.MessageOf(err))
	}
	return nil
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

// manager authenticates the request's ?token=. The caller holds s.mu.
// A missing token is 401, an unknown one 403, both NOT_ENOUGH_RIGHTS.
func (s *Sim) manager(r *http.Request) (*managerState, *wsError) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		return nil, wsErr(401, codeNotEnoughRights, "the token query parameter is missing")
	}
	login, ok := s.st.tokens[tok]
	if !ok {
		return nil, wsErr(403, codeNotEnoughRights, "invalid or expired token")
	}
	return s.st.Managers[login], nil
}

// writer authenticates a request that changes something: the manager must
// not be read-only and must be within the hourly write limit.
func (s *Sim) writer(r *http.Request) (*managerState, *wsError) {
	m, e := s.manager(r)
	if e != nil {
		return nil, e
	}
	if m.ReadOnly {
		return nil, wsErr(403, codeNotEnoughRights, "manager %d may not change anything", m.Login)
	}
	if e := s.st.allowWrite(m, s.cfg.WriteLimitPerHour, s.now()); e != nil {
		return nil, e
	}
	return m, nil
}

func pathLogin(r *http.Request) (int64, *wsError) {
	login, err := strconv.ParseInt(r.PathValue("login"), 10, 64)
	if err != nil || login <= 0 {
		return 0, wsErr(400, codeInvalidRequest, "login %q is not a positive integer", r.PathValue("login"))
	}
	return login, nil
}

// trader finds the trader of the request path. The caller holds s.mu.
func (s *Sim) trader(r *http.Request) (*traderState, *wsError) {
	login, e := pathLogin(r)
	if e != nil {
		return nil, e
	}
	t := s.st.Traders[login]
	if t == nil {
		return nil, wsErr(404, codeTraderNotFound, "trader %d not found", login)
	}
	return t, nil
}

func (s *Sim) handleManagerToken(r *http.Request, body []byte) reply {
	var in struct {
		Login          *int64 `json:"login"`
		HashedPassword string `json:"hashedPassword"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	if in.Login == nil || in.HashedPassword == "" {
		return wsErr(400, codeInvalidRequest, "login and hashedPassword are required").reply()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, e := s.st.login(*in.Login, in.HashedPassword)
	if e != nil {
		return e.reply()
	}
	return reply{200, map[string]string{"webservToken": tok}}
}

// traderTO is the WebServices TraderTO (spec §5.2). Money is scaled by
// moneyDigits; timestamps are epoch milliseconds.
type traderTO struct {
	Login                                int64           `json:"login"`
	GroupName                            string          `json:"groupName"`
	DepositCurrency                      string          `json:"depositCurrency"`
	AccessRights                         string          `json:"accessRights"`
	AccountType                          string          `json:"accountType"`
	BrokerName                           string          `json:"brokerName"`
	Description                          string          `json:"description,omitempty"`
	Name                                 string          `json:"name,omitempty"`
	LastName                             string          `json:"lastName,omitempty"`
	Balance                              int64           `json:"balance"`
	Bonus                                int64           `json:"bonus"`
	NonWithdrawableBonus                 int64           `json:"nonWithdrawableBonus"`
	Equity                               int64           `json:"equity"`
	CashEquity                           int64           `json:"cashEquity"`
	UsedMargin                           int64           `json:"usedMargin"`
	FreeMargin                           int64           `json:"freeMargin"`
	MoneyDigits                          int             `json:"moneyDigits"`
	LeverageInCents                      int64           `json:"leverageInCents"`
	MaxLeverage                          int64           `json:"maxLeverage,omitempty"`
	TotalMarginCalculationType           string          `json:"totalMarginCalculationType"`
	IsLimitedRisk                        bool            `json:"isLimitedRisk"`
	LimitedRiskMarginCalculationStrategy string          `json:"limitedRiskMarginCalculationStrategy,omitempty"`
	RegistrationTimestamp                int64           `json:"registrationTimestamp"`
	LastUpdateTimestamp                  int64           `json:"lastUpdateTimestamp"`
	SwapFree                             bool            `json:"swapFree"`
	SendOwnStatement                     bool            `json:"sendOwnStatement"`
	SendStatementToBroker                bool            `json:"sendStatementToBroker"`
	FrenchRisk                           bool            `json:"frenchRisk"`
	ContactDetails                       *ContactDetails `json:"contactDetails,omitempty"`
}

func (t *traderState) to() traderTO {
	return traderTO{
		Login: t.Login, GroupName: t.GroupName, DepositCurrency: t.DepositCurrency, AccessRights: t.AccessRights,
		AccountType: t.AccountType, BrokerName: t.BrokerName, Description: t.Description, Name: t.Name, LastName: t.LastName,
		Balance: t.Balance, Bonus: t.Bonus, NonWithdrawableBonus: t.NonWithdrawableBonus, Equity: t.equity(),
		CashEquity: t.cashEquity(), UsedMargin: t.UsedMargin, FreeMargin: t.freeMargin(), MoneyDigits: t.MoneyDigits,
		LeverageInCents: t.LeverageInCents, MaxLeverage: t.MaxLeverage, TotalMarginCalculationType: t.TotalMarginCalculationType,
		IsLimitedRisk: t.IsLimitedRisk, LimitedRiskMarginCalculationStrategy: t.LimitedRiskMarginCalculationStrategy,
		RegistrationTimestamp: t.Registered, LastUpdateTimestamp: t.Updated, SwapFree: t.SwapFree,
		SendOwnStatement: t.SendOwnStatement, SendStatementToBroker: t.SendStatementToBroker, FrenchRisk: t.FrenchRisk,
		ContactDetails: t.ContactDetails,
	}
}

// traderIn is the body of create (POST) and partial update (PATCH).
type traderIn struct {
	Login                                *int64          `json:"login"`
	AccessRights                         *string         `json:"accessRights"`
	AccountType                          *string         `json:"accountType"`
	Balance                              *int64          `json:"balance"`
	BrokerName                           *string         `json:"brokerName"`
	DepositCurrency                      *string         `json:"depositCurrency"`
	GroupName                            *string         `json:"groupName"`
	HashedPassword                       *string         `json:"hashedPassword"`
	LeverageInCents                      *int64          `json:"leverageInCents"`
	TotalMarginCalculationType           *string         `json:"totalMarginCalculationType"`
	ContactDetails                       *ContactDetails `json:"contactDetails"`
	Description                          *string         `json:"description"`
	IsLimitedRisk                        *bool           `json:"isLimitedRisk"`
	LastName                             *string         `json:"lastName"`
	MaxLeverage                          *int64          `json:"maxLeverage"`
	Name                                 *string         `json:"name"`
	LimitedRiskMarginCalculationStrategy *string         `json:"limitedRiskMarginCalculationStrategy"`
	SendOwnStatement                     *bool           `json:"sendOwnStatement"`
	SendStatementToBroker                *bool           `json:"sendStatementToBroker"`
	SwapFree                             *bool           `json:"swapFree"`
}

var enums = map[string][]string{
	"accessRights":                         {"FULL_ACCESS", "CLOSE_ONLY", "NO_TRADING", "NO_LOGIN"},
	"accountType":                          {"HEDGED", "NETTED", "SPREAD_BETTING"},
	"totalMarginCalculationType":           {"MAX", "SUM", "NET"},
	"limitedRiskMarginCalculationStrategy": {"ACCORDING_TO_LEVERAGE", "ACCORDING_TO_GSL", "ACCORDING_TO_GSL_AND_LEVERAGE"},
}

// check validates the fields that are present. The caller holds s.mu.
func (s *Sim) check(in *traderIn) *wsError {
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"accessRights", in.AccessRights}, {"accountType", in.AccountType},
		{"totalMarginCalculationType", in.TotalMarginCalculationType},
		{"limitedRiskMarginCalculationStrategy", in.LimitedRiskMarginCalculationStrategy},
	} {
		if f.v != nil && !slices.Contains(enums[f.name], *f.v) {
			return wsErr(400, codeInvalidRequest, "%s %q is not one of %s", f.name, *f.v, strings.Join(enums[f.name], ", "))
		}
	}
	if in.HashedPassword != nil && !isMD5Hex(*in.HashedPassword) {
		return wsErr(400, codeInvalidRequest, "hashedPassword must be the MD5 hex digest of the password")
	}
	if in.LeverageInCents != nil && *in.LeverageInCents <= 0 {
		return wsErr(400, codeInvalidRequest, "leverageInCents must be positive (1:100 is 10000)")
	}
	if in.MaxLeverage != nil && *in.MaxLeverage < 0 {
		return wsErr(400, codeInvalidRequest, "maxLeverage must not be negative")
	}
	if in.BrokerName != nil && *in.BrokerName != s.cfg.BrokerName {
		return wsErr(400, codeBrokerNotFound, "brokerName %q is not on this plant", *in.BrokerName)
	}
	if in.GroupName != nil && (*in.GroupName == "" || len(s.cfg.Groups) > 0 && !slices.Contains(s.cfg.Groups, *in.GroupName)) {
		return wsErr(404, codeGroupNotFound, "trader group %q not found", *in.GroupName)
	}
	return nil
}

// patch copies the optional fields that are present onto t.
func (in *traderIn) patch(t *traderState) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&t.AccessRights, in.AccessRights)
	set(&t.AccountType, in.AccountType)
	set(&t.BrokerName, in.BrokerName)
	set(&t.GroupName, in.GroupName)
	set(&t.TotalMarginCalculationType, in.TotalMarginCalculationType)
	set(&t.Description, in.Description)
	set(&t.LastName, in.LastName)
	set(&t.Name, in.Name)
	set(&t.LimitedRiskMarginCalculationStrategy, in.LimitedRiskMarginCalculationStrategy)
	setB(&t.IsLimitedRisk, in.IsLimitedRisk)
	setB(&t.SendOwnStatement, in.SendOwnStatement)
	setB(&t.SendStatementToBroker, in.SendStatementToBroker)
	setB(&t.SwapFree, in.SwapFree)
	if in.HashedPassword != nil {
		t.HashedPassword = strings.ToLower(*in.HashedPassword)
	}
	if in.LeverageInCents != nil {
		t.LeverageInCents = *in.LeverageInCents
	}
	if in.MaxLeverage != nil {
		t.MaxLeverage = *in.MaxLeverage
	}
	if in.ContactDetails != nil {
		cd := *in.ContactDetails
		t.ContactDetails = &cd
	}
}

func (s *Sim) handleCreateTrader(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	var in traderIn
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	var missing []string
	for name, present := range map[string]bool{
		"accessRights": in.AccessRights != nil, "accountType": in.AccountType != nil, "balance": in.Balance != nil,
		"brokerName": in.BrokerName != nil, "depositCurrency": in.DepositCurrency != nil, "groupName": in.GroupName != nil,
		"hashedPassword": in.HashedPassword != nil, "leverageInCents": in.LeverageInCents != nil,
		"totalMarginCalculationType": in.TotalMarginCalculationType != nil,
	} {
		if !present {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return wsErr(400, codeInvalidRequest, "required fields missing: %s", strings.Join(missing, ", ")).reply()
	}
	if in.Login != nil {
		return wsErr(400, codeInvalidRequest, "login is assigned by the server").reply()
	}
	if e := s.check(&in); e != nil {
		return e.reply()
	}
	cur, err := money.LookupCurrency(*in.DepositCurrency)
	if err != nil {
		return wsErr(400, codeInvalidRequest, "depositCurrency %q is not a currency the simulator knows", *in.DepositCurrency).reply()
	}
	if *in.Balance < 0 || *in.Balance > maxScaled {
		return wsErr(400, codeInvalidRequest, "balance must be between 0 and %d (scaled by moneyDigits %d)", int64(maxScaled), cur.Digits).reply()
	}
	ms := s.now().UnixMilli()
	t := &traderState{Login: s.st.NextLogin, DepositCurrency: cur.Code, MoneyDigits: cur.Digits, Balance: *in.Balance,
		Registered: ms, Updated: ms}
	s.st.NextLogin++
	in.patch(t)
	s.st.Traders[t.Login] = t
	return reply{201, t.to()}
}

func (s *Sim) handleGetTrader(r *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.manager(r); e != nil {
		return e.reply()
	}
	t, e := s.trader(r)
	if e != nil {
		return e.reply()
	}
	return reply{200, t.to()}
}

func (s *Sim) handleListTraders(r *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.manager(r); e != nil {
		return e.reply()
	}
	q := r.URL.Query()
	if q.Has("groupId") {
		return wsErr(400, codeInvalidRequest, "the simulator does not number trader groups; groupId is not supported").reply()
	}
	var bounds [2]int64
	for i, name := range []string{"from", "to"} {
		ts, err := time.Parse(timestampLayout, q.Get(name))
		if err != nil {
			return wsErr(400, codeInvalidRequest, "%s must be a UTC timestamp like 2024-01-31T23:59:59.000", name).reply()
		}
		bounds[i] = ts.UnixMilli()
	}
	var page []traderTO
	for _, t := range s.st.Traders {
		if t.Registered >= bounds[0] && t.Registered < bounds[1] {
			page = append(page, t.to())
		}
	}
	slices.SortFunc(page, func(a, b traderTO) int {
		if a.RegistrationTimestamp != b.RegistrationTimestamp {
			return cmp.Compare(a.RegistrationTimestamp, b.RegistrationTimestamp)
		}
		return cmp.Compare(a.Login, b.Login)
	})
	hasMore := len(page) > s.cfg.ListPageSize
	if hasMore {
		page = page[:s.cfg.ListPageSize]
	}
	if page == nil {
		page = []traderTO{}
	}
	return reply{200, map[string]any{"trader": page, "hasMore": hasMore}}
}

func (s *Sim) handlePatchTrader(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	t, e := s.trader(r)
	if e != nil {
		return e.reply()
	}
	var in traderIn
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	switch {
	case in.Login != nil && *in.Login != t.Login:
		return wsErr(400, codeInvalidRequest, "login %d in the body is not the login %d in the path", *in.Login, t.Login).reply()
	case in.Balance != nil:
		return wsErr(400, codeInvalidRequest, "balance cannot be updated; use changebalance").reply()
	case in.DepositCurrency != nil && *in.DepositCurrency != t.DepositCurrency:
		return wsErr(400, codeInvalidRequest, "depositCurrency cannot be changed").reply()
	}
	if e := s.check(&in); e != nil {
		return e.reply()
	}
	in.patch(t)
	t.Updated = s.now().UnixMilli()
	return reply{200, t.to()}
}

func (s *Sim) handleChangeBalance(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	login, e := pathLogin(r)
	if e != nil {
		return e.reply()
	}
	var in struct {
		Login         *int64          `json:"login"`
		PreciseAmount json.RawMessage `json:"preciseAmount"`
		Type          string          `json:"type"`
		Comment       string          `json:"comment"`
		ExternalNote  string          `json:"externalNote"`
		ExternalID    string          `json:"externalId"`
		Source        string          `json:"source"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	switch {
	case in.Login == nil:
		return wsErr(400, codeInvalidRequest, "login is required in the body").reply()
	case *in.Login != login:
		return wsErr(400, codeInvalidRequest, "login %d in the body is not the login %d in the path", *in.Login, login).reply()
	case !slices.Contains([]string{"DEPOSIT", "WITHDRAW", "DEPOSIT_NONWITHDRAWABLE_BONUS", "WITHDRAW_NONWITHDRAWABLE_BONUS"}, in.Type):
		return wsErr(400, codeInvalidRequest, "type %q is not DEPOSIT, WITHDRAW, DEPOSIT_NONWITHDRAWABLE_BONUS or WITHDRAW_NONWITHDRAWABLE_BONUS", in.Type).reply()
	}
	t := s.st.Traders[login]
	if t == nil {
		return wsErr(404, codeTraderNotFound, "trader %d not found", login).reply()
	}
	amount, e := preciseAmount(in.PreciseAmount, t)
	if e != nil {
		return e.reply()
	}
	h, e := s.st.apply(t, change{typ: in.Type, amount: amount, externalID: in.ExternalID, comment: in.Comment,
		externalNote: in.ExternalNote, source: in.Source, via: "changebalance"}, s.now())
	if e != nil {
		return e.reply()
	}
	if h.BalanceHistoryID == 0 {
		return reply{200, struct{}{}}
	}
	return reply{200, map[string]int64{"balanceHistoryId": h.BalanceHistoryID}}
}

// preciseAmount reads changebalance's preciseAmount exactly: a JSON number
// (not a string), positive, with no more decimals than the trader's
// moneyDigits (at most 8). Anything else is CHANGE_BALANCE_BAD_AMOUNT.
func preciseAmount(raw json.RawMessage, t *traderState) (int64, *wsError) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, wsErr(400, codeBadAmount, "preciseAmount is required")
	}
	if s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return 0, wsErr(400, codeBadAmount, "preciseAmount must be a JSON number, not %s", s)
	}
	a, err := money.ParseNumber(json.Number(s), t.currency())
	if err != nil {
		return 0, wsErr(400, codeBadAmount, "preciseAmount %s: %s (moneyDigits %d)", s, errs.MessageOf(err), t.MoneyDigits)
	}
	if a.Sign() <= 0 {
		return 0, wsErr(400, codeBadAmount, "preciseAmount %s must be positive; type gives the direction", s)
	}
	if a.Minor() > maxScaled {
		return 0, wsErr(400, codeBadAmount, "preciseAmount %s is too large", s)
	}
	return a.Minor(), nil
}

// handleBalanceHistory is the simulator extension: a trader's balance
// history, filtered by externalId when given. Real cTrader may have no such
// call; Config.DisableHistoryExtension removes it (404).
func (s *Sim) handleBalanceHistory(r *http.Request, _ []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.manager(r); e != nil {
		return e.reply()
	}
	t, e := s.trader(r)
	if e != nil {
		return e.reply()
	}
	q := r.URL.Query()
	out := []HistoryEntry{}
	for _, h := range t.History {
		if !q.Has("externalId") || h.ExternalID == q.Get("externalId") {
			out = append(out, h)
		}
	}
	return reply{200, map[string]any{"balanceHistory": out, "extension": "simulator-only; not a cTrader API"}}
}
