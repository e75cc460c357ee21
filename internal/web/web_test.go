package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

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
			if tc.wantTheme == "" && strings.Contains(body, "data-theme") {
				t.Errorf("theme %q was not ignored", tc.theme)
			} else if !strings.Contains(body, tc.wantTheme) {
				t.Errorf("page lacks %q", tc.wantTheme)
			}
			if got := res.Header.Get("Content-Language"); got != tc.wantLang {
				t.Errorf("Content-Language = %q", got)
			}
			for _, banned := range []string{"<script", " style=", "<style", "http://", "//cdn"} {
				if strings.Contains(body, banned) {
					t.Errorf("page contains %q, which the CSP or the no-CDN rule forbids", banned)
				}
			}
		})
	}
	_, body := render(t, r, web.Page{Lang: "en"})
	if strings.Contains(body, `class="ctl close"`) {
		t.Error("the X control shows without a CloseURL")
	}
}

func TestStaticHandler(t *testing.T) {
	r := web.New(web.Options{})
	if err := r.AddPages(testPages, "pages/*.html"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", r.StaticHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, body := render(t, r, web.Page{})
	i := strings.Index(body, `href="/static/app.css?v=`)
	if i < 0 {
		t.Fatalf("no stylesheet link in %s", body)
	}
	href := body[i+6 : i+6+strings.IndexByte(body[i+6:], '"')]
	res, err := http.Get(srv.URL + href)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	css, _ := io.ReadAll(res.Body)
	want, _ := fs.ReadFile(os.DirFS("static"), "app.css")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET %s = %d %s", href, res.StatusCode, res.Header.Get("Content-Type"))
	}
	if diff := cmp.Diff(string(want), string(css)); diff != "" {
		t.Error("served stylesheet differs from static/app.css")
	}
	for _, want := range []string{`[data-theme="dark"]`, "prefers-color-scheme: dark", `[dir="rtl"]`, "margin-inline"} {
		if !strings.Contains(string(css), want) {
			t.Errorf("stylesheet lacks %q", want)
		}
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
