// Package web is the shared look of every server-rendered screen: one base
// layout, one stylesheet with light and dark themes and right-to-left
// support, translations (go-i18n message files, embedded), and a Back/X
// control. Pages are mobile first, need no JavaScript and load nothing from
// other origins, so they work under the house CSP (script-src 'self') and
// inside cTrader's iframe or WebView.
//
// A screen package embeds its page templates, each defining "title" and
// "content", and registers them with Renderer.AddPages; it renders them with
// Renderer.Render and a Page. Messages of other packages are added with
// LoadMessages.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
)

//go:embed templates/*.html
var layoutFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures a Renderer.
type Options struct {
	// Brand is the broker's name shown in the header.
	Brand string
	// LegalEntity is shown in the footer (the spec asks for the correct
	// legal entity on every screen).
	LegalEntity string
	// DefaultLang is the broker's default language (ISO 639-1); an
	// unsupported `lang` parameter falls back to it.
	DefaultLang string
	// StaticPrefix is where StaticHandler is mounted; default "/static/".
	StaticPrefix string
}

// Renderer renders pages in the shared layout. It is safe for concurrent
// use once its pages are added.
type Renderer struct {
	opt       Options
	mu        sync.RWMutex
	pages     map[string]*template.Template
	cssURL    string
	staticSub fs.FS
}

// New returns a renderer with no pages yet.
func New(opt Options) *Renderer {
	if opt.StaticPrefix == "" {
		opt.StaticPrefix = "/static/"
	}
	if !strings.HasSuffix(opt.StaticPrefix, "/") {
		opt.StaticPrefix += "/"
	}
	if opt.DefaultLang == "" || !Supported(opt.DefaultLang) {
		opt.DefaultLang = FallbackLang
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	css, err := fs.ReadFile(sub, "app.css")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(css)
	return &Renderer{opt: opt, pages: map[string]*template.Template{}, staticSub: sub,
		cssURL: opt.StaticPrefix + "app.css?v=" + hex.EncodeToString(sum[:6])}
}

// Brand returns the broker's name.
func (r *Renderer) Brand() string { return r.opt.Brand }

// DefaultLang returns the broker's default language.
func (r *Renderer) DefaultLang() string { return r.opt.DefaultLang }

// Lang resolves a `lang` parameter against the supported languages and the
// broker default.
func (r *Renderer) Lang(requested string) string { return ResolveLang(requested, r.opt.DefaultLang) }

// AddPages parses every file matching pattern in fsys as a page in the
// shared layout, named by its base name without extension ("login.html" is
// page "login"). Each file defines the templates "title" and "content". It
// returns an errs.Invalid error for a template that does not parse.
func (r *Renderer) AddPages(fsys fs.FS, pattern string) error {
	const op = "web.Renderer.AddPages"
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if len(files) == 0 {
		return errs.Ef(errs.Invalid, op, "no page matches %q", pattern)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range files {
		t, err := template.New("layout.html").ParseFS(layoutFS, "templates/layout.html")
		if err != nil {
			return errs.Wrap(op, err)
		}
		if _, err := t.ParseFS(fsys, f); err != nil {
			return errs.Ef(errs.Invalid, op, "page %s: %v", f, err)
		}
		name := strings.TrimSuffix(path.Base(f), path.Ext(f))
		r.pages[name] = t
	}
	return nil
}

// Page is what the layout and a page template see. The handler fills Lang
// (resolved), Theme and the links; Data is the page's own data.
type Page struct {
	Lang  string // resolved language, e.g. "ar"
	Theme string // "light", "dark" or "" (follow the device)
	// CloseURL is where the X control goes (the success URL for screens
	// cTrader opens); empty hides it.
	CloseURL string
	// BackURL is where the Back control goes; empty hides it.
	BackURL string
	// Error and Notice are messages for the user, already translated.
	Error  string
	Notice string
	Data   any

	tr       Translator
	brand    string
	legal    string
	cssURL   string
	template string
}

// T translates a message id into the page's language; for templates:
// {{.T "login.title"}} or {{.T "reset.sent" "Minutes" 30}}.
func (p Page) T(id string, kv ...any) string { return p.tr.Get(id, kv...) }

// Dir is the writing direction of the page's language, "rtl" or "ltr".
func (p Page) Dir() string { return Dir(p.Lang) }

// Brand is the broker's name.
func (p Page) Brand() string { return p.brand }

// LegalEntity is the broker's legal entity for the footer.
func (p Page) LegalEntity() string { return p.legal }

// CSS is the URL of the stylesheet (with a content hash for caching).
func (p Page) CSS() string { return p.cssURL }

// Template is the name of the page being rendered.
func (p Page) Template() string { return p.template }

// NormalizeTheme returns "light" or "dark", or "" for anything else (the
// page then follows the device's setting).
func NormalizeTheme(theme string) string {
	switch t := strings.ToLower(strings.TrimSpace(theme)); t {
	case "light", "dark":
		return t
	}
	return ""
}

// Render writes the page with the given status. The page's language is
// resolved if it is not supported; an unknown page or a failing template is
// logged and answered with a plain 500.
func (r *Renderer) Render(w http.ResponseWriter, status int, name string, p Page) {
	r.mu.RLock()
	t, ok := r.pages[name]
	r.mu.RUnlock()
	if !ok {
		slog.Error("web: unknown page", "page", name)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	p.Lang = r.Lang(p.Lang)
	p.Theme = NormalizeTheme(p.Theme)
	p.tr, p.brand, p.legal, p.cssURL, p.template = T(p.Lang), r.opt.Brand, r.opt.LegalEntity, r.cssURL, name
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		slog.Error("web: render page", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", p.Lang)
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// StaticHandler serves the stylesheet and other static files; mount it at
// Options.StaticPrefix: mux.Handle("GET /static/", r.StaticHandler()).
// Files are served with a long cache lifetime, since their URLs carry a
// content hash.
func (r *Renderer) StaticHandler() http.Handler {
	fsrv := http.StripPrefix(strings.TrimSuffix(r.opt.StaticPrefix, "/"), http.FileServerFS(r.staticSub))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		fsrv.ServeHTTP(w, req)
	})
}

// StaticPrefix is where StaticHandler expects to be mounted.
func (r *Renderer) StaticPrefix() string { return r.opt.StaticPrefix }
