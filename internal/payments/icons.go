package payments

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

//go:embed icons/*.svg
var icons embed.FS

// IconNames lists the embedded method icons a methods file may name:
// bank, card, crypto, generic and wallet.
func IconNames() []string {
	entries, _ := fs.ReadDir(icons, "icons")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".svg"))
	}
	slices.Sort(names)
	return names
}

func iconFile(name string) (string, bool) {
	if name == "" || strings.ContainsAny(name, "/.\\") {
		return "", false
	}
	p := "icons/" + name + ".svg"
	if _, err := fs.Stat(icons, p); err != nil {
		return "", false
	}
	return p, true
}

// IconSVG returns the SVG document of the named icon (a method's Icon), to
// be served as image/svg+xml or inlined in a page. It reports false for an
// unknown name.
func IconSVG(name string) ([]byte, bool) {
	p, ok := iconFile(name)
	if !ok {
		return nil, false
	}
	b, err := icons.ReadFile(p)
	return b, err == nil
}
