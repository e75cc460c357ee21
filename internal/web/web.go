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
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/opencashier/cashier/internal/errs"
	"github.com/opencashier/cashier/internal/httpx"
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
	pages     map[string]page
	base      []byte // the shared stylesheet (static/app.css)
	baseStyle style
	staticSub fs.FS
}

// page is a parsed page and the style inlined in its head.
type page struct {
	t     *template.Template
	style style
}

// style is the content of a page's <style> element and the CSP source
// expression that allows it.
type style struct {
	css    template.CSS
	source string
}

// newStyle checks and hashes a page's critical CSS. Line breaks are
// normalised to "\n" as the HTML parser does, so that the hash matches the
// element's text in the browser. It returns an errs.Invalid error for CSS
// that would end the <style> element early.
func newStyle(css []byte) (style, error) {
	norm := bytes.ReplaceAll(css, []byte("\r\n"), []byte("\n"))
	norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
	if bytes.Contains(bytes.ToLower(norm), []byte("</style")) {
		return style{}, errs.E(errs.Invalid, "web.newStyle", "the CSS contains </style")
	}
	return style{css: template.CSS(norm), source: httpx.HashSource(norm)}, nil // #nosec: our own embedded CSS
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
	base, err := newStyle(css)
	if err != nil {
		panic(err) // the embedded stylesheet, checked by the tests
	}
	return &Renderer{opt: opt, pages: map[string]page{}, staticSub: sub, base: css, baseStyle: base}
}

// StyleSource returns the CSP source expression ('sha256-…') that allows
// the <style> element of pages added with AddPages: add it to style-src
// of the responses that carry them.
func (r *Renderer) StyleSource() string { return r.baseStyle.source }

// Brand returns the broker's name.
func (r *Renderer) Brand() string { return r.opt.Brand }

// DefaultLang returns the broker's default language.
func (r *Renderer) DefaultLang() string { return r.opt.DefaultLang }

// Lang resolves a `lang` parameter against the supported languages and the
// broker default.
func (r *Renderer) Lang(requested string) string { return ResolveLang(requested, r.opt.DefaultLang) }

// AddPages parses every file matching pattern in fsys as a page in the
// shared layout, named by its base name without extension ("login.html" is
// page "login"). Each file defines the templates "title" and "content".
// The pages carry the shared stylesheet inline; StyleSource allows it. It
// returns an errs.Invalid error for a pattern that matches nothing or a
// template that does not parse.
func (r *Renderer) AddPages(fsys fs.FS, pattern string) error {
	return r.addPages("web.Renderer.AddPages", fsys, pattern, r.baseStyle)
}

// AddPagesWithCSS is AddPages for pages with CSS of their own: css follows
// the shared stylesheet in the pages' <style> element. It returns the CSP
// source expression ('sha256-…') that allows that element, to add to
// style-src of the responses that carry these pages, and the errors of
// AddPages, or an errs.Invalid error for CSS that contains "</style".
func (r *Renderer) AddPagesWithCSS(fsys fs.FS, pattern string, css []byte) (string, error) {
	const op = "web.Renderer.AddPagesWithCSS"
	all := make([]byte, 0, len(r.base)+1+len(css))
	all = append(append(append(all, r.base...), '\n'), css...)
	st, err := newStyle(all)
	if err != nil {
		return "", errs.Wrap(op, err)
	}
	if err := r.addPages(op, fsys, pattern, st); err != nil {
		return "", err
	}
	return st.source, nil
}

func (r *Renderer) addPages(op string, fsys fs.FS, pattern string, st style) error {
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
		r.pages[name] = page{t: t, style: st}
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
	style    template.CSS
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

// Style is the page's CSS, for its <style> element; the CSP allows exactly
// this content through its hash.
func (p Page) Style() template.CSS { return p.style }

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
	pg, ok := r.pages[name]
	r.mu.RUnlock()
	if !ok {
		slog.Error("web: unknown page", "page", name)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	p.Lang = r.Lang(p.Lang)
	p.Theme = NormalizeTheme(p.Theme)
	p.tr, p.brand, p.legal, p.style, p.template = T(p.Lang), r.opt.Brand, r.opt.LegalEntity, pg.style.css, name
	var buf bytes.Buffer
	if err := pg.t.ExecuteTemplate(&buf, "layout", p); err != nil {
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

// StaticHandler serves the static files (the shared stylesheet, app.css,
// which the pages themselves carry inline); mount it at
// Options.StaticPrefix: mux.Handle("GET /static/", r.StaticHandler()).
// Files are served with a long cache lifetime: link them with a content
// version in the query (?v=…).
func (r *Renderer) StaticHandler() http.Handler {
	fsrv := http.StripPrefix(strings.TrimSuffix(r.opt.StaticPrefix, "/"), http.FileServerFS(r.staticSub))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		fsrv.ServeHTTP(w, req)
	})
}

// StaticPrefix is where StaticHandler expects to be mounted.
func (r *Renderer) StaticPrefix() string { return r.opt.StaticPrefix }
