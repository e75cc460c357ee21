package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/opencashier/cashier/internal/errs"
)

//go:embed i18n/*.json
var messageFS embed.FS

// FallbackLang is the language of last resort: every message exists in it.
const FallbackLang = "en"

var (
	bundleMu sync.RWMutex
	bundle   = i18n.NewBundle(language.English)
	langs    []string // supported two-letter codes, sorted
)

func init() {
	if err := LoadMessages(messageFS, "i18n"); err != nil {
		panic(err)
	}
}

// LoadMessages adds the go-i18n message files in dir of fsys (named
// "<anything>.<lang>.json", e.g. "cashier.de.json") to the catalogue, so
// that screens of other packages translate with T. Call it at start-up,
// before serving. It returns an errs.Invalid error for a file that does not
// parse.
func LoadMessages(fsys fs.FS, dir string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return errs.Wrap("web.LoadMessages", err)
	}
	bundleMu.Lock()
	defer bundleMu.Unlock()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return errs.Wrap("web.LoadMessages", err)
		}
		mf, err := bundle.ParseMessageFileBytes(data, e.Name())
		if err != nil {
			return errs.Ef(errs.Invalid, "web.LoadMessages", "message file %s: %v", e.Name(), err)
		}
		base, _ := mf.Tag.Base()
		if code := base.String(); !slices.Contains(langs, code) {
			langs = append(langs, code)
			slices.Sort(langs)
		}
	}
	return nil
}

// Languages returns the two-letter codes of the languages with messages.
func Languages() []string {
	bundleMu.RLock()
	defer bundleMu.RUnlock()
	return slices.Clone(langs)
}

// Supported reports whether lang (a two-letter code) has messages.
func Supported(lang string) bool {
	bundleMu.RLock()
	defer bundleMu.RUnlock()
	return slices.Contains(langs, lang)
}

// ResolveLang picks the language of a screen from the `lang` parameter (ISO
// 639-1, or a tag such as "de-AT" or "pt_BR"): the requested language if
// there are messages for it, otherwise the broker's default, otherwise
// English (spec conformance 6.2.3).
func ResolveLang(requested, brokerDefault string) string {
	for _, l := range []string{requested, brokerDefault} {
		code := strings.ToLower(strings.TrimSpace(l))
		if i := strings.IndexAny(code, "-_"); i > 0 {
			code = code[:i]
		}
		if code != "" && Supported(code) {
			return code
		}
	}
	return FallbackLang
}

// rtlLangs are the right-to-left languages we may serve.
var rtlLangs = []string{"ar", "fa", "he", "ur", "ps", "yi", "dv", "ku", "sd", "ug"}

// Dir returns the writing direction of a language: "rtl" or "ltr".
func Dir(lang string) string {
	if slices.Contains(rtlLangs, lang) {
		return "rtl"
	}
	return "ltr"
}

// Translator translates message ids into one language, falling back to
// English for a message the language lacks.
type Translator struct {
	lang string
	loc  *i18n.Localizer
}

// T returns the translator for lang (resolve it with ResolveLang first).
func T(lang string) Translator {
	bundleMu.RLock()
	defer bundleMu.RUnlock()
	return Translator{lang: lang, loc: i18n.NewLocalizer(bundle, lang, FallbackLang)}
}

// Lang returns the translator's language.
func (t Translator) Lang() string { return t.lang }

// Get returns the message id in the translator's language, with the
// template data given as key/value pairs: Get("reset.sent", "Minutes", 30).
// A message missing in every language comes back as its id, and is logged.
func (t Translator) Get(id string, kv ...any) string {
	var data map[string]any
	if len(kv) > 1 {
		data = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				data[k] = kv[i+1]
			}
		}
	}
	bundleMu.RLock()
	defer bundleMu.RUnlock()
	s, err := t.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil && s == "" {
		slog.Warn("web: message missing", "id", id, "lang", t.lang, "err", err)
		return id
	}
	return s
}
