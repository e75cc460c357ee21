package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencashier/cashier/internal/errs"
)

// fuzzTarget is a request shape with the kinds of fields the surfaces
// decode: strings, exact numbers, integers, pointers and nested values.
type fuzzTarget struct {
	Token   *string         `json:"token"`
	Amount  json.Number     `json:"amount"`
	Account int64           `json:"account"`
	UserID  *int64          `json:"userId"`
	Flag    bool            `json:"flag"`
	Tags    []string        `json:"tags"`
	Nested  *fuzzTarget     `json:"nested"`
	Extra   map[string]any  `json:"extra"`
	Raw     json.RawMessage `json:"raw"`
}

// FuzzDecodeBytes feeds arbitrary documents to DecodeBytes: it never
// panics, every failure is errs.Invalid with a message (answered 400), and
// an accepted document holds exactly one JSON value whose numbers stay
// exact.
func FuzzDecodeBytes(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"token":"abc","amount":"12.34","account":1}`, `{"amount":12.345678901234567890}`,
		`{"account":1e3}`, `{"account":"1"}`, `{"token":null}`, `{} {}`, `{"nested":{"nested":{"tags":["a"]}}}`,
		`[`, `"\ud800"`, `{"unknown":1}`, `{"userId":-9223372036854775808}`, `{"userId":9223372036854775808}`,
		"\xef\xbb\xbf{}", `{"extra":{"a":[1,2,{"b":null}]}}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowUnknown bool) {
		var dst fuzzTarget
		err := DecodeBytes(body, &dst, allowUnknown)
		if err != nil {
			if errs.CodeOf(err) != errs.Invalid {
				t.Fatalf("DecodeBytes(%q) error code %s, want Invalid: %v", body, errs.CodeOf(err), err)
			}
			if errs.MessageOf(err) == "" {
				t.Fatalf("DecodeBytes(%q) error without a message", body)
			}
			if StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("DecodeBytes(%q) error maps to %d, want 400", body, StatusOf(err))
			}
			return
		}
		if dst.Amount != "" && !json.Valid([]byte(dst.Amount)) {
			t.Fatalf("DecodeBytes(%q) kept amount %q, which is not a JSON number", body, dst.Amount)
		}
		if !json.Valid(body) {
			t.Fatalf("DecodeBytes accepted %q, which is not one valid JSON document", body)
		}
	})
}

// FuzzDecodeJSON drives DecodeJSON with arbitrary bodies, content types and
// a small size limit: it never panics, and it fails only with a 400 or a 413.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"token":"x"}`), "application/json", false)
	f.Add([]byte(``), "", true)
	f.Add([]byte(`   `), "application/json; charset=utf-8", false)
	f.Add([]byte(`{"token":"`+strings.Repeat("x", 300)+`"}`), "application/problem+json", false)
	f.Add([]byte(`token=x`), "application/x-www-form-urlencoded", false)
	f.Fuzz(func(t *testing.T, body []byte, contentType string, allowEmpty bool) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		var dst fuzzTarget
		err := DecodeJSON(w, r, &dst, DecodeOptions{MaxBytes: 256, AllowEmpty: allowEmpty})
		if err == nil {
			if len(body) > 256 {
				t.Fatalf("accepted a body of %d bytes over a 256-byte limit", len(body))
			}
			return
		}
		switch st := StatusOf(err); st {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("DecodeJSON(%q, %q) failed with status %d: %v", body, contentType, st, err)
		}
	})
}
