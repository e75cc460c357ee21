// Package openapi holds the OpenAPI 3.1 document of every JSON endpoint of
// the cashier (openapi.yaml: the cTrader-facing endpoints, the client API,
// provider webhooks, the screens' JSON calls and the probes) and serves it
// at /openapi.yaml. Package openapitest validates tests' HTTP exchanges
// against it; docs/api.md is the human-readable guide.
package openapi

import (
	_ "embed"
	"net/http"
)

// Path is where cmd/cashier mounts Handler.
const Path = "/openapi.yaml"

// ContentType is the media type the document is served with.
const ContentType = "application/yaml"

//go:embed openapi.yaml
var document []byte

// Document returns a copy of the OpenAPI document (YAML).
func Document() []byte { return append([]byte(nil), document...) }

// Handler serves the document as application/yaml. It answers every
// request with the document; mount it on "GET /openapi.yaml" (GET also
// serves HEAD).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(document)
	})
}
