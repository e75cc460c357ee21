// Package ctradersim simulates the cTrader side of a broker integration so
// that OpenCashier, and brokers evaluating it, can test without a real
// cTrader: the WebServices manager API (manager token, traders,
// changebalance), the cTID endpoints of the SSO flows, the one-time-token
// handoff redeem, seed 000's balance-update callback, a fake cTrader app that
// drives the broker's /oauth2 endpoints and screens the way the cTrader
// backend and app do, deterministic fault injection, and an admin API.
//
// Start it in-process with New and Handler, or Start for a listener on
// 127.0.0.1; `cashier sim` runs Main. docs/simulator.md describes every
// endpoint, the statuses the simulator chose and the fault knobs.
package ctradersim

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/money"
)

// maxBody bounds request bodies the simulator reads.
const maxBody = 64 << 10

// Sim is a cTrader simulator. Its state lives in memory; it is safe for
// concurrent use.
type Sim struct {
	cfg     Config
	faults  *injector
	app     *app
	handler http.Handler

	closing   chan struct{} // closed by Close: ends held and delayed requests
	closeOnce sync.Once

	mu sync.Mutex
	st *state
}

// New builds a simulator from cfg. It returns an errs.Invalid error for a
// seed or fault configuration that does not make sense.
func New(cfg Config) (*Sim, error) {
	cfg.withDefaults()
	if err := cfg.Faults.Validate(); err != nil {
		return nil, errs.Wrap("ctradersim.New", err)
	}
	st, err := newState(&cfg, cfg.Clock.Now())
	if err != nil {
		return nil, errs.Wrap("ctradersim.New", err)
	}
	s := &Sim{cfg: cfg, faults: newInjector(cfg.Faults), closing: make(chan struct{}), st: st}
	s.app = newApp(s, cfg.App)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the simulator's HTTP handler: the cTrader endpoints, the
// fake app under /app/ and the admin API under /_sim/.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close ends every request the simulator is holding (latency waits and
// apply-then-timeout holds) by closing their connections. It does not
// discard the state.
func (s *Sim) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

func (s *Sim) now() time.Time { return s.cfg.Clock.Now() }

func (s *Sim) log() *slog.Logger { return s.cfg.Logger }

// reply is an endpoint's answer: a status and a JSON body (nil for none).
type reply struct {
	status int
	body   any
}

func (e *wsError) reply() reply {
	return reply{e.status, wsErrorBody{ErrorCode: e.code, Description: e.description}}
}

// wsErrorBody is the WebServices error body the simulator writes (spec §6.2
// [I]): {"errorCode":"…","description":"…"}.
type wsErrorBody struct {
	ErrorCode   string `json:"errorCode"`
	Description string `json:"description"`
}

// errStyle picks the error body shape of injected errors.
type errStyle int

const (
	styleWebServices errStyle = iota // {"errorCode","description"}
	styleCallback                    // seed 000: {"error","message","code"}
)

// callbackErrorBody is seed 000's error shape.
type callbackErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

func callbackErr(status int, code, message string) reply {
	return reply{status, callbackErrorBody{Error: http.StatusText(status), Message: message, Code: code}}
}

// handlerFunc handles one request whose body has been read. It is called
// once, or twice for a duplicate delivery.
type handlerFunc func(r *http.Request, body []byte) reply

// endpoint wraps h with body reading, the Accept check and fault injection.
// key extracts the request's fault key from its body (nil: no key).
func (s *Sim) endpoint(name string, style errStyle, key func([]byte) string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if acc := r.Header.Get("Accept"); acc != "" && !acceptsJSON(acc) {
			httpx.WriteJSON(w, http.StatusNotAcceptable, wsErrorBody{ErrorCode: codeInvalidRequest,
				Description: "the simulator answers in JSON only; send Accept: application/json"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			httpx.WriteJSON(w, http.StatusRequestEntityTooLarge, wsErrorBody{ErrorCode: codeInvalidRequest, Description: "request body too large or unreadable"})
			return
		}
		k := ""
		if key != nil {
			k = key(body)
		}
		d := s.faults.decide(name, k)
		log := s.log().With("endpoint", name, "key", k)
		if d.latency > 0 && !s.wait(r.Context(), d.latency) {
			log.Debug("ctradersim: client left during injected latency; not applied")
			return
		}
		switch d.kind {
		case FaultError:
			log.Debug("ctradersim: injected error", "status", d.status, "code", d.code)
			if style == styleCallback {
				write(w, callbackErr(d.status, d.code, "injected fault"))
			} else {
				write(w, reply{d.status, wsErrorBody{ErrorCode: d.code, Description: "injected fault"}})
			}
			return
		case FaultDrop:
			log.Debug("ctradersim: injected drop before apply")
			hangUp(w)
			return
		}
		rep := h(r, body)
		switch d.kind {
		case FaultApplyTimeout:
			log.Debug("ctradersim: applied; holding the answer", "status", rep.status, "hold", d.hold)
			s.wait(r.Context(), d.hold)
			hangUp(w)
			return
		case FaultApplyReset:
			log.Debug("ctradersim: applied; resetting the connection", "status", rep.status)
			hangUp(w)
			return
		case FaultDuplicate:
			dup := h(r, body)
			log.Debug("ctradersim: duplicate delivery", "first", rep.status, "second", dup.status)
		}
		write(w, rep)
	}
}

func acceptsJSON(accept string) bool {
	for _, part := range []string{"json", "*/*", "application/*"} {
		if containsFold(accept, part) {
			return true
		}
	}
	return false
}

func write(w http.ResponseWriter, rep reply) {
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	httpx.WriteJSON(w, rep.status, rep.body)
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server then drops the connection
	}
	_ = conn.Close()
}

// wait waits for d. It reports false, early, when the request's context ends
// (the client went away) or the simulator is closed.
func (s *Sim) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// keyField returns a key function that reads a top-level string field of a
// JSON body, or "" when the body has none.
func keyField(name string) func([]byte) string {
	return func(body []byte) string {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return ""
		}
		var v string
		if json.Unmarshal(m[name], &v) != nil {
			return ""
		}
		return v
	}
}

// TraderInfo is a trading account as the admin API and tests see it.
type TraderInfo struct {
	Login                int64        `json:"login"`
	Currency             string       `json:"currency"`
	MoneyDigits          int          `json:"moneyDigits"`
	Balance              money.Amount `json:"balance"`
	Equity               money.Amount `json:"equity"`
	CashEquity           money.Amount `json:"cashEquity"`
	FreeMargin           money.Amount `json:"freeMargin"`
	UsedMargin           money.Amount `json:"usedMargin"`
	UnrealizedPnL        money.Amount `json:"unrealizedPnl"`
	NonWithdrawableBonus money.Amount `json:"nonWithdrawableBonus"`
	GroupName            string       `json:"groupName"`
	Name                 string       `json:"name,omitempty"`
	LastName             string       `json:"lastName,omitempty"`
	Changes              int          `json:"changes"` // entries in its balance history
}

func (t *traderState) info() TraderInfo {
	return TraderInfo{
		Login: t.Login, Currency: t.DepositCurrency, MoneyDigits: t.MoneyDigits,
		Balance: t.amount(t.Balance), Equity: t.amount(t.equity()), CashEquity: t.amount(t.cashEquity()),
		FreeMargin: t.amount(t.freeMargin()), UsedMargin: t.amount(t.UsedMargin), UnrealizedPnL: t.amount(t.UnrealizedPnL),
		NonWithdrawableBonus: t.amount(t.NonWithdrawableBonus), GroupName: t.GroupName, Name: t.Name, LastName: t.LastName,
		Changes: len(t.History),
	}
}

// Traders returns every trading account, ordered by login.
func (s *Sim) Traders() []TraderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TraderInfo, 0, len(s.st.Traders))
	for _, t := range s.st.Traders {
		out = append(out, t.info())
	}
	slices.SortFunc(out, func(a, b TraderInfo) int { return cmp.Compare(a.Login, b.Login) })
	return out
}

// Trader returns one trading account. It returns an errs.NotFound error for
// an unknown login.
func (s *Sim) Trader(login int64) (TraderInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Traders[login]
	if t == nil {
		return TraderInfo{}, errs.Ef(errs.NotFound, "ctradersim.Trader", "trader %d does not exist", login)
	}
	return t.info(), nil
}

// History returns a trader's balance history, oldest first. It returns an
// errs.NotFound error for an unknown login.
func (s *Sim) History(login int64) ([]HistoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Traders[login]
	if t == nil {
		return nil, errs.Ef(errs.NotFound, "ctradersim.History", "trader %d does not exist", login)
	}
	return append(make([]HistoryEntry, 0, len(t.History)), t.History...), nil
}

// SetPositions gives a trader open positions: an unrealised P&L and the
// margin they use, as exact decimals in the trader's currency (e.g. "-50.00"
// and "100.00"). Equity, cash equity and free margin follow, so a WITHDRAW
// can meet NOT_ENOUGH_MONEY. It returns an errs.NotFound error for an unknown
// login and an errs.Invalid error for amounts that do not parse, a negative
// margin, or figures beyond the simulator's range.
func (s *Sim) SetPositions(login int64, unrealizedPnL, usedMargin string) (TraderInfo, error) {
	const op = "ctradersim.SetPositions"
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Traders[login]
	if t == nil {
		return TraderInfo{}, errs.Ef(errs.NotFound, op, "trader %d does not exist", login)
	}
	pnl, err := money.Parse(unrealizedPnL, t.currency())
	if err != nil {
		return TraderInfo{}, errs.Wrap(op+": unrealized P&L", err)
	}
	margin, err := money.Parse(usedMargin, t.currency())
	if err != nil {
		return TraderInfo{}, errs.Wrap(op+": used margin", err)
	}
	if margin.IsNegative() || abs(pnl.Minor()) > maxScaled || margin.Minor() > maxScaled {
		return TraderInfo{}, errs.E(errs.Invalid, op, "used margin must not be negative and both figures must be in range")
	}
	t.UnrealizedPnL, t.UsedMargin = pnl.Minor(), margin.Minor()
	t.Updated = s.now().UnixMilli()
	return t.info(), nil
}

// UserInfo is a cTID user and the trading accounts linked to it.
type UserInfo struct {
	UserID            int64   `json:"userId"`
	Email             string  `json:"email"`
	NickName          string  `json:"nickName"`
	PreferredLanguage string  `json:"preferredLanguage,omitempty"`
	Logins            []int64 `json:"logins"`
}

// Users returns every cTID user, ordered by id.
func (s *Sim) Users() []UserInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UserInfo, 0, len(s.st.Users))
	for _, u := range s.st.Users {
		out = append(out, UserInfo{UserID: u.UserID, Email: u.Email, NickName: u.NickName,
			PreferredLanguage: u.PreferredLanguage, Logins: s.st.linkedLogins(u.UserID)})
	}
	slices.SortFunc(out, func(a, b UserInfo) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

// IssueHandoffToken issues the single-use in-app token cTrader would put in
// the broker's screen URL under the one-time-token handoff, for a user and
// one of its linked accounts (0: its first). The token can be redeemed once
// at /ctid2/inAppToken/redeem until it expires (Config.HandoffTTL). It returns
// an errs.NotFound error for an unknown user and an errs.Invalid error for an
// account not linked to the user.
func (s *Sim) IssueHandoffToken(userID, login int64) (token string, expires time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.issueHandoff(userID, login, s.now(), s.cfg.HandoffTTL)
}

// ExpireManagerTokens invalidates every webservToken, as a manager password
// change does; clients must log in again.
func (s *Sim) ExpireManagerTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.st.tokens)
	clear(s.st.managerToken)
}

// Faults returns the fault configuration in force.
func (s *Sim) Faults() FaultConfig { return s.faults.config() }

// SetFaults replaces the fault configuration and restarts the decision
// streams and fault counters from its seed. It returns the errors of
// FaultConfig.Validate.
func (s *Sim) SetFaults(c FaultConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s.faults.set(c)
	return nil
}

// Stats counts requests, injected faults and applied changes.
type Stats struct {
	Endpoints      map[string]EndpointStats `json:"endpoints"`
	BalanceChanges int                      `json:"balanceChanges"` // applied, duplicates included
	// DuplicateExternalIDs counts changes applied with an externalId that an
	// earlier change on the same account already carried: the double
	// credits an exactly-once push must never cause.
	DuplicateExternalIDs int `json:"duplicateExternalIds"`
	// CallbackBalanceMismatches counts callbacks whose newBalance was not the
	// balance they produced.
	CallbackBalanceMismatches int `json:"callbackBalanceMismatches"`
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	st := Stats{BalanceChanges: s.st.changes, DuplicateExternalIDs: s.st.duplicateIDs, CallbackBalanceMismatches: s.st.callbackMisses}
	s.mu.Unlock()
	st.Endpoints = s.faults.snapshot()
	return st
}

// Reset returns the simulator to its seed: traders, users, links and
// histories as configured, no tokens, no app sessions, fault streams and
// counters restarted. The fault configuration in force is kept.
func (s *Sim) Reset() error {
	st, err := newState(&s.cfg, s.now())
	if err != nil {
		return errs.Wrap("ctradersim.Reset", err)
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.faults.set(s.faults.config())
	s.app.reset()
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
