// Package apperr defines the one application error type of RealGuardIO.
//
// Every service reports failures as an *Error carrying one code of a closed
// set. The HTTP layer (package httpx) maps each code to a status in exactly
// one place, so a status is never chosen ad hoc inside a handler. The
// message of an *Error is safe to show to a client; the wrapped cause is for
// logs only and is never rendered.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error. The set is closed: add a code here and in the
// HTTP mapping of package httpx, never elsewhere.
type Code string

// The codes every service may use.
const (
	// Malformed means the request could not be parsed (bad JSON, wrong
	// types, an id that is not a UUID in the path).
	Malformed Code = "malformed"
	// Invalid means the request was well-formed but a value is not
	// acceptable; Field names it.
	Invalid Code = "invalid"
	// Unauthenticated means no valid credentials were presented.
	Unauthenticated Code = "unauthenticated"
	// Forbidden means the caller is known but not allowed; Reason says why.
	Forbidden Code = "forbidden"
	// NotFound means the resource does not exist (or belongs to another
	// organization and must not be revealed).
	NotFound Code = "not_found"
	// Conflict means the request collides with existing state.
	Conflict Code = "conflict"
	// TooManyRequests means the caller is being rate limited.
	TooManyRequests Code = "too_many_requests"
	// Unavailable means a dependency needed to answer is down or slow;
	// nothing was changed.
	Unavailable Code = "unavailable"
	// TooLarge means the request body exceeds the accepted size.
	TooLarge Code = "too_large"
	// Internal means a bug or an unexpected failure; details are logged only.
	Internal Code = "internal"
)

// Error is the application error. Message is shown to the client; Cause is
// logged but never shown.
type Error struct {
	Code    Code
	Message string
	// Field names the offending input for Invalid and Malformed errors.
	Field string
	// Reason is a machine-readable denial reason for Forbidden errors
	// (for example "no_role" or "outside_schedule").
	Reason string
	// Cause is the underlying error, for logs.
	Cause error
}

// Error implements the error interface. It includes the cause so that logs
// built from err.Error() keep it; clients only ever see Message.
func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause so errors.Is and errors.As see through an *Error.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an *Error with the given code and client-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and message that keeps cause
// for the logs.
func Wrap(cause error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// InvalidField reports that the value of field is not acceptable.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// MalformedField reports that field could not be parsed.
func MalformedField(field, format string, args ...any) *Error {
	return &Error{Code: Malformed, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Denied reports an authorization denial with a machine-readable reason.
func Denied(reason, format string, args ...any) *Error {
	return &Error{Code: Forbidden, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: the code of the first *Error in its chain,
// or Internal for any other non-nil error. It returns "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
