package openapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencashier/cashier/internal/openapi"
)

func TestHandlerServesTheDocument(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + openapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != openapi.ContentType {
		t.Errorf("Content-Type %q, want %q", ct, openapi.ContentType)
	}
	if !bytes.HasPrefix(body, []byte("openapi: 3.1.")) {
		t.Errorf("body does not start with the OpenAPI 3.1 version line: %.40q", body)
	}
	if !bytes.Equal(body, openapi.Document()) {
		t.Error("served body differs from Document()")
	}
}

func TestDocumentReturnsACopy(t *testing.T) {
	d := openapi.Document()
	d[0] = 'X'
	if openapi.Document()[0] == 'X' {
		t.Error("changing Document()'s result changed the embedded document")
	}
}
