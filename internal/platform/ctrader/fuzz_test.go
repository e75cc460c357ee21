package ctrader

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseAPIError feeds arbitrary error answers to the lenient parser: it
// keeps the status, never panics, and turns a body that is not a JSON object
// into a one-line excerpt of at most 200 characters plus an ellipsis.
func FuzzParseAPIError(f *testing.F) {
	f.Add(404, []byte(`{"errorCode":"TRADER_NOT_FOUND","description":"no"}`))
	f.Add(400, []byte(`{"error":"Bad Request","message":"m","code":"C"}`))
	f.Add(502, []byte("<html>Bad Gateway</html>"))
	f.Add(400, []byte(`{"errorCode":5,"description":["x"]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseAPIError(status, body)
		if e.Status != status {
			t.Fatalf("status %d became %d", status, e.Status)
		}
		var obj map[string]any
		if json.Unmarshal(body, &obj) != nil && (utf8.RuneCountInString(e.Message) > 201 || e.Code != "") {
			t.Fatalf("non-object body gave code %q and a message of %d characters", e.Code, utf8.RuneCountInString(e.Message))
		}
		_ = e.Error()
	})
}
