package httpx

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
)

// SecurityOptions configures SecurityHeaders.
type SecurityOptions struct {
	// FrameAncestors lists the origins allowed to frame our pages (the
	// cTrader web app and the broker's white-label terminal); empty means
	// 'none'.
	FrameAncestors []string
	// HSTS adds Strict-Transport-Security; turn it on when served over HTTPS.
	HSTS bool
	// InlineStyles are the hash sources ('sha256-…', see HashSource) of the
	// inline <style> elements the pages carry (their critical CSS); each is
	// added to style-src, which allows those exact contents and nothing
	// else inline. Empty: no inline style at all.
	InlineStyles []string
}

// hashSource is a CSP hash source expression.
var hashSource = regexp.MustCompile(`^'sha(256|384|512)-[A-Za-z0-9+/]+={0,2}'$`)

// HashSource returns the CSP source expression ('sha256-…') that allows an
// inline <style> (or <script>) element whose text is exactly content. The
// browser hashes the text after parsing, which turns "\r\n" into "\n": hash
// the content with the line breaks the page will have.
func HashSource(content []byte) string {
	sum := sha256.Sum256(content)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// SecurityHeaders sets the headers every response carries: a strict CSP
// (own origin only, no inline script, inline style only with the hashes of
// opt.InlineStyles, frame-ancestors from configuration), nosniff, no
// referrer, and HSTS when enabled. It never sends X-Frame-Options, which
// would stop cTrader from framing the cashier. It replaces any CSP an outer
// handler set, so a response carries one policy. It panics when an entry of
// opt.InlineStyles is not a hash source (a programming error, found at
// start-up).
func SecurityHeaders(opt SecurityOptions) func(http.Handler) http.Handler {
	ancestors := "'none'"
	if len(opt.FrameAncestors) > 0 {
		ancestors = strings.Join(opt.FrameAncestors, " ")
	}
	styles := "'self'"
	for _, src := range opt.InlineStyles {
		if !hashSource.MatchString(src) {
			panic("httpx.SecurityHeaders: inline style " + src + " is not a CSP hash source")
		}
		if !strings.Contains(styles, src) {
			styles += " " + src
		}
	}
	csp := "default-src 'self'; script-src 'self'; style-src " + styles + "; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self' *; base-uri 'none'; object-src 'none'; frame-ancestors " + ancestors
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if opt.HSTS {
				h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// NoStore marks responses as not cacheable anywhere; every page or API
// answer that shows money or tokens goes through it.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// ClientIP returns the caller's address without the port. Behind a proxy,
// the server assembly is responsible for rewriting RemoteAddr from trusted
// proxy headers before handlers run.
func ClientIP(r *http.Request) string {
	addr := r.RemoteAddr
	if i := strings.LastIndexByte(addr, ':'); i > 0 && !strings.HasSuffix(addr, "]") {
		addr = addr[:i]
	}
	return strings.Trim(addr, "[]")
}
