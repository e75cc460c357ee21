package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/openapi"
	"github.com/opencashier/cashier/internal/openapi/openapitest"
)

// notJSON are the mounted route prefixes that serve no JSON API of the
// cashier: HTML screens (the back office too) and their assets, the sandbox provider (a stand-in
// payment provider with its own API), the demo's pages and the metrics.
var notJSON = []string{"/auth/", "/account/", "/backoffice/", "/static/", "/sandbox", "/_demo/", "/metrics"}

// TestOpenAPIDocumentsEveryRoute starts the demo (every part on) and checks
// that each JSON route it mounts is an operation of the OpenAPI document,
// and that the document is served at /openapi.yaml.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	d := startDemo(t, "-log-level", "info", "-log-format", "json")
	resp, body := get(t, d.man.CashierURL+openapi.Path, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != openapi.ContentType || body != string(openapi.Document()) {
		t.Errorf("GET %s = %d %q (%d bytes), want 200 %s with the document", openapi.Path, resp.StatusCode,
			resp.Header.Get("Content-Type"), len(body), openapi.ContentType)
	}

	lines := logLines(d.stderr.String(), "routes mounted")
	if len(lines) != 1 {
		t.Fatalf("want one \"routes mounted\" log line, got %d:\n%s", len(lines), d.stderr)
	}
	var logged struct{ Routes []string }
	if err := json.Unmarshal([]byte(lines[0]), &logged); err != nil || len(logged.Routes) == 0 {
		t.Fatalf("routes not read from %s: %v", lines[0], err)
	}
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{} // "METHOD /path" with {params}
	var paths []string
	for path, item := range doc.Paths.Map() {
		paths = append(paths, path)
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, route := range logged.Routes {
		method, path, ok := strings.Cut(route, " ")
		if !ok {
			method, path = "", route
		}
		if skip(path) {
			continue
		}
		switch {
		case strings.HasSuffix(path, "/"): // a subtree: the document must list operations under it
			found := false
			for _, p := range paths {
				found = found || strings.HasPrefix(p, path)
			}
			if !found {
				t.Errorf("route %q is mounted, but openapi.yaml lists nothing under %s", route, path)
			}
		case method == "": // every method of one path
			if doc.Paths.Value(path) == nil {
				t.Errorf("route %q is mounted, but openapi.yaml has no path %s", route, path)
			}
		case !documented[method+" "+path]:
			t.Errorf("route %q is mounted, but openapi.yaml has no operation %s %s", route, method, path)
		}
	}
	// The screens' JSON calls live in the /inapp/ subtree: fetch the
	// status poll without a ticket and check its answer against the document.
	v := openapitest.New(t, openapitest.Options{})
	c := &http.Client{Transport: v.Transport(nil)}
	res, err := c.Get(d.man.CashierURL + "/inapp/deposit/status.json?t=nope")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got := v.Checked(); len(got) != 1 || got[0] != "depositStatus" {
		t.Errorf("checked %q, want [depositStatus]", got)
	}
}

func skip(path string) bool {
	for _, p := range notJSON {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
