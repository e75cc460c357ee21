package securitytest

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// targetRe finds the places a page sends the browser: links, forms,
// resources and the refresh of a <meta> tag.
var targetRe = regexp.MustCompile(`(?i)(?:href|src|action|formaction)\s*=\s*"([^"]*)"|content="\d+;\s*url=([^"]*)"`)

// offOrigin returns the targets of a reply (Location and the page's
// links) that lead off the cashier's origin and the configured success
// URL, read the way a browser reads them (tabs and newlines dropped,
// backslashes as slashes).
func (s *system) offOrigin(r reply) []string {
	own, _ := url.Parse(s.url)
	allowed := map[string]bool{own.Host: true, "app.example": true}
	targets := []string{r.location()}
	for _, m := range targetRe.FindAllStringSubmatch(r.body, -1) {
		targets = append(targets, html.UnescapeString(m[1]+m[2]))
	}
	var bad []string
	for _, t := range targets {
		b := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(strings.TrimSpace(t))
		if b == "" || strings.HasPrefix(b, "mailto:") || strings.HasPrefix(b, "#") {
			continue
		}
		u, err := url.Parse(b)
		if err != nil {
			bad = append(bad, t)
			continue
		}
		if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
			bad = append(bad, t) // javascript:, data: and the like
			continue
		}
		if u.Opaque != "" || (u.Host != "" && !allowed[u.Host]) {
			bad = append(bad, t)
		}
	}
	return bad
}

// evil are targets off the cashier's origin, in the spellings browsers
// accept.
var evil = []string{
	"https://evil.example/", "//evil.example", "/\\evil.example", "/\t/evil.example", "\\\\evil.example",
	"javascript:alert(1)", "https:evil.example", " //evil.example", "/%2F%2Fevil.example", "data:text/html,hi",
}

// No parameter — lang, theme, source, the help page's back link, return,
// next or redirect parameters, the login's parameters — makes a screen
// redirect or link off the cashier's origin and the configured success URL.
func TestNoOpenRedirects(t *testing.T) {
	s := newSystem(t)
	for _, e := range evil {
		ee := url.QueryEscape(e)
		extra := "&lang=" + ee + "&theme=" + ee + "&source=" + ee + "&return=" + ee + "&next=" + ee + "&redirect=" + ee + "&back=" + ee
		h, first := s.open("deposit", s.alice, simAliceUSD, extra)
		hs := url.QueryEscape(h)
		replies := map[string]reply{
			"deposit entry":  first,
			"deposit page":   s.get("/inapp/deposit?s=" + hs + extra),
			"help":           s.get("/inapp/help?s=" + hs + extra),
			"deposit return": s.get("/inapp/deposit/return?s=" + hs + "&id=" + ee + extra),
			"deposit status": s.get("/inapp/deposit/status?t=" + ee + extra),
			"token error":    s.get("/inapp/withdraw?token=x" + extra),
			"login page":     s.get("/auth/login?x=1" + extra),
			"login": s.postForm("/auth/login", url.Values{"email": {"alice@example.com"}, "password": {password}, "lang": {e},
				"theme": {e}, "source": {e}, "return": {e}, "next": {e}, "redirect_uri": {e}}),
			"reset": s.postForm("/auth/reset", url.Values{"email": {"bob@example.com"}, "lang": {e}, "source": {e}}),
		}
		for name, r := range replies {
			if bad := s.offOrigin(r); len(bad) > 0 {
				t.Errorf("%s with %q leads off the origin to %q", name, e, bad)
			}
		}
		if login := replies["login"]; login.status != http.StatusSeeOther || !strings.HasPrefix(login.location(), successURL+"?") {
			t.Errorf("login with %q redirected %d to %q, want the success URL", e, login.status, login.location())
		}
		s.clk.Advance(1 << 40) // refill the form limits
	}
	// The reset mails link to the cashier's own origin.
	for _, m := range s.box.Messages() {
		for _, l := range regexp.MustCompile(`https?://\S+`).FindAllString(m.Mail.Text, -1) {
			if !strings.HasPrefix(l, s.url+"/") {
				t.Errorf("reset mail links to %q", l)
			}
		}
	}
}

// The checker itself sees each spelling of an off-origin target.
func TestOffOriginFindsEveryTarget(t *testing.T) {
	s := &system{url: "http://127.0.0.1:1"}
	for _, e := range evil {
		if e == "/%2F%2Fevil.example" {
			continue // a path on our origin
		}
		r := reply{body: `<a href="` + html.EscapeString(e) + `">x</a>`, header: http.Header{}}
		if bad := s.offOrigin(r); len(bad) != 1 {
			t.Errorf("offOrigin(%q) = %q, want it found", e, bad)
		}
	}
	if bad := s.offOrigin(reply{body: `<a href="/inapp/help">x</a><a href="http://127.0.0.1:1/x">y</a>`, header: http.Header{"Location": {successURL + "?token=x"}}}); len(bad) != 0 {
		t.Errorf("own targets reported: %q", bad)
	}
}
