package ctradersim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/money"
)

// checkEmail accepts a plain address and rejects Apple's private relay
// addresses, as cTID user creation does (spec §5.4).
func checkEmail(email string) *wsError {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.ContainsAny(email, " \t\r\n") || strings.Count(email, "@") != 1 {
		return wsErr(400, codeInvalidRequest, "%q is not an email address", email)
	}
	if strings.EqualFold(domain, "privaterelay.appleid.com") {
		return wsErr(400, codeInvalidRequest, "@privaterelay.appleid.com addresses are not accepted")
	}
	return nil
}

func (s *Sim) checkCrmName(name string) *wsError {
	if name == "" {
		return wsErr(400, codeInvalidRequest, "brokerCrmName is required")
	}
	if name != s.cfg.BrokerCrmName {
		return wsErr(400, codeBrokerNotFound, "brokerCrmName %q is not known (names are case-sensitive)", name)
	}
	return nil
}

func (s *Sim) handleCTIDCreate(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	var in struct {
		BrokerCrmName     string `json:"brokerCrmName"`
		Email             string `json:"email"`
		FirstName         string `json:"firstName"`
		NickName          string `json:"nickName"`
		Nickname          string `json:"nickname"` // the docs' example spells it so
		PreferredLanguage string `json:"preferredLanguage"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	if e := s.checkCrmName(in.BrokerCrmName); e != nil {
		return e.reply()
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if e := checkEmail(email); e != nil {
		return e.reply()
	}
	if l := in.PreferredLanguage; l != "" && (len(l) != 2 || strings.ToLower(l) != l) {
		return wsErr(400, codeInvalidRequest, "preferredLanguage %q is not a two-letter ISO 639-1 code", l).reply()
	}
	for _, u := range s.st.Users {
		if u.Email == email {
			return reply{201, map[string]int64{"userId": u.UserID}}
		}
	}
	id := s.st.NextUserID
	s.st.NextUserID++
	nick := in.NickName
	if nick == "" {
		nick = in.Nickname
	}
	s.st.Users[id] = &userState{UserID: id, Email: email, NickName: s.nickName(nick, email, id), FirstName: in.FirstName,
		PreferredLanguage: in.PreferredLanguage, BrokerCrmName: in.BrokerCrmName, Created: s.now().UnixMilli()}
	return reply{201, map[string]int64{"userId": id}}
}

// nickName applies cTID's rule (spec §12): the requested nick name if it is
// unique, else one derived from the userId; with none requested, one derived
// from the email, or from the userId if that is taken. The caller holds s.mu.
func (s *Sim) nickName(requested, email string, id int64) string {
	taken := func(n string) bool {
		for _, u := range s.st.Users {
			if strings.EqualFold(u.NickName, n) {
				return true
			}
		}
		return false
	}
	fromID := "ctid" + strconv.FormatInt(id, 10)
	if requested != "" {
		if taken(requested) {
			return fromID
		}
		return requested
	}
	local, _, _ := strings.Cut(email, "@")
	if local == "" || taken(local) {
		return fromID
	}
	return local
}

func (s *Sim) handleLink(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	var in struct {
		TraderLogin          *int64 `json:"traderLogin"`
		TraderPasswordHash   string `json:"traderPasswordHash"`
		UserID               *int64 `json:"userId"`
		BrokerName           string `json:"brokerName"`
		EnvironmentName      string `json:"environmentName"`
		ReturnAccountDetails bool   `json:"returnAccountDetails"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	if in.TraderLogin == nil || in.UserID == nil || in.TraderPasswordHash == "" || in.BrokerName == "" || in.EnvironmentName == "" {
		return wsErr(400, codeInvalidRequest, "traderLogin, traderPasswordHash, userId, brokerName and environmentName are required").reply()
	}
	if in.EnvironmentName != s.cfg.Environment {
		return wsErr(400, codeInvalidRequest, "environmentName %q is not this environment (%s)", in.EnvironmentName, s.cfg.Environment).reply()
	}
	t := s.st.Traders[*in.TraderLogin]
	if t == nil {
		return wsErr(404, codeTraderNotFound, "trader %d not found", *in.TraderLogin).reply()
	}
	if in.BrokerName != t.BrokerName {
		return wsErr(400, codeBrokerNotFound, "trader %d does not belong to broker %q", t.Login, in.BrokerName).reply()
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(in.TraderPasswordHash)), []byte(t.HashedPassword)) != 1 {
		return wsErr(400, codeWrongPassword, "the trader password hash does not match").reply()
	}
	if s.st.Users[*in.UserID] == nil {
		return wsErr(404, codeUserNotFound, "cTID user %d not found", *in.UserID).reply()
	}
	var link *linkState
	for _, l := range s.st.Links {
		if l.Login == t.Login {
			if l.UserID != *in.UserID {
				return wsErr(409, codeInvalidRequest, "trader %d is linked to another user", t.Login).reply()
			}
			link = l
		}
	}
	if link == nil {
		link = &linkState{CtidTraderAccountID: s.st.NextLinkID, UserID: *in.UserID, Login: t.Login,
			BrokerName: in.BrokerName, Environment: in.EnvironmentName}
		s.st.NextLinkID++
		s.st.Links = append(s.st.Links, link)
	}
	if !in.ReturnAccountDetails {
		return reply{200, nil}
	}
	return reply{200, map[string]int64{"ctidTraderAccountId": link.CtidTraderAccountID}}
}

func (s *Sim) handleChangeEmail(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.writer(r); e != nil {
		return e.reply()
	}
	var in struct {
		UserID        *int64 `json:"userId"`
		NewEmail      string `json:"newEmail"`
		BrokerCrmName string `json:"brokerCrmName"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	if in.UserID == nil || in.NewEmail == "" {
		return wsErr(400, codeInvalidRequest, "userId and newEmail are required").reply()
	}
	if e := s.checkCrmName(in.BrokerCrmName); e != nil {
		return e.reply()
	}
	email := strings.ToLower(strings.TrimSpace(in.NewEmail))
	if e := checkEmail(email); e != nil {
		return e.reply()
	}
	u := s.st.Users[*in.UserID]
	if u == nil {
		return wsErr(404, codeUserNotFound, "cTID user %d not found", *in.UserID).reply()
	}
	for _, o := range s.st.Users {
		if o.UserID != u.UserID && o.Email == email {
			return wsErr(409, codeInvalidRequest, "%s belongs to another user", email).reply()
		}
	}
	u.Email = email
	return reply{204, nil}
}

func (s *Sim) handleRedeem(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.manager(r); e != nil {
		return e.reply()
	}
	var in struct {
		Token string `json:"token"`
	}
	if e := decodeBody(r, body, &in); e != nil {
		return e.reply()
	}
	if in.Token == "" {
		return wsErr(400, codeInvalidRequest, "token is required").reply()
	}
	h, ok := s.st.redeemHandoff(in.Token, s.now())
	if !ok {
		return wsErr(404, codeTokenNotFound, "token not found, expired or already used").reply()
	}
	u := s.st.Users[h.userID]
	email := ""
	if u != nil {
		email = u.Email
	}
	return reply{200, map[string]any{"userId": h.userID, "email": email, "tradingLogin": h.login}}
}

// callbackIn is seed 000's balance-update callback body.
type callbackIn struct {
	TradingLogin    *int64      `json:"tradingLogin"`
	NewBalance      json.Number `json:"newBalance"`
	TransactionID   string      `json:"transactionId"`
	TransactionType string      `json:"transactionType"`
	Amount          json.Number `json:"amount"`
	Currency        string      `json:"currency"`
	Timestamp       string      `json:"timestamp"`
}

// handleCallback applies seed 000's POST /ctrader/callback/balance-update:
// the amount is applied as a DEPOSIT or WITHDRAW with transactionId as the
// externalId. newBalance is the sender's expectation; the simulator applies
// the amount (not the balance) and counts a mismatch in Stats. Errors use
// the seed's {"error","message","code"} shape.
func (s *Sim) handleCallback(r *http.Request, body []byte) reply {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.CallbackToken)) != 1 {
		return callbackErr(401, "INVALID_TOKEN", "Authentication token is invalid or expired.")
	}
	var in callbackIn
	if e := decodeBody(r, body, &in); e != nil {
		return callbackErr(400, codeInvalidRequest, e.description)
	}
	if in.TradingLogin == nil || in.TransactionID == "" || in.Amount == "" || in.NewBalance == "" || in.Currency == "" {
		return callbackErr(400, codeInvalidRequest, "tradingLogin, newBalance, transactionId, amount and currency are required")
	}
	var typ string
	switch strings.ToLower(in.TransactionType) {
	case "deposit":
		typ = "DEPOSIT"
	case "withdrawal", "withdraw":
		typ = "WITHDRAW"
	default:
		return callbackErr(400, codeInvalidRequest, "transactionType must be deposit or withdrawal")
	}
	if in.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339Nano, in.Timestamp); err != nil {
			return callbackErr(400, codeInvalidRequest, "timestamp must be RFC 3339, e.g. 2023-01-01T12:00:00Z")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Traders[*in.TradingLogin]
	if t == nil {
		return callbackErr(404, codeTraderNotFound, "trading account not found")
	}
	if in.Currency != t.DepositCurrency {
		return callbackErr(400, "CURRENCY_MISMATCH", "the account's currency is "+t.DepositCurrency)
	}
	amount, err := money.ParseNumber(in.Amount, t.currency())
	if err != nil || amount.Sign() <= 0 || amount.Minor() > maxScaled {
		return callbackErr(400, codeInvalidRequest, "amount must be a positive number within the currency's decimals")
	}
	expected, err := money.ParseNumber(in.NewBalance, t.currency())
	if err != nil {
		return callbackErr(400, codeInvalidRequest, "newBalance "+errs.MessageOf(err))
	}
	h, e := s.st.apply(t, change{typ: typ, amount: amount.Minor(), externalID: in.TransactionID, via: "callback"}, s.now())
	if e != nil {
		if e.code == codeNotEnoughMoney {
			return reply{409, map[string]any{"error": "Insufficient Funds", "message": "Insufficient funds for withdrawal.",
				"code": "INSUFFICIENT_FUNDS", "availableBalance": t.amount(min(t.Balance, t.cashEquity(), t.freeMargin())).JSONNumber(),
				"requestedAmount": amount.JSONNumber()}}
		}
		return callbackErr(e.status, e.code, e.description)
	}
	if expected.Minor() != h.Balance {
		s.st.callbackMisses++
	}
	return reply{200, map[string]any{"status": "ok", "balanceHistoryId": h.BalanceHistoryID, "balance": t.amount(h.Balance).JSONNumber()}}
}
