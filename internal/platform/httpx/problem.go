// Package httpx holds what every RealGuardIO HTTP service shares: the one
// mapping from application errors to HTTP statuses and problem+json bodies,
// strict JSON decoding, the operational endpoints (/healthz, /readyz,
// /metrics), middleware, and a server runner with graceful shutdown.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Problem is an RFC 9457 problem details body. Reason is RealGuardIO's
// extension for authorization denials; Field names the offending input.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason,omitempty"`
	Field  string `json:"field,omitempty"`
}

// ProblemContentType is the media type of problem bodies.
const ProblemContentType = "application/problem+json"

// problemTypeBase prefixes the type URI of every problem; the fragment names
// the code so clients can switch on it without parsing titles.
const problemTypeBase = "https://realguardio.dev/problems/"

// StatusOf maps an application error code to its HTTP status. This is the
// only place in the code base where that choice is made.
func StatusOf(code apperr.Code) int {
	switch code {
	case apperr.Malformed:
		return http.StatusBadRequest
	case apperr.Invalid:
		return http.StatusUnprocessableEntity
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.TooManyRequests:
		return http.StatusTooManyRequests
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

// ProblemOf builds the problem body for err. Internal errors get a generic
// detail: their cause is for the logs, never for the client. A database
// outage that reached here as a plain error (or an Internal one) is a 503
// Unavailable (sqldb.Unavailable): the request changed nothing and may be
// retried.
func ProblemOf(err error) Problem {
	e := apperr.As(sqldb.Unavailable(err))
	if e == nil {
		e = &apperr.Error{Code: apperr.Internal}
	}
	status := StatusOf(e.Code)
	p := Problem{
		Type:   problemTypeBase + string(e.Code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: e.Message,
		Reason: e.Reason,
		Field:  e.Field,
	}
	if e.Code == apperr.Internal || e.Code == "" {
		p.Code500()
	}
	return p
}

// Code500 replaces the detail with a generic one so no internal text leaks.
func (p *Problem) Code500() {
	p.Type = problemTypeBase + string(apperr.Internal)
	p.Status = http.StatusInternalServerError
	p.Title = http.StatusText(http.StatusInternalServerError)
	p.Detail = "an internal error occurred; it has been logged"
	p.Reason, p.Field = "", ""
}

// WriteError writes err as problem+json with the status of its code. Server
// side failures (5xx) are logged with their cause; client errors at debug.
// Unauthenticated errors get the RFC 6750 WWW-Authenticate challenge.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemOf(err)
	logger := LoggerFrom(r.Context())
	if p.Status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", "status", p.Status, "err", err)
	} else {
		logger.DebugContext(r.Context(), "request refused", "status", p.Status, "err", err)
	}
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+bearerSafe(p.Detail)+`"`)
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// bearerSafe strips characters that may not appear inside an RFC 6750
// quoted-string, so a detail can never break the header.
func bearerSafe(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			continue
		}
		out = append(out, r)
	}
	return string(out)
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

type loggerKey struct{}

// WithLogger returns a context carrying logger for WriteError and handlers.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// LoggerFrom returns the request's logger, or slog.Default().
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// IsClientGone reports whether err only says the client went away, which is
// not worth an error log.
func IsClientGone(err error) bool {
	return errors.Is(err, context.Canceled)
}
