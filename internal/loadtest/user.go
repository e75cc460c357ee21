package loadtest

import (
	"context"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/opencashier/cashier/internal/errs"
)

// User is a virtual trader: cashier credentials, cTID user id, one
// trading account, and the tokens cTrader holds for them. Each user sends
// its browser's requests from a loopback address of its own (127.2.x.y),
// as traders do from their own devices; the cashier limits form posts per
// client address.
type User struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	CTID        int64  `json:"ctid"`
	Login       int64  `json:"login"`
	Currency    string `json:"currency"`
	AccessToken string `json:"accessToken,omitempty"`
	// Funded says a card deposit of the user completed: its card is a
	// known destination for card withdrawals.
	Funded bool `json:"funded,omitempty"`

	mu    sync.Mutex
	inapp string
	http  *http.Client
}

// userAddr is the loopback address of the i-th user.
func userAddr(i int) net.IP { return net.IPv4(127, 2, byte(i/250%250), byte(i%250+1)) }

// attach gives the i-th user its browser.
func (u *User) attach(i int) { u.http = newHTTPClient(userAddr(i)) }

func (u *User) inAppToken() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.inapp
}

func (u *User) setTokens(access, inapp string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if access != "" {
		u.AccessToken = access
	}
	u.inapp = inapp
}

// authorizeOut is the answer of /oauth2/onetime/authorize and /oauth2/authorize.
type authorizeOut struct {
	AccessToken string          `json:"accessToken"`
	UserID      json.RawMessage `json:"userId"` // a number (a string is allowed by the spec)
	InAppToken  string          `json:"inappToken"`
}

func (a authorizeOut) userID() int64 {
	var n int64
	if json.Unmarshal(a.UserID, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(a.UserID, &s) == nil {
		if v, err := json.Number(s).Int64(); err == nil {
			return v
		}
	}
	return 0
}

// exchangeCode does what cTrader does with the login token the broker's
// screen sends to the success URL: it exchanges it for the user's id,
// accessToken and inappToken.
func (c *Client) exchangeCode(ctx context.Context, u *User, x exchange, step string) error {
	loc, err := x.location()
	if err != nil || loc.Query().Get("token") == "" {
		return &StepError{Step: step, Code: "no login token in the redirect"}
	}
	var out authorizeOut
	if err := c.ctraderCall(ctx, "authorize", "/oauth2/onetime/authorize", nil, map[string]string{"code": loc.Query().Get("token")}, &out); err != nil {
		return err
	}
	id := out.userID()
	if id == 0 {
		return &StepError{Step: "authorize", Code: "no userId in the answer"}
	}
	u.CTID = id
	u.setTokens(out.AccessToken, out.InAppToken)
	return nil
}

// SignUp signs the user up on the broker's signup screen with a new
// trading account in currency (the cashier opens it on the platform), and
// exchanges the login token as cTrader does. The account's login is found
// afterwards with ResolveLogins.
func (c *Client) SignUp(ctx context.Context, u *User, currency string) error {
	form := url.Values{"email": {u.Email}, "password": {u.Password}, "password_confirm": {u.Password}, "open_account": {"on"},
		"environment": {"demo"}, "currency": {currency}, "remember": {"on"}, "lang": {"en"}, "source": {"Web"}}
	x, err := c.postForm(ctx, u.http, "signup", c.t.CashierURL+"/auth/signup", form, http.StatusSeeOther)
	if err != nil {
		return err
	}
	u.Currency = currency
	return c.exchangeCode(ctx, u, x, "signup")
}

// LogIn gets the user a fresh inappToken: with the accessToken cTrader
// keeps (/oauth2/authorize, as the app does at every launch), or, when
// there is none or the cashier refuses it, by logging in on the broker's
// login screen.
func (c *Client) LogIn(ctx context.Context, u *User) error {
	if u.AccessToken != "" {
		var out authorizeOut
		err := c.ctraderCall(ctx, "authorize", "/oauth2/authorize", nil, map[string]string{"accessToken": u.AccessToken}, &out)
		if err == nil && out.userID() == u.CTID {
			u.setTokens("", out.InAppToken)
			return nil
		}
	}
	form := url.Values{"email": {u.Email}, "password": {u.Password}, "remember": {"on"}, "lang": {"en"}, "source": {"Web"}}
	x, err := c.postForm(ctx, u.http, "login", c.t.CashierURL+"/auth/login", form, http.StatusSeeOther)
	if err != nil {
		return err
	}
	return c.exchangeCode(ctx, u, x, "login")
}

// ResolveLogins sets the trading login of each user without one from the
// simulator's cTID users (GET /_sim/users).
func (c *Client) ResolveLogins(ctx context.Context, users []*User) error {
	var all []struct {
		UserID int64   `json:"userId"`
		Logins []int64 `json:"logins"`
	}
	if err := c.simGet(ctx, "/_sim/users", &all); err != nil {
		return err
	}
	logins := map[int64][]int64{}
	for _, su := range all {
		logins[su.UserID] = su.Logins
	}
	for _, u := range users {
		if u.Login != 0 {
			continue
		}
		ls := logins[u.CTID]
		if len(ls) == 0 {
			return errs.Ef(errs.NotFound, "loadtest.ResolveLogins", "cTID user %d (%s) has no trading account on the simulator", u.CTID, u.Email)
		}
		u.Login = ls[0]
	}
	return nil
}

// LoadUsers reads users saved by SaveUsers; a missing file is no users.
func LoadUsers(path string) ([]*User, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a file the operator names
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Wrap("loadtest.LoadUsers", err)
	}
	var users []*User
	if err := json.Unmarshal(b, &users); err != nil {
		return nil, errs.Wrap("loadtest.LoadUsers "+path, err)
	}
	return users, nil
}

// SaveUsers writes users (with their passwords and accessTokens: keep the
// file private) so that a later run can reuse them.
func SaveUsers(path string, users []*User) error {
	b, err := json.MarshalIndent(users, "", " ")
	if err != nil {
		return errs.Wrap("loadtest.SaveUsers", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return errs.Wrap("loadtest.SaveUsers", err)
	}
	return errs.Wrap("loadtest.SaveUsers", os.Rename(tmp, path))
}

// Test cards of the sandbox provider.
const (
	CardSucceeds = "4242424242424242"
	CardThreeDS  = "4000000000003220"
	CardDeclined = "4000000000000002"
	threeDSCode  = "123456"
)

// DepositSpec is one deposit to drive.
type DepositSpec struct {
	Amount string // in the account's currency, e.g. "20.00"
	Card   string // a sandbox test card (default CardSucceeds)
	// FormID is the confirmation form's idempotency key (default: a new one).
	FormID string
	// Abandon stops after the confirmation, as a trader who closes the
	// provider's page: the deposit waits for its payment until it expires.
	Abandon bool
	// NoWait stops when the browser is back on the cashier's status page,
	// without waiting for the outcome ("submitted").
	NoWait bool
	// WatchPlatform waits for the deposit on the simulator (its count of
	// balance changes of the account, read from the simulator's admin API
	// with a growing interval, see awaitPlatformChange) before asking the
	// cashier's status page, which then answers the outcome at once: the
	// latency is measured without polling the cashier many times per
	// deposit, which a real app (every 3 s) does not do. The user must have
	// no other operation under way.
	WatchPlatform bool
}

var returnLinkRE = regexp.MustCompile(`href="([^"]*/deposit/return\?[^"]*)"`)

// Deposit drives one card deposit as cTrader, the app and the trader's
// browser do: a one-time token, the cashier screen, the confirmation, the
// card on the sandbox's hosted page (and its 3-D Secure code), back to the
// cashier, then the status page's JSON until the outcome. It returns the
// deposit's final status (completed, declined, …) and an error if a step
// failed or ctx ended first.
func (c *Client) Deposit(ctx context.Context, u *User, d DepositSpec) (string, error) {
	if d.Card == "" {
		d.Card = CardSucceeds
	}
	if d.FormID == "" {
		d.FormID = "req_" + uuid.NewString()
	}
	var changes int
	if d.WatchPlatform {
		var err error
		if changes, err = c.platformChanges(ctx, u.Login); err != nil {
			return "", err
		}
	}
	h, err := c.openScreen(ctx, u, "deposit")
	if err != nil {
		return "", err
	}
	x, err := c.postForm(ctx, u.http, "confirm", c.t.CashierURL+"/inapp/deposit/confirm", url.Values{"s": {h}, "method": {"card"},
		"currency": {u.Currency}, "amount": {d.Amount}, "id": {d.FormID}}, http.StatusSeeOther)
	if err != nil {
		return "", err
	}
	checkout, err := x.location()
	if err != nil {
		return "", &StepError{Step: "confirm", Code: "bad redirect", Err: err}
	}
	var ret *url.URL
	if d.Abandon {
		return "abandoned", nil
	}
	if strings.HasSuffix(checkout.Path, "/deposit/status") {
		ret = checkout // no hosted page: straight to the status page
	} else {
		if ret, err = c.payByCard(ctx, u, checkout, d.Card); err != nil {
			return "", err
		}
		x, err = c.do(ctx, u.http, "return", http.MethodGet, ret.String(), nil, "", http.StatusSeeOther)
		if err != nil {
			return "", err
		}
		if ret, err = x.location(); err != nil {
			return "", &StepError{Step: "return", Code: "bad redirect", Err: err}
		}
	}
	t := ret.Query().Get("t")
	if t == "" {
		return "", &StepError{Step: "return", Code: "no status ticket"}
	}
	if d.NoWait {
		return "submitted", nil
	}
	if d.WatchPlatform && d.Card != CardDeclined {
		if err := c.awaitPlatformChange(ctx, u.Login, changes); err != nil {
			return "", err
		}
	}
	return c.status(ctx, u, "/inapp/deposit/status.json", t, func(_ string, final bool) bool { return final })
}

// payByCard fills the sandbox's hosted card page (and the 3-D Secure
// step) and returns where the provider sends the browser back.
func (c *Client) payByCard(ctx context.Context, u *User, checkout *url.URL, card string) (*url.URL, error) {
	x, err := c.postForm(ctx, u.http, "card", checkout.String()+"/card", url.Values{"number": {card}, "expiry": {"12/39"},
		"cvc": {"123"}, "name": {"Load Test"}}, http.StatusSeeOther)
	if err != nil {
		return nil, err
	}
	next, err := x.location()
	if err != nil {
		return nil, &StepError{Step: "card", Code: "bad redirect", Err: err}
	}
	if strings.HasSuffix(next.Path, "/3ds") {
		x, err = c.postForm(ctx, u.http, "3ds", next.String(), url.Values{"code": {threeDSCode}}, http.StatusSeeOther)
		if err != nil {
			return nil, err
		}
		if next, err = x.location(); err != nil {
			return nil, &StepError{Step: "3ds", Code: "bad redirect", Err: err}
		}
	}
	if strings.Contains(next.Path, "/deposit/return") {
		return next, nil
	}
	// Already paid (a step sent again after a restart): the hosted page
	// shows the outcome with the link back.
	x, err = c.do(ctx, u.http, "checkout", http.MethodGet, next.String(), nil, "", http.StatusOK)
	if err != nil {
		return nil, err
	}
	m := returnLinkRE.FindSubmatch(x.body)
	if m == nil {
		return nil, &StepError{Step: "checkout", Code: "no way back to the cashier"}
	}
	back, err := url.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, &StepError{Step: "checkout", Code: "bad return link", Err: err}
	}
	return x.url.ResolveReference(back), nil
}

// WithdrawalSpec is one withdrawal to drive.
type WithdrawalSpec struct {
	Amount string // in the account's currency
	// Method is "card" (a payout to the card of the user's last card
	// deposit, the default) or "bank-transfer". The fraud rules hold a
	// withdrawal to a destination no completed payment of the user used
	// (a new IBAN) for an operator.
	Method string
	IBAN   string // for bank-transfer; default a valid German test IBAN
	FormID string // default: a new one
	// Reviewable, when set, ends the wait at awaiting_approval too.
	Reviewable bool
	// NoWait stops once the cashier has accepted the request and shows its
	// status page, without waiting for the outcome ("submitted").
	NoWait bool
}

// Withdraw drives one withdrawal through the cashier screens: a one-time
// token, the screen, the confirmation, then the status JSON until the
// outcome (completed when paid out). It returns the last status and an
// error if a step failed or ctx ended first.
func (c *Client) Withdraw(ctx context.Context, u *User, w WithdrawalSpec) (string, error) {
	if w.FormID == "" {
		w.FormID = "req_" + uuid.NewString()
	}
	form := url.Values{"method": {"card"}, "amount": {w.Amount}, "id": {w.FormID}}
	if w.Method == "bank-transfer" {
		if w.IBAN == "" {
			w.IBAN = "DE89370400440532013000"
		}
		form.Set("method", w.Method)
		form.Set("holderName", "Load Test")
		form.Set("iban", w.IBAN)
	}
	h, err := c.openScreen(ctx, u, "withdraw")
	if err != nil {
		return "", err
	}
	form.Set("s", h)
	x, err := c.postForm(ctx, u.http, "confirm", c.t.CashierURL+"/inapp/withdraw/confirm", form, http.StatusSeeOther)
	if err != nil {
		return "", err
	}
	t, err := ticketOf(x, "confirm")
	if err != nil {
		return "", err
	}
	if w.NoWait {
		return "submitted", nil
	}
	return c.status(ctx, u, "/inapp/withdraw/status.json", t, func(st string, final bool) bool {
		return final || st == "failed" || st == "rejected" || w.Reviewable && st == "awaiting_approval"
	})
}

// Setup makes users ready to drive, parallel at a time: the first known
// (loaded from a file) get a fresh inappToken (LogIn), the others sign up
// with a trading account in currency. Each user gets its browser, sending
// from its own loopback address by its index. It returns the first error.
func Setup(ctx context.Context, c *Client, users []*User, known int, currency string, parallel int) error {
	for i, u := range users {
		u.attach(i)
	}
	work := make(chan int)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Go(func() {
			for i := range work {
				var err error
				if i < known {
					err = c.LogIn(ctx, users[i])
				} else {
					err = c.SignUp(ctx, users[i], currency)
				}
				if err != nil {
					errc <- errs.Wrap("loadtest.Setup "+users[i].Email, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range users {
		select {
		case work <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// Fund makes one card deposit of amount for every user whose card has not
// paid a deposit yet (parallel at a time) and marks them Funded: the card
// is then a destination the fraud rules know, for card withdrawals. It
// returns the first failure.
func Fund(ctx context.Context, c *Client, users []*User, amount string, parallel int) error {
	var todo []*User
	for _, u := range users {
		if !u.Funded {
			todo = append(todo, u)
		}
	}
	work := make(chan *User)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range max(parallel, 1) {
		wg.Go(func() {
			for u := range work {
				st, err := c.Deposit(ctx, u, DepositSpec{Amount: amount})
				if err == nil && st != "completed" {
					err = &StepError{Step: "outcome", Code: st}
				}
				mu.Lock()
				if err != nil && first == nil {
					first = errs.Wrap("loadtest.Fund "+u.Email, err)
				}
				if err == nil {
					u.Funded = true
				}
				mu.Unlock()
			}
		})
	}
	for _, u := range todo {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- u
	}
	close(work)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Pool hands out users one operation at a time, as a trader does one thing
// at a time in the app: a user is not given out again until it is back.
// Users come round in turn.
type Pool struct{ ch chan *User }

// NewPool returns a pool of users.
func NewPool(users []*User) *Pool {
	p := &Pool{ch: make(chan *User, len(users))}
	for _, u := range users {
		p.ch <- u
	}
	return p
}

// Take waits for a free user; it returns ctx's error if ctx ends first.
func (p *Pool) Take(ctx context.Context) (*User, error) {
	select {
	case u := <-p.ch:
		return u, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put gives a user back.
func (p *Pool) Put(u *User) { p.ch <- u }

// With runs fn with a free user and gives it back afterwards.
func (p *Pool) With(ctx context.Context, fn func(u *User) error) error {
	u, err := p.Take(ctx)
	if err != nil {
		return &StepError{Step: "user", Code: "no free user", Err: err}
	}
	defer p.Put(u)
	return fn(u)
}

// platformChanges returns how many balance changes the simulator holds for
// a trading account.
func (c *Client) platformChanges(ctx context.Context, login int64) (int, error) {
	var t struct {
		Changes int `json:"changes"`
	}
	if err := c.simGet(ctx, "/_sim/traders/"+strconv.FormatInt(login, 10), &t); err != nil {
		return 0, err
	}
	return t.Changes, nil
}

// awaitPlatformChange waits until the simulator holds more than n balance
// changes for the account. It reads after 10 ms, then half as long again
// each time, at most every 200 ms: a deposit that settles in 50 ms is seen
// within about 10 ms of it, a slow one within a fifth of its time, and the
// simulator gets a few reads per deposit (not one every few milliseconds,
// which at saturation would take CPU from the cashier on the same cores).
func (c *Client) awaitPlatformChange(ctx context.Context, login int64, n int) error {
	wait := 10 * time.Millisecond
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &StepError{Step: "settle", Code: "timeout (no change on the platform)", Err: ctx.Err()}
		case <-t.C:
		}
		got, err := c.platformChanges(ctx, login)
		if err != nil {
			return err
		}
		if got > n {
			return nil
		}
		wait = min(wait*3/2, 200*time.Millisecond)
	}
}
