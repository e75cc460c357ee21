// Package httpx holds the small HTTP helpers every surface shares: strict
// JSON decoding with size limits and exact numbers, JSON and RFC 9457
// problem responses, the mapping from error codes to statuses, and security
// headers. Each surface keeps its own wire format for errors (the cTrader
// contract, seed formats, problem+json); this package supplies the pieces.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/opencashier/cashier/internal/errs"
)

// DefaultMaxBody is the body limit for JSON requests unless a surface says
// otherwise: 64 KiB is far above any legitimate request of this product.
const DefaultMaxBody = 64 << 10

// DecodeOptions tunes DecodeJSON.
type DecodeOptions struct {
	MaxBytes      int64 // 0 means DefaultMaxBody
	AllowUnknown  bool  // accept fields the target does not know
	AllowEmpty    bool  // an empty body decodes to the zero value
	SkipMediaType bool  // do not insist on Content-Type application/json
}

// DecodeJSON decodes the request body into dst strictly: one JSON value, no
// trailing data, numbers kept exact (dst fields of type json.Number receive
// the literal text), unknown fields refused unless allowed, and at most
// MaxBytes bytes. Every failure is an *errs.Error with code errs.Invalid and
// a message that names the problem (and the field, where known); an
// oversized body's error wraps *http.MaxBytesError so surfaces can answer 413.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, opt DecodeOptions) error {
	const op = "httpx.DecodeJSON"
	if !opt.SkipMediaType {
		ct := r.Header.Get("Content-Type")
		if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") && !strings.Contains(strings.ToLower(ct), "+json") {
			return errs.Ef(errs.Invalid, op, "Content-Type must be application/json, not %q", ct)
		}
	}
	limit := opt.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &errs.Error{Code: errs.Invalid, Op: op, Message: fmt.Sprintf("request body is larger than %d bytes", limit), Err: tooLarge}
		}
		return &errs.Error{Code: errs.Invalid, Op: op, Message: "request body could not be read", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if opt.AllowEmpty {
			return nil
		}
		return errs.E(errs.Invalid, op, "request body is empty; a JSON object is required")
	}
	return DecodeBytes(body, dst, opt.AllowUnknown)
}

// DecodeBytes decodes a JSON document with the rules of DecodeJSON. It
// returns an errs.Invalid error describing what is wrong.
func DecodeBytes(body []byte, dst any, allowUnknown bool) error {
	const op = "httpx.DecodeJSON"
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if !allowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		return &errs.Error{Code: errs.Invalid, Op: op, Message: describeJSONError(err), Err: err}
	}
	if dec.More() {
		return errs.E(errs.Invalid, op, "request body has data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.E(errs.Invalid, op, "request body has data after the JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("body must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "a " + goKind
	}
}

// WriteJSON writes v as JSON with the given status. Encoding errors are
// logged, since the status line is already sent.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("httpx.WriteJSON: encode response", "err", err)
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// StatusOf maps an error to an HTTP status: errs codes to their natural
// statuses, and an oversized body to 413.
func StatusOf(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	switch errs.CodeOf(err) {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.Expired:
		return http.StatusGone
	case errs.Insufficient:
		return http.StatusUnprocessableEntity
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Problem is an RFC 9457 problem document with the house's machine code.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code"`
}

// ProblemTypeBase prefixes the type URI of every problem; the docs list them.
const ProblemTypeBase = "https://opencashier.dev/problems/"

// WriteProblem answers err as application/problem+json. Internal errors are
// logged with their full chain and shown with a generic detail.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	status := StatusOf(err)
	code := string(errs.CodeOf(err))
	if status == http.StatusRequestEntityTooLarge {
		code = "ETOOLARGE"
	}
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path)
	}
	p := Problem{
		Type:     ProblemTypeBase + strings.ToLower(strings.TrimPrefix(code, "E")),
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   errs.MessageOf(err),
		Instance: r.URL.Path,
		Code:     code,
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
