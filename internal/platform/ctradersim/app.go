package ctradersim

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var appTemplates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// nextCookie remembers which app page a frame returns to when it reaches
// the success page.
const nextCookie = "ctsim_next"

// maxEvents is how many broker calls the app state keeps.
const maxEvents = 50

// app is the fake cTrader app: it plays both the app (pages with accounts and
// Deposit/Withdraw buttons, a frame for broker screens) and the cTrader
// backend's calls to the broker's /oauth2 endpoints.
type app struct {
	sim *Sim
	cfg AppConfig

	mu              sync.Mutex
	crmToken        string
	crmTokenFetches int
	sessions        map[int64]*AppSession
	events          []AppEvent
	lastCashierURL  string
	prefs           prefs
}

// prefs are the language, theme and source the app sends to broker screens.
type prefs struct {
	Lang, Theme, Source string
}

// AppSession is the app's login of one user under SSO: what the broker
// returned from /oauth2/onetime/authorize or /oauth2/authorize.
type AppSession struct {
	UserID         int64     `json:"userId"`
	AccessToken    string    `json:"accessToken,omitempty"`
	InappToken     string    `json:"inappToken,omitempty"`
	LoggedInAt     time.Time `json:"loggedInAt"`
	ReloggedInAt   time.Time `json:"reloggedInAt,omitzero"`
	Relogins       int       `json:"relogins"`
	LastCashierURL string    `json:"lastCashierUrl,omitempty"`
	notice         string
}

// AppEvent is one call the app made to the broker, or one arrival of the
// frame at the success page.
type AppEvent struct {
	Time   time.Time `json:"time"`
	Call   string    `json:"call"`
	Status int       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// AppState is the fake app's state, for tests and the admin API.
type AppState struct {
	Mode               string       `json:"mode"` // "sso" or "handoff"
	BrokerURL          string       `json:"brokerUrl"`
	SuccessURL         string       `json:"successUrl,omitempty"`
	HasCrmAPIToken     bool         `json:"hasCrmApiToken"`
	CrmAPITokenFetches int          `json:"crmApiTokenFetches"`
	Sessions           []AppSession `json:"sessions"`
	LastCashierURL     string       `json:"lastCashierUrl,omitempty"`
	Events             []AppEvent   `json:"events"`
}

func newApp(s *Sim, cfg AppConfig) *app {
	a := &app{sim: s, cfg: cfg}
	a.reset()
	return a
}

func (a *app) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.crmToken, a.crmTokenFetches, a.lastCashierURL = "", 0, ""
	a.sessions = map[int64]*AppSession{}
	a.events = nil
	a.prefs = prefs{Lang: "en", Theme: "light", Source: "Web"}
}

func (a *app) mode() string {
	if a.cfg.Handoff {
		return "handoff"
	}
	return "sso"
}

// AppState returns the fake app's state: its mode, whether it holds a
// crmApiToken, the sessions of logged-in users and the last broker calls.
func (s *Sim) AppState() AppState {
	a := s.app
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AppState{Mode: a.mode(), BrokerURL: a.cfg.BrokerURL, SuccessURL: a.cfg.SuccessURL, HasCrmAPIToken: a.crmToken != "",
		CrmAPITokenFetches: a.crmTokenFetches, LastCashierURL: a.lastCashierURL, Events: slices.Clone(a.events),
		Sessions: []AppSession{}}
	for _, ss := range a.sessions {
		st.Sessions = append(st.Sessions, *ss)
	}
	slices.SortFunc(st.Sessions, func(x, y AppSession) int { return cmp.Compare(x.UserID, y.UserID) })
	return st
}

func (a *app) record(call string, status int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := AppEvent{Time: a.sim.now(), Call: call, Status: status}
	if err != nil {
		e.Error = err.Error()
	}
	a.events = append(a.events, e)
	if len(a.events) > maxEvents {
		a.events = a.events[len(a.events)-maxEvents:]
	}
}

// brokerError is a failed call to the broker.
type brokerError struct {
	Call    string
	Status  int
	Code    string
	Message string
}

func (e *brokerError) Error() string {
	s := fmt.Sprintf("broker %s: HTTP %d", e.Call, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// brokerURL joins the broker base URL and a path.
func (a *app) brokerURL(path string, q url.Values) (string, error) {
	if a.cfg.BrokerURL == "" {
		return "", fmt.Errorf("no broker URL is configured (cashier sim -broker-url)")
	}
	u, err := url.Parse(strings.TrimRight(a.cfg.BrokerURL, "/") + path)
	if err != nil {
		return "", fmt.Errorf("broker URL: %w", err)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// post sends one JSON POST to the broker and decodes a 200 answer into out.
func (a *app) post(ctx context.Context, call, path string, q url.Values, in, out any) error {
	u, err := a.brokerURL(path, q)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		err = fmt.Errorf("broker %s: %w", call, redactURLError(err))
		a.record(call, 0, err)
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		be := &brokerError{Call: call, Status: res.StatusCode}
		var eb struct {
			Error   string `json:"error"`
			Message string `json:"message"`
			Code    string `json:"code"`
		}
		if json.Unmarshal(data, &eb) == nil {
			be.Code, be.Message = eb.Code, eb.Message
			if be.Message == "" {
				be.Message = eb.Error
			}
		} else {
			be.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		a.record(call, res.StatusCode, be)
		return be
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		err = fmt.Errorf("broker %s: unreadable answer: %w", call, err)
		a.record(call, res.StatusCode, err)
		return err
	}
	a.record(call, res.StatusCode, nil)
	return nil
}

// redactURLError drops the URL (which carries tokens) from a client error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// crmAPIToken returns the cached crmApiToken, obtaining one from the broker
// with the shared password when there is none or when force is set.
func (a *app) crmAPIToken(ctx context.Context, force bool) (string, error) {
	a.mu.Lock()
	tok := a.crmToken
	a.mu.Unlock()
	if tok != "" && !force {
		return tok, nil
	}
	var out struct {
		CrmAPIToken string `json:"crmApiToken"`
	}
	if err := a.post(ctx, "crmApiToken", "/oauth2/crmApiToken", nil, map[string]string{"password": a.cfg.CRMPassword}, &out); err != nil {
		return "", err
	}
	if out.CrmAPIToken == "" {
		return "", fmt.Errorf("broker crmApiToken: the answer has no crmApiToken")
	}
	a.mu.Lock()
	a.crmToken = out.CrmAPIToken
	a.crmTokenFetches++
	a.mu.Unlock()
	return out.CrmAPIToken, nil
}

// callBroker makes an authenticated cTrader → broker call: crmApiToken in
// the query, and on 403 a fresh crmApiToken and one retry.
func (a *app) callBroker(ctx context.Context, call, path string, q url.Values, in, out any) error {
	for attempt := 0; ; attempt++ {
		tok, err := a.crmAPIToken(ctx, attempt > 0)
		if err != nil {
			return err
		}
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("crmApiToken", tok)
		err = a.post(ctx, call, path, qq, in, out)
		var be *brokerError
		if attempt == 0 && errors.As(err, &be) && be.Status == http.StatusForbidden {
			continue
		}
		return err
	}
}

// flexID reads a userId the broker may send as a number or a string [Δ].
type flexID int64

func (f *flexID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("userId %s is not a positive integer", b)
	}
	*f = flexID(v)
	return nil
}

// exchange trades the login OT token for a session (4.2).
func (a *app) exchange(ctx context.Context, code string) (*AppSession, error) {
	var out struct {
		UserID      flexID `json:"userId"`
		AccessToken string `json:"accessToken"`
		InappToken  string `json:"inappToken"`
	}
	if err := a.callBroker(ctx, "onetime/authorize", "/oauth2/onetime/authorize", nil, map[string]string{"code": code}, &out); err != nil {
		return nil, err
	}
	if out.UserID == 0 {
		return nil, fmt.Errorf("broker onetime/authorize: the answer has no userId")
	}
	ss := &AppSession{UserID: int64(out.UserID), AccessToken: out.AccessToken, InappToken: out.InappToken, LoggedInAt: a.sim.now()}
	a.mu.Lock()
	a.sessions[ss.UserID] = ss
	a.mu.Unlock()
	return ss, nil
}

// relogin verifies the stored accessToken (4.3), as the app does on launch.
func (a *app) relogin(ctx context.Context, userID int64) error {
	a.mu.Lock()
	ss := a.sessions[userID]
	a.mu.Unlock()
	if ss == nil || ss.AccessToken == "" {
		return fmt.Errorf("user %d has no stored accessToken (the broker issues one only with \"Keep me logged in\"); log in again", userID)
	}
	var out struct {
		UserID     flexID `json:"userId"`
		InappToken string `json:"inappToken"`
	}
	err := a.callBroker(ctx, "authorize", "/oauth2/authorize", nil, map[string]string{"accessToken": ss.AccessToken}, &out)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		delete(a.sessions, userID) // a refused accessToken ends the session
		return err
	}
	if int64(out.UserID) != userID {
		delete(a.sessions, userID)
		return fmt.Errorf("broker authorize: accessToken belongs to user %d, not %d", out.UserID, userID)
	}
	ss.InappToken = out.InappToken
	ss.ReloggedInAt = a.sim.now()
	ss.Relogins++
	return nil
}

// inAppToken obtains the OT token for a cashier screen: from the broker
// (4.4, with the session's inappToken) under SSO, or from the simulator's
// own handoff store.
func (a *app) inAppToken(ctx context.Context, userID, login int64) (string, error) {
	if a.cfg.Handoff {
		tok, _, err := a.sim.IssueHandoffToken(userID, login)
		return tok, err
	}
	a.mu.Lock()
	ss := a.sessions[userID]
	a.mu.Unlock()
	if ss == nil {
		return "", fmt.Errorf("user %d is not logged in to the app; log in first", userID)
	}
	q := url.Values{}
	if ss.InappToken != "" {
		q.Set("inappToken", ss.InappToken)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := a.callBroker(ctx, "onetime/generate", "/oauth2/onetime/generate", q, map[string]int64{"userId": userID}, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", fmt.Errorf("broker onetime/generate: the answer has no token")
	}
	return out.Token, nil
}

// --- pages ---

func (a *app) mount(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	mux.HandleFunc("GET /app/{$}", a.index)
	mux.HandleFunc("GET /app/login", a.login)
	mux.HandleFunc("GET /app/success", a.success)
	if p := a.successPath(); p != "" && p != "/app/success" {
		mux.HandleFunc("GET "+p, a.success)
	}
	mux.HandleFunc("GET /app/{userId}", a.account)
	mux.Handle("POST /app/{userId}/open", csrf.Handler(http.HandlerFunc(a.open)))
	mux.Handle("POST /app/{userId}/restart", csrf.Handler(http.HandlerFunc(a.restart)))
}

// successPath is the path of the configured success URL, served as the
// success page too (it must be on the simulator's origin to be seen). Paths
// of the simulator's own routes are not taken over.
func (a *app) successPath() string {
	if a.cfg.SuccessURL == "" {
		return ""
	}
	u, err := url.Parse(a.cfg.SuccessURL)
	if err != nil || u.Path == "" || u.Path == "/" || strings.ContainsAny(u.Path, "{}") {
		return ""
	}
	for _, taken := range []string{"/app/", "/v2/", "/cid/", "/ctid2/", "/ctrader/", "/_sim/"} {
		if strings.HasPrefix(u.Path, taken) { // the simulator's own routes; /app/success is served anyway
			return ""
		}
	}
	return u.Path
}

// successURL is the success URL the broker should be configured with, as
// seen from this request.
func (a *app) successURL(r *http.Request) string {
	if a.cfg.SuccessURL != "" {
		return a.cfg.SuccessURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/app/success"
}

// successOnOtherOrigin reports a configured success URL the app cannot see.
func (a *app) successOnOtherOrigin(r *http.Request) bool {
	if a.cfg.SuccessURL == "" {
		return false
	}
	u, err := url.Parse(a.cfg.SuccessURL)
	return err != nil || u.Host != r.Host
}

type pageData struct {
	Title        string
	Mode         string
	BrokerURL    string
	SuccessURL   string
	SuccessWarn  bool
	Prefs        prefs
	Langs        []string
	Themes       []string
	Sources      []string
	Users        []UserInfo
	User         UserInfo
	Accounts     []TraderInfo
	Session      *AppSession
	Notice       string
	Error        string
	FrameSrc     string
	FrameBack    string
	SuccessNext  string
	SuccessTitle string
}

func (a *app) page(r *http.Request, title string) pageData {
	a.mu.Lock()
	p := a.prefs
	a.mu.Unlock()
	return pageData{Title: title, Mode: a.mode(), BrokerURL: a.cfg.BrokerURL, SuccessURL: a.successURL(r),
		SuccessWarn: a.successOnOtherOrigin(r), Prefs: p,
		Langs:   []string{"en", "de", "es", "fr", "it", "ja", "pt", "ru", "zh", "ar", "he", "xx"},
		Themes:  []string{"light", "dark"},
		Sources: []string{"Web", "Android", "iOS", "MacOS", "Desktop"}}
}

func (a *app) render(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := appTemplates.ExecuteTemplate(&buf, name, d); err != nil {
		a.sim.log().Error("ctradersim: render page", "page", name, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	d := a.page(r, "Simulated cTrader app")
	d.Users = a.sim.Users()
	a.mu.Lock()
	for id := range a.sessions { // users the broker logged in that the simulator never created
		if !slices.ContainsFunc(d.Users, func(u UserInfo) bool { return u.UserID == id }) {
			d.Users = append(d.Users, UserInfo{UserID: id, Email: "(not a simulator cTID user)"})
		}
	}
	a.mu.Unlock()
	a.render(w, 200, "index.html", d)
}

func (a *app) readPrefs(r *http.Request) prefs {
	a.mu.Lock()
	defer a.mu.Unlock()
	pick := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	p := prefs{Lang: pick(r.FormValue("lang"), a.prefs.Lang), Theme: pick(r.FormValue("theme"), a.prefs.Theme),
		Source: pick(r.FormValue("source"), a.prefs.Source)}
	a.prefs = p
	return p
}

func setNext(w http.ResponseWriter, next string) {
	http.SetCookie(w, &http.Cookie{Name: nextCookie, Value: next, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// login opens the broker's login/signup screen in the frame.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	d := a.page(r, "Log in")
	if a.cfg.Handoff {
		d.Error = "The app is in handoff mode: cTrader is the identity provider and there is no broker login."
		a.render(w, 400, "index.html", d)
		return
	}
	p := a.readPrefs(r)
	firstLogin := "false"
	if r.FormValue("firstLogin") == "true" {
		firstLogin = "true"
	}
	src, err := a.brokerURL("/auth/login", url.Values{"lang": {p.Lang}, "theme": {p.Theme}, "source": {p.Source}, "firstLogin": {firstLogin}})
	if err != nil {
		d.Error = err.Error()
		d.Users = a.sim.Users()
		a.render(w, 503, "index.html", d)
		return
	}
	setNext(w, "/app/")
	d.Prefs, d.FrameSrc, d.FrameBack = p, src, "/app/"
	a.render(w, 200, "frame.html", d)
}

// success is the page the broker's success URL points to. In the frame it
// is same-origin with the app page, so its script navigates the top window
// back to the app, which closes the frame. A login token in its query is
// exchanged at the broker first.
func (a *app) success(w http.ResponseWriter, r *http.Request) {
	d := a.page(r, "Done")
	next := "/app/"
	if c, err := r.Cookie(nextCookie); err == nil && strings.HasPrefix(c.Value, "/app/") && !strings.HasPrefix(c.Value, "//") {
		next = c.Value
	}
	status := http.StatusOK
	if code := r.URL.Query().Get("token"); code != "" && !a.cfg.Handoff {
		ss, err := a.exchange(r.Context(), code)
		if err != nil {
			d.Error = "Login failed: " + err.Error()
			status = http.StatusBadGateway
		} else {
			next = "/app/" + strconv.FormatInt(ss.UserID, 10)
			d.Notice = fmt.Sprintf("Logged in as user %d.", ss.UserID)
			a.setNotice(ss.UserID, d.Notice)
		}
	} else {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range r.URL.Query() {
				if !yield(k) {
					return
				}
			}
		})
		a.record("success page", 0, nil)
		d.Notice = "The broker screen finished."
		if len(keys) > 0 {
			d.Notice += " Parameters: " + strings.Join(keys, ", ") + "."
		}
	}
	d.SuccessNext = next
	a.render(w, status, "success.html", d)
}

func (a *app) setNotice(userID int64, notice string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ss := a.sessions[userID]; ss != nil {
		ss.notice = notice
	}
}

func (a *app) userOf(r *http.Request) (UserInfo, bool) {
	id, err := strconv.ParseInt(r.PathValue("userId"), 10, 64)
	if err != nil {
		return UserInfo{}, false
	}
	for _, u := range a.sim.Users() {
		if u.UserID == id {
			return u, true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions[id] != nil {
		return UserInfo{UserID: id, Email: "(not a simulator cTID user)"}, true
	}
	return UserInfo{}, false
}

// accountPage fills the page of one user: its accounts with live balances
// and its session. It takes (and clears) the session's notice.
func (a *app) accountPage(r *http.Request, u UserInfo) pageData {
	d := a.page(r, fmt.Sprintf("User %d", u.UserID))
	d.User = u
	for _, login := range u.Logins {
		if t, err := a.sim.Trader(login); err == nil {
			d.Accounts = append(d.Accounts, t)
		}
	}
	a.mu.Lock()
	if ss := a.sessions[u.UserID]; ss != nil {
		c := *ss
		d.Session = &c
		d.Notice, ss.notice = ss.notice, ""
	}
	a.mu.Unlock()
	return d
}

func (a *app) account(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userOf(r)
	if !ok {
		d := a.page(r, "Unknown user")
		d.Error = "No such user."
		d.Users = a.sim.Users()
		a.render(w, 404, "index.html", d)
		return
	}
	a.render(w, 200, "account.html", a.accountPage(r, u))
}

// open obtains an OT token and opens the cashier screen in the frame.
func (a *app) open(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userOf(r)
	if !ok {
		http.Error(w, "no such user", http.StatusNotFound)
		return
	}
	p := a.readPrefs(r)
	action, loginText, _ := strings.Cut(r.FormValue("op"), ":")
	login, err := strconv.ParseInt(loginText, 10, 64)
	fail := func(status int, msg string) {
		d := a.accountPage(r, u)
		d.Error = msg
		a.render(w, status, "account.html", d)
	}
	if (action != "deposit" && action != "withdraw") || err != nil || !slices.Contains(u.Logins, login) {
		fail(400, "Choose Deposit or Withdraw on one of this user's accounts.")
		return
	}
	tok, err := a.inAppToken(r.Context(), u.UserID, login)
	if err != nil {
		fail(502, "Could not open the cashier: "+err.Error())
		return
	}
	src, err := a.brokerURL("/inapp/"+action, url.Values{"token": {tok}, "account": {strconv.FormatInt(login, 10)},
		"lang": {p.Lang}, "theme": {p.Theme}, "source": {p.Source}})
	if err != nil {
		fail(503, err.Error())
		return
	}
	a.mu.Lock()
	a.lastCashierURL = src
	if ss := a.sessions[u.UserID]; ss != nil {
		ss.LastCashierURL = src
	}
	a.mu.Unlock()
	back := "/app/" + strconv.FormatInt(u.UserID, 10)
	setNext(w, back)
	d := a.page(r, strings.ToUpper(action[:1])+action[1:])
	d.Prefs, d.FrameSrc, d.FrameBack = p, src, back
	a.render(w, 200, "frame.html", d)
}

// restart simulates an app restart: automatic re-login with the stored
// accessToken through the broker's /oauth2/authorize.
func (a *app) restart(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userOf(r)
	if !ok {
		http.Error(w, "no such user", http.StatusNotFound)
		return
	}
	if err := a.relogin(r.Context(), u.UserID); err != nil {
		d := a.accountPage(r, u)
		d.Error = "Automatic re-login failed: " + err.Error()
		a.render(w, 502, "account.html", d)
		return
	}
	a.setNotice(u.UserID, "Restarted: the broker accepted the stored accessToken.")
	http.Redirect(w, r, "/app/"+strconv.FormatInt(u.UserID, 10), http.StatusSeeOther)
}
