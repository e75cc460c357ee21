package httpx

import (
	"net/http"
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
}

// SecurityHeaders sets the headers every response carries: a strict CSP
// (own origin only, no inline script, frame-ancestors from configuration),
// nosniff, no referrer, and HSTS when enabled. It never sends
// X-Frame-Options, which would stop cTrader from framing the cashier.
func SecurityHeaders(opt SecurityOptions) func(http.Handler) http.Handler {
	ancestors := "'none'"
	if len(opt.FrameAncestors) > 0 {
		ancestors = strings.Join(opt.FrameAncestors, " ")
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
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
