package cashierpages

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/opencashier/cashier/internal/payments"
)

//go:embed static/*
var staticFS embed.FS

// cashierCSS is the screens' own CSS, which their pages carry inline after
// the shared stylesheet (see New).
//
//go:embed style/cashier.css
var cashierCSS []byte

// assets are the screens' own static files (the script), served from our
// origin with a content hash in the URL.
type assets struct {
	prefix string
	files  map[string][]byte
	hashes map[string]string
}

func newAssets(prefix string) assets {
	a := assets{prefix: prefix, files: map[string][]byte{}, hashes: map[string]string{}}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(staticFS, "static/"+e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		a.files[e.Name()] = b
		a.hashes[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return a
}

// url returns the versioned URL of a file.
func (a assets) url(name string) string {
	return a.prefix + name + "?v=" + a.hashes[name]
}

func (a assets) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.URL.Path)
		b, ok := a.files[name]
		if !ok || !strings.HasPrefix(r.URL.Path, a.prefix) {
			http.NotFound(w, r)
			return
		}
		switch path.Ext(name) {
		case ".js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		case ".css":
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(b)
	})
}

// icon returns a method's icon as inline SVG (it follows the text colour,
// so it suits both themes).
func icon(name string) template.HTML {
	b, ok := payments.IconSVG(name)
	if !ok {
		b, _ = payments.IconSVG("generic")
	}
	return template.HTML(b) // #nosec: our own embedded SVG files
}
