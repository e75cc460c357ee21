// Package errs defines the one error type of OpenCashier: an error with a
// stable machine code. Every HTTP surface maps these codes to its own wire
// format (the cTrader contract, RFC 9457 problem+json, HTML pages), and
// internal errors are logged with context but shown to users generically.
package errs

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class.
type Code string

// The error codes of the house. Surfaces map them to statuses.
const (
	Invalid      Code = "EINVALID"      // the caller's input is wrong
	NotFound     Code = "ENOTFOUND"     // the thing asked for does not exist (for this caller)
	Conflict     Code = "ECONFLICT"     // the request contradicts the current state
	Unauthorized Code = "EUNAUTHORIZED" // no or bad credentials
	Forbidden    Code = "EFORBIDDEN"    // credentials fine, permission missing
	Expired      Code = "EEXPIRED"      // a token or offer has expired
	Insufficient Code = "EINSUFFICIENT" // not enough money or allowance
	RateLimited  Code = "ERATELIMIT"    // too many attempts
	Unavailable  Code = "EUNAVAILABLE"  // a dependency is down; retry later
	Internal     Code = "EINTERNAL"     // a bug or an unexpected failure
)

// Error is an error with a machine code, the operation that failed, a message
// safe to show to the caller, and an optional cause.
type Error struct {
	Code    Code
	Op      string // the operation that failed, e.g. "ledger.Post"
	Message string // safe to show to the caller
	Err     error  // the underlying cause, if any
}

// E builds an *Error with the given code, operation and message.
func E(code Code, op, message string) *Error {
	return &Error{Code: code, Op: op, Message: message}
}

// Ef builds an *Error with a formatted message.
func Ef(code Code, op, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Wrap annotates err with the operation op. It keeps the code and message of
// an *Error inside err; any other error becomes Internal. Wrap(op, nil) is nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: CodeOf(err), Op: op, Err: err}
}

// Error implements error: "op: message: cause".
func (e *Error) Error() string {
	s := e.Op
	add := func(part string) {
		if part == "" {
			return
		}
		if s != "" {
			s += ": "
		}
		s += part
	}
	add(e.Message)
	if e.Err != nil {
		add(e.Err.Error())
	}
	if s == "" {
		s = string(e.Code)
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of the first *Error in err's chain that has one,
// Internal for any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		var ee *Error
		if errors.As(e, &ee) {
			if ee.Code != "" {
				return ee.Code
			}
			e = ee
		}
	}
	return Internal
}

// MessageOf returns the first caller-safe message in err's chain. Errors
// without one (and every Internal error) get a generic message, so internal
// details never reach users.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	if CodeOf(err) == Internal {
		return "An internal error occurred."
	}
	var ee *Error
	for e := err; errors.As(e, &ee); e = ee.Err {
		if ee.Message != "" {
			return ee.Message
		}
	}
	return string(CodeOf(err))
}

// Is reports whether err carries the code c.
func Is(err error, c Code) bool { return CodeOf(err) == c }
