package jobs

import (
	"errors"
	"time"
)

// retryError asks for the next attempt after a given delay.
type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string {
	if e.err == nil {
		return "retry requested"
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// permanentError ends a job's attempts.
type permanentError struct{ err error }

func (e *permanentError) Error() string {
	if e.err == nil {
		return "permanent failure"
	}
	return e.err.Error()
}

func (e *permanentError) Unwrap() error { return e.err }

// Retry returns an error for a handler to return when it wants the next
// attempt after a specific delay instead of the runner's backoff (for
// example when a provider says "retry after 30 s"). The attempt still counts:
// if it was the last, the job goes dead. A negative delay is taken as zero.
// The stored error text is err's (or "retry requested" for nil).
func Retry(after time.Duration, err error) error {
	return &retryError{after: max(after, 0), err: err}
}

// Permanent returns an error for a handler to return when retrying cannot
// help (a malformed payload, a definite refusal): the job goes dead at once
// whatever attempts remain. The stored error text is err's (or "permanent
// failure" for nil).
func Permanent(err error) error {
	return &permanentError{err: err}
}

// IsPermanent reports whether err was made by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfter returns the delay asked for with Retry, if any.
func retryAfter(err error) (time.Duration, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
