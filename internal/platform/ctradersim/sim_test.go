package ctradersim_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencashier/cashier/internal/clock"
	"github.com/opencashier/cashier/internal/platform/ctradersim"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func seed() ctradersim.Seed {
	return ctradersim.Seed{
		Managers: []ctradersim.Manager{{Login: 1001, Password: "pw"}},
		Traders: []ctradersim.TraderSeed{
			{Login: 3000001, Currency: "USD", Balance: "100.00", Password: "tp"},
			{Login: 3000002, Currency: "BTC", Balance: "1", Password: "tp"},
		},
		Users: []ctradersim.UserSeed{{UserID: 10000001, Email: "alice@example.com", NickName: "alice", Logins: []int64{3000001}}},
	}
}

// sim is a simulator on 127.0.0.1 with a manager token.
type sim struct {
	srv   *ctradersim.Server
	clk   *clock.Fake
	token string
}

func startSim(t *testing.T, mutate func(*ctradersim.Config)) *sim {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := ctradersim.Config{Clock: clk, Seed: seed()}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := ctradersim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	s := &sim{srv: srv, clk: clk}
	s.login(t)
	return s
}

// login obtains a manager token.
func (s *sim) login(t *testing.T) {
	t.Helper()
	status, body := s.call(t, "POST", "/v2/webserv/managers/token", `{"login":1001,"hashedPassword":"`+md5hex("pw")+`"}`, nil)
	if status != 200 {
		t.Fatalf("manager login: %d %s", status, body)
	}
	var out struct{ WebservToken string }
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.WebservToken == "" {
		t.Fatalf("manager login answer %s", body)
	}
	s.token = out.WebservToken
}

// call sends a request; "{tok}" in the path is replaced by the manager
// token. JSON content headers are sent unless hdr overrides them.
func (s *sim) call(t *testing.T, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL()+strings.ReplaceAll(path, "{tok}", s.token), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// errorCode reads the WebServices errorCode of an answer.
func errorCode(body string) string {
	var e struct{ ErrorCode string }
	_ = json.Unmarshal([]byte(body), &e)
	return e.ErrorCode
}

type answer struct {
	Status int
	Code   string
}

func TestAuthenticationAndFormat(t *testing.T) {
	s := startSim(t, nil)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   answer
	}{
		{"no token", "GET", "/v2/webserv/traders/3000001", "", nil, answer{401, "NOT_ENOUGH_RIGHTS"}},
		{"unknown token", "GET", "/v2/webserv/traders/3000001?token=nope", "", nil, answer{403, "NOT_ENOUGH_RIGHTS"}},
		{"cTID call without token", "POST", "/cid/oauth2/ctid/create", `{"email":"a@b.co","brokerCrmName":"demo_crm"}`, nil, answer{401, "NOT_ENOUGH_RIGHTS"}},
		{"redeem without token", "POST", "/ctid2/inAppToken/redeem", `{"token":"x"}`, nil, answer{401, "NOT_ENOUGH_RIGHTS"}},
		{"wrong manager password", "POST", "/v2/webserv/managers/token", `{"login":1001,"hashedPassword":"` + md5hex("nope") + `"}`, nil, answer{403, "NOT_ENOUGH_RIGHTS"}},
		{"XML asked for", "GET", "/v2/webserv/traders/3000001?token={tok}", "", map[string]string{"Accept": "application/xml"}, answer{406, "INVALID_REQUEST"}},
		{"form body", "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}", `login=3000001`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, answer{415, "INVALID_REQUEST"}},
		{"no Accept header is fine", "GET", "/v2/webserv/traders/3000001?token={tok}", "", map[string]string{"Accept": ""}, answer{200, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.call(t, tt.method, tt.path, tt.body, tt.hdr)
			if got := (answer{status, errorCode(body)}); got != tt.want {
				t.Errorf("answer %+v (%s), want %+v", got, body, tt.want)
			}
		})
	}
}

func TestChangeBalanceValidation(t *testing.T) {
	const path = "/v2/webserv/traders/3000001/changebalance?token={tok}"
	tests := []struct {
		name string
		path string
		body string
		want answer
	}{
		{"login in body differs from path", path, `{"login":3000002,"preciseAmount":1,"type":"DEPOSIT"}`, answer{400, "INVALID_REQUEST"}},
		{"no login in body", path, `{"preciseAmount":1,"type":"DEPOSIT"}`, answer{400, "INVALID_REQUEST"}},
		{"unknown type", path, `{"login":3000001,"preciseAmount":1,"type":"deposit"}`, answer{400, "INVALID_REQUEST"}},
		{"unknown field", path, `{"login":3000001,"preciseAmount":1,"type":"DEPOSIT","amount":1}`, answer{400, "INVALID_REQUEST"}},
		{"malformed JSON", path, `{"login":3000001,`, answer{400, "INVALID_REQUEST"}},
		{"amount as a string", path, `{"login":3000001,"preciseAmount":"1.00","type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"amount with an exponent", path, `{"login":3000001,"preciseAmount":1e2,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"negative amount", path, `{"login":3000001,"preciseAmount":-5,"type":"WITHDRAW"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"zero amount", path, `{"login":3000001,"preciseAmount":0.00,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"more decimals than USD has", path, `{"login":3000001,"preciseAmount":0.001,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"float noise", path, `{"login":3000001,"preciseAmount":0.30000000000000004,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"nine decimals of BTC", "/v2/webserv/traders/3000002/changebalance?token={tok}", `{"login":3000002,"preciseAmount":0.000000001,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"no amount", path, `{"login":3000001,"type":"DEPOSIT"}`, answer{400, "CHANGE_BALANCE_BAD_AMOUNT"}},
		{"unknown trader", "/v2/webserv/traders/4242/changebalance?token={tok}", `{"login":4242,"preciseAmount":1,"type":"DEPOSIT"}`, answer{404, "TRADER_NOT_FOUND"}},
		{"login not a number", "/v2/webserv/traders/abc/changebalance?token={tok}", `{"login":1,"preciseAmount":1,"type":"DEPOSIT"}`, answer{400, "INVALID_REQUEST"}},
		{"withdrawal beyond the balance", path, `{"login":3000001,"preciseAmount":100.01,"type":"WITHDRAW"}`, answer{409, "NOT_ENOUGH_MONEY"}},
		{"trailing zeros are fine", path, `{"login":3000001,"preciseAmount":1.500,"type":"DEPOSIT"}`, answer{200, ""}},
		{"eight decimals of BTC", "/v2/webserv/traders/3000002/changebalance?token={tok}", `{"login":3000002,"preciseAmount":0.00000001,"type":"DEPOSIT"}`, answer{200, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, nil)
			status, body := s.call(t, "POST", tt.path, tt.body, nil)
			if got := (answer{status, errorCode(body)}); got != tt.want {
				t.Fatalf("answer %+v (%s), want %+v", got, body, tt.want)
			}
			h, _ := s.srv.Sim().History(3000001)
			h2, _ := s.srv.Sim().History(3000002)
			if applied := len(h) + len(h2); applied != map[bool]int{true: 1, false: 0}[status == 200] {
				t.Errorf("%d changes applied after a %d answer", applied, status)
			}
		})
	}
}

func TestBonusTypesAnswerWithoutHistoryID(t *testing.T) {
	s := startSim(t, nil)
	status, body := s.call(t, "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}",
		`{"login":3000001,"preciseAmount":20,"type":"DEPOSIT_NONWITHDRAWABLE_BONUS","externalId":"b1"}`, nil)
	if status != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("bonus answer %d %s, want 200 {}", status, body)
	}
	tr, _ := s.srv.Sim().Trader(3000001)
	if tr.NonWithdrawableBonus.Decimal() != "20.00" || tr.Balance.Decimal() != "100.00" || tr.Equity.Decimal() != "120.00" {
		t.Errorf("after a bonus: %+v", tr)
	}
	// The bonus counts towards equity but cannot be withdrawn as cash.
	status, body = s.call(t, "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}",
		`{"login":3000001,"preciseAmount":100.01,"type":"WITHDRAW"}`, nil)
	if status != 409 || errorCode(body) != "NOT_ENOUGH_MONEY" {
		t.Errorf("withdrawing into the bonus: %d %s", status, body)
	}
}

func TestTraderEndpointsValidation(t *testing.T) {
	s := startSim(t, func(c *ctradersim.Config) { c.Groups = []string{"default"} })
	full := `{"accessRights":"FULL_ACCESS","accountType":"HEDGED","balance":0,"brokerName":"demo_broker","depositCurrency":"USD",` +
		`"groupName":"default","hashedPassword":"` + md5hex("x") + `","leverageInCents":10000,"totalMarginCalculationType":"MAX"}`
	tests := []struct {
		name, method, path, body string
		want                     answer
		wantText                 string // in the answer
	}{
		{"create with missing fields", "POST", "/v2/webserv/traders?token={tok}", `{"accessRights":"FULL_ACCESS"}`, answer{400, "INVALID_REQUEST"},
			"accountType, balance, brokerName, depositCurrency, groupName, hashedPassword, leverageInCents, totalMarginCalculationType"},
		{"create with a login", "POST", "/v2/webserv/traders?token={tok}", strings.Replace(full, "{", `{"login":5,`, 1), answer{400, "INVALID_REQUEST"}, "assigned"},
		{"create in an unknown currency", "POST", "/v2/webserv/traders?token={tok}", strings.Replace(full, `"USD"`, `"XYZ"`, 1), answer{400, "INVALID_REQUEST"}, "XYZ"},
		{"create with a negative balance", "POST", "/v2/webserv/traders?token={tok}", strings.Replace(full, `"balance":0`, `"balance":-1`, 1), answer{400, "INVALID_REQUEST"}, "balance"},
		{"create in an unknown group", "POST", "/v2/webserv/traders?token={tok}", strings.Replace(full, `"default"`, `"vip"`, 1), answer{404, "TRADER_GROUP_NOT_FOUND"}, "vip"},
		{"create", "POST", "/v2/webserv/traders?token={tok}", full, answer{201, ""}, `"moneyDigits":2`},
		{"list without from", "GET", "/v2/webserv/traders?token={tok}&to=2026-03-02T00:00:00.000", "", answer{400, "INVALID_REQUEST"}, "from"},
		{"list with a bad timestamp", "GET", "/v2/webserv/traders?token={tok}&from=2026-03-01&to=2026-03-02T00:00:00.000", "", answer{400, "INVALID_REQUEST"}, "from"},
		{"list by group id", "GET", "/v2/webserv/traders?token={tok}&from=2026-03-01T00:00:00.000&to=2026-03-02T00:00:00.000&groupId=1", "", answer{400, "INVALID_REQUEST"}, "groupId"},
		{"list", "GET", "/v2/webserv/traders?token={tok}&from=2026-03-01T00:00:00.000&to=2026-03-02T00:00:00.000", "", answer{200, ""}, `"hasMore":false`},
		{"patch the balance", "PATCH", "/v2/webserv/traders/3000001?token={tok}", `{"balance":5}`, answer{400, "INVALID_REQUEST"}, "changebalance"},
		{"patch the currency", "PATCH", "/v2/webserv/traders/3000001?token={tok}", `{"depositCurrency":"EUR"}`, answer{400, "INVALID_REQUEST"}, "depositCurrency"},
		{"patch another login", "PATCH", "/v2/webserv/traders/3000001?token={tok}", `{"login":3000002}`, answer{400, "INVALID_REQUEST"}, "login"},
		{"patch an unknown trader", "PATCH", "/v2/webserv/traders/4242?token={tok}", `{"name":"x"}`, answer{404, "TRADER_NOT_FOUND"}, ""},
		{"patch", "PATCH", "/v2/webserv/traders/3000001?token={tok}", `{"name":"Al","accessRights":"CLOSE_ONLY"}`, answer{200, ""}, `"accessRights":"CLOSE_ONLY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.call(t, tt.method, tt.path, tt.body, nil)
			if got := (answer{status, errorCode(body)}); got != tt.want || !strings.Contains(body, tt.wantText) {
				t.Errorf("answer %+v %s; want %+v containing %q", got, body, tt.want, tt.wantText)
			}
		})
	}
}

func TestHistoryExtensionCanBeSwitchedOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		s := startSim(t, func(c *ctradersim.Config) { c.DisableHistoryExtension = off })
		status, body := s.call(t, "GET", "/v2/webserv/traders/3000001/balancehistory?token={tok}", "", nil)
		want := map[bool]int{false: 200, true: 404}[off]
		if status != want || off && errorCode(body) != "" {
			t.Errorf("extension off=%v: %d %s, want %d (a plain 404 when off)", off, status, body, want)
		}
	}
}

func TestCTIDNickNamesAndLinks(t *testing.T) {
	s := startSim(t, nil)
	create := func(body string) int64 {
		t.Helper()
		status, out := s.call(t, "POST", "/cid/oauth2/ctid/create?token={tok}", body, nil)
		if status != 201 {
			t.Fatalf("create %s: %d %s", body, status, out)
		}
		var r struct{ UserID int64 }
		_ = json.Unmarshal([]byte(out), &r)
		return r.UserID
	}
	bob := create(`{"email":"bob@example.com","brokerCrmName":"demo_crm","nickName":"bobby"}`)
	carol := create(`{"email":"carol@example.com","brokerCrmName":"demo_crm","nickname":"bobby"}`) // taken; the docs' spelling
	dan := create(`{"email":"alice@other.com","brokerCrmName":"demo_crm"}`)                        // "alice" is taken
	erin := create(`{"email":"erin@example.com","brokerCrmName":"demo_crm","preferredLanguage":"fr"}`)
	nicks := map[int64]string{}
	for _, u := range s.srv.Sim().Users() {
		nicks[u.UserID] = u.NickName
	}
	want := map[int64]string{10000001: "alice", bob: "bobby", carol: "ctid" + itoa(carol), dan: "ctid" + itoa(dan), erin: "erin"}
	if diff := cmp.Diff(want, nicks); diff != "" {
		t.Errorf("nick names (-want +got):\n%s", diff)
	}
	status, body := s.call(t, "POST", "/cid/oauth2/ctid/create?token={tok}", `{"email":"bob@example.com","brokerCrmName":"demo_crm","preferredLanguage":"eng"}`, nil)
	if status != 400 {
		t.Errorf("three-letter language: %d %s", status, body)
	}
	status, body = s.call(t, "POST", "/cid/ctid/link?token={tok}", `{"traderLogin":3000002,"traderPasswordHash":"`+md5hex("tp")+
		`","userId":`+itoa(bob)+`,"brokerName":"demo_broker","environmentName":"demo"}`, nil)
	if status != 200 || body != "" {
		t.Errorf("link without returnAccountDetails: %d %q, want 200 and an empty body", status, body)
	}
	status, body = s.call(t, "POST", "/cid/ctid/link?token={tok}", `{"traderLogin":3000002,"traderPasswordHash":"`+md5hex("tp")+
		`","userId":`+itoa(bob)+`,"brokerName":"demo_broker","environmentName":"live"}`, nil)
	if status != 400 {
		t.Errorf("link in another environment: %d %s", status, body)
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAdminAPI(t *testing.T) {
	s := startSim(t, func(c *ctradersim.Config) { c.AdminToken = "adm" })
	admin := map[string]string{"Authorization": "Bearer adm"}
	if status, _ := s.call(t, "GET", "/_sim/traders", "", nil); status != 401 {
		t.Errorf("admin API without its token: %d, want 401", status)
	}
	status, body := s.call(t, "PUT", "/_sim/traders/3000001/positions", `{"unrealizedPnl":"-40.00","usedMargin":"50.00"}`, admin)
	if status != 200 || !strings.Contains(body, `"freeMargin":{"amount":"10.00","currency":"USD"}`) {
		t.Errorf("set positions: %d %s", status, body)
	}
	status, _ = s.call(t, "PUT", "/_sim/traders/3000001/positions", `{"unrealizedPnl":"-40.001","usedMargin":"0"}`, admin)
	if status != 400 {
		t.Errorf("positions with too many decimals: %d, want 400", status)
	}
	status, body = s.call(t, "POST", "/_sim/handoff", `{"userId":10000001}`, admin)
	var h struct{ Token string }
	if status != 201 || json.Unmarshal([]byte(body), &h) != nil || h.Token == "" {
		t.Fatalf("issue handoff token: %d %s", status, body)
	}
	status, body = s.call(t, "POST", "/ctid2/inAppToken/redeem?token={tok}", `{"token":"`+h.Token+`"}`, nil)
	if status != 200 || !strings.Contains(body, `"tradingLogin":3000001`) {
		t.Errorf("redeem: %d %s", status, body)
	}
	if status, _ := s.call(t, "POST", "/_sim/handoff", `{"userId":10000001,"tradingLogin":3000002}`, admin); status != 400 {
		t.Errorf("handoff token for an account not linked to the user: %d, want 400", status)
	}
	if status, _ := s.call(t, "PUT", "/_sim/faults", `{"seed":1,"endpoints":{"changebalance":{"dropP":2}}}`, admin); status != 400 {
		t.Errorf("invalid faults: %d, want 400", status)
	}
	status, body = s.call(t, "PUT", "/_sim/faults", `{"seed":9,"endpoints":{"changebalance":{"errorP":1,"errorStatus":502}}}`, admin)
	if status != 200 || !strings.Contains(body, `"seed":9`) {
		t.Errorf("set faults: %d %s", status, body)
	}
	status, body = s.call(t, "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}", `{"login":3000001,"preciseAmount":1,"type":"DEPOSIT"}`, nil)
	if status != 502 || errorCode(body) != "UNKNOWN_ERROR" {
		t.Errorf("changebalance under an injected error: %d %s", status, body)
	}
	status, body = s.call(t, "GET", "/_sim/stats", "", admin)
	if status != 200 || !strings.Contains(body, `"changebalance":{"calls":1,"latency":0,"error":1`) {
		t.Errorf("stats: %d %s", status, body)
	}
	if status, _ := s.call(t, "POST", "/_sim/reset", "", admin); status != 204 {
		t.Errorf("reset: %d", status)
	}
	tr, _ := s.srv.Sim().Trader(3000001)
	if !tr.UnrealizedPnL.IsZero() || tr.FreeMargin.Decimal() != "100.00" {
		t.Errorf("after reset: %+v", tr)
	}
	if status, body := s.call(t, "GET", "/_sim/traders/3000001/history", "", admin); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("history after reset: %d %s", status, body)
	}
}

func TestStateSurvivesSaveAndLoad(t *testing.T) {
	s := startSim(t, nil)
	for _, body := range []string{`{"login":3000001,"preciseAmount":1.25,"type":"DEPOSIT","externalId":"a"}`,
		`{"login":3000001,"preciseAmount":5,"type":"DEPOSIT_NONWITHDRAWABLE_BONUS","externalId":"b"}`} {
		if status, out := s.call(t, "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}", body, nil); status != 200 {
			t.Fatalf("%d %s", status, out)
		}
	}
	var buf bytes.Buffer
	if err := s.srv.Sim().SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	next := startSim(t, nil)
	if err := next.srv.Sim().LoadState(&buf); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.srv.Sim().Traders(), next.srv.Sim().Traders()); diff != "" {
		t.Errorf("traders after load (-saved +loaded):\n%s", diff)
	}
	h1, _ := s.srv.Sim().History(3000001)
	h2, _ := next.srv.Sim().History(3000001)
	if diff := cmp.Diff(h1, h2); diff != "" {
		t.Errorf("history after load (-saved +loaded):\n%s", diff)
	}
	// Tokens are not saved: the token from before the load is refused, a new
	// login works, and history ids continue after the saved ones.
	if status, _ := next.call(t, "GET", "/v2/webserv/traders/3000001?token={tok}", "", nil); status != 403 {
		t.Errorf("a token from before the load still works: %d", status)
	}
	next.login(t)
	_, body := next.call(t, "POST", "/v2/webserv/traders/3000001/changebalance?token={tok}", `{"login":3000001,"preciseAmount":1,"type":"DEPOSIT","externalId":"c"}`, nil)
	var r struct{ BalanceHistoryID int64 }
	_ = json.Unmarshal([]byte(body), &r)
	if r.BalanceHistoryID <= h1[0].BalanceHistoryID {
		t.Errorf("history id %d after load does not continue after %d", r.BalanceHistoryID, h1[0].BalanceHistoryID)
	}
	if err := next.srv.Sim().LoadState(strings.NewReader(`{"version":2}`)); err == nil {
		t.Error("LoadState accepted a file of another version")
	}
}
