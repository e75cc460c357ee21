package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/opencashier/cashier/internal/httpx"
	"github.com/opencashier/cashier/internal/web"
)

func TestLanguages(t *testing.T) {
	got := web.Languages()
	for _, want := range []string{"ar", "de", "en", "es"} {
		if !slices.Contains(got, want) {
			t.Errorf("Languages() = %v, lacks %q", got, want)
		}
	}
}

// TestEveryMessageTranslated: each language has exactly the English ids,
// and keeps the English template fields.
func TestEveryMessageTranslated(t *testing.T) {
	load := func(lang string) map[string]string {
		data, err := os.ReadFile("i18n/active." + lang + ".json")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		return m
	}
	en := load("en")
	for _, lang := range []string{"de", "es", "ar"} {
		other := load(lang)
		var missing, extra []string
		for id, msg := range en {
			tr, ok := other[id]
			if !ok {
				missing = append(missing, id)
				continue
			}
			for _, field := range []string{"{{.Minutes}}", "{{.Link}}", "{{.Brand}}"} {
				if strings.Contains(msg, field) && !strings.Contains(tr, field) {
					t.Errorf("%s %s lacks %s", lang, id, field)
				}
			}
		}
		for id := range other {
			if _, ok := en[id]; !ok {
				extra = append(extra, id)
			}
		}
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s: missing %v, extra %v", lang, missing, extra)
		}
	}
}

func TestResolveLang(t *testing.T) {
	tests := []struct {
		name, requested, def, want string
	}{
		{"supported", "de", "en", "de"},
		{"region tag", "es-MX", "en", "es"},
		{"underscore and case", "AR_eg", "en", "ar"},
		{"unsupported falls back to broker default", "ja", "es", "es"},
		{"empty falls back to broker default", "", "de", "de"},
		{"unsupported default falls back to English", "xx", "zz", "en"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := web.ResolveLang(tc.requested, tc.def); got != tc.want {
				t.Errorf("ResolveLang(%q, %q) = %q, want %q", tc.requested, tc.def, got, tc.want)
			}
		})
	}
}

func TestTranslatorData(t *testing.T) {
	got := web.T("de").Get("reset.sent", "Minutes", 30)
	if !strings.Contains(got, "30 Minuten") {
		t.Errorf("German reset.sent = %q", got)
	}
	if got := web.T("de").Get("no.such.message"); got != "no.such.message" {
		t.Errorf("missing message = %q, want its id", got)
	}
}

var testPages = fstest.MapFS{
	"pages/hello.html": {Data: []byte(`{{define "title"}}{{.T "login.title"}}{{end}}{{define "content"}}<p id="x">{{.Data}}</p>{{end}}`)},
}

func render(t *testing.T, r *web.Renderer, p web.Page) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Render(rec, 200, "hello", p)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestRenderLanguagesThemesAndRTL(t *testing.T) {
	r := web.New(web.Options{Brand: "Demo Broker", LegalEntity: "Demo Broker Ltd", DefaultLang: "es"})
	if err := r.AddPages(testPages, "pages/*.html"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lang, theme           string
		wantLang, dir, title  string
		wantTheme, closeLabel string
	}{
		{"en", "dark", "en", "ltr", "Log in", `data-theme="dark"`, "Close"},
		{"de", "light", "de", "ltr", "Anmelden", `data-theme="light"`, "Schließen"},
		{"es", "", "es", "ltr", "Iniciar sesión", "", "Cerrar"},
		{"ar", "dark", "ar", "rtl", "تسجيل الدخول", `data-theme="dark"`, "إغلاق"},
		{"ja", "purple", "es", "ltr", "Iniciar sesión", "", "Cerrar"},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			res, body := render(t, r, web.Page{Lang: tc.lang, Theme: tc.theme, CloseURL: "https://app.example/success", Data: "<hi>"})
			for _, want := range []string{`<html lang="` + tc.wantLang + `" dir="` + tc.dir + `"`, "<h1>" + tc.title + "</h1>",
				`aria-label="` + tc.closeLabel + `"`, `href="https://app.example/success"`, "&lt;hi&gt;", "Demo Broker Ltd"} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			// The theme is on the <html> element (the inline CSS names
			// data-theme too).
			htmlTag := regexp.MustCompile(`<html[^>]*>`).FindString(body)
			if tc.wantTheme == "" && strings.Contains(htmlTag, "data-theme") {
				t.Errorf("theme %q was not ignored: %s", tc.theme, htmlTag)
			} else if !strings.Contains(htmlTag, tc.wantTheme) {
				t.Errorf("%s lacks %q", htmlTag, tc.wantTheme)
			}
			if got := res.Header.Get("Content-Language"); got != tc.wantLang {
				t.Errorf("Content-Language = %q", got)
			}
			for _, banned := range []string{"<script", " style=", "http://", "//cdn"} {
				if strings.Contains(body, banned) {
					t.Errorf("page contains %q, which the CSP or the no-CDN rule forbids", banned)
				}
			}
			if css := inlineStyle(t, body); httpx.HashSource([]byte(css)) != r.StyleSource() {
				t.Errorf("the page's <style> does not hash to StyleSource %s", r.StyleSource())
			}
		})
	}
	_, body := render(t, r, web.Page{Lang: "en"})
	if strings.Contains(body, `class="ctl close"`) {
		t.Error("the X control shows without a CloseURL")
	}
}

// inlineStyle returns the text of the page's only <style> element, which
// must be in its head, and fails the test otherwise.
func inlineStyle(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatchIndex(body, -1)
	if len(m) != 1 || m[0][1] > strings.Index(body, "</head>") {
		t.Fatalf("want one <style> element in the head, found %d:\n%s", len(m), body)
	}
	return body[m[0][2]:m[0][3]]
}

// Pages carry the shared stylesheet inline, exactly as the embedded file,
// so the CSP hash of StyleSource (computed from that file) allows it.
func TestPagesCarryTheStylesheetInline(t *testing.T) {
	r := web.New(web.Options{})
	if err := r.AddPages(testPages, "pages/*.html"); err != nil {
		t.Fatal(err)
	}
	_, body := render(t, r, web.Page{Theme: "dark"})
	want, err := fs.ReadFile(os.DirFS("static"), "app.css")
	if err != nil {
		t.Fatal(err)
	}
	css := inlineStyle(t, body)
	if diff := cmp.Diff(string(want), css); diff != "" {
		t.Errorf("inline style differs from static/app.css (-want +got):\n%s", diff)
	}
	if got, want := r.StyleSource(), httpx.HashSource(want); got != want {
		t.Errorf("StyleSource = %s, want the hash of static/app.css %s", got, want)
	}
	if strings.Contains(body, `rel="stylesheet"`) {
		t.Error("the page still waits for an external stylesheet")
	}
	for _, want := range []string{`[data-theme="dark"]`, "prefers-color-scheme: dark", `[dir="rtl"]`, "margin-inline"} {
		if !strings.Contains(css, want) {
			t.Errorf("stylesheet lacks %q", want)
		}
	}
}

// A screen's own CSS follows the shared stylesheet in the same element,
// and the returned hash allows exactly that element.
func TestAddPagesWithCSS(t *testing.T) {
	r := web.New(web.Options{})
	if err := r.AddPages(testPages, "pages/*.html"); err != nil {
		t.Fatal(err)
	}
	own := fstest.MapFS{"own/styled.html": {Data: []byte(`{{define "title"}}Styled{{end}}{{define "content"}}<p class="big">x</p>{{end}}`)}}
	src, err := r.AddPagesWithCSS(own, "own/*.html", []byte(".big {\r\n  font-size: 2rem;\r\n}\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.Render(rec, 200, "styled", web.Page{})
	css := inlineStyle(t, rec.Body.String())
	base, _ := fs.ReadFile(os.DirFS("static"), "app.css")
	// The browser hashes the parsed text, where "\r\n" is "\n".
	if want := string(base) + "\n.big {\n  font-size: 2rem;\n}\n"; css != want {
		t.Errorf("inline style = %q, want app.css and the page's CSS with \\n line breaks", css)
	}
	if src != httpx.HashSource([]byte(css)) || src == r.StyleSource() {
		t.Errorf("AddPagesWithCSS = %s, want the hash of the page's <style> %s (not the shared one's)", src, httpx.HashSource([]byte(css)))
	}
	// Pages added without CSS keep the shared style and its hash.
	_, body := render(t, r, web.Page{})
	if httpx.HashSource([]byte(inlineStyle(t, body))) != r.StyleSource() {
		t.Error("AddPagesWithCSS changed the style of other pages")
	}
	if _, err := r.AddPagesWithCSS(own, "own/*.html", []byte("p{} </STYLE><script>alert(1)</script>")); err == nil {
		t.Error("CSS that ends the <style> element was accepted")
	}
}

// The static handler still serves the stylesheet, for a page that links it.
func TestStaticHandler(t *testing.T) {
	r := web.New(web.Options{})
	mux := http.NewServeMux()
	mux.Handle("GET /static/", r.StaticHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/static/app.css?v=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	css, _ := io.ReadAll(res.Body)
	want, _ := fs.ReadFile(os.DirFS("static"), "app.css")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET /static/app.css = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if diff := cmp.Diff(string(want), string(css)); diff != "" {
		t.Error("served stylesheet differs from static/app.css")
	}
}

func TestAddPagesErrors(t *testing.T) {
	r := web.New(web.Options{})
	if err := r.AddPages(testPages, "nothing/*.html"); err == nil {
		t.Error("an empty pattern was accepted")
	}
	bad := fstest.MapFS{"p/bad.html": {Data: []byte(`{{define "content"}}{{.Oops`)}}
	if err := r.AddPages(bad, "p/*.html"); err == nil {
		t.Error("a broken template was accepted")
	}
}
