package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// MaxBodyBytes bounds every JSON request body; nothing RealGuardIO accepts
// comes close, so a larger body is refused before it is read.
const MaxBodyBytes = 1 << 20

// DecodeJSON reads the request body into dst strictly: the content type must
// be JSON, unknown fields and trailing data are refused, and every failure
// is an apperr naming what is wrong.
func DecodeJSON(r *http.Request, dst any) error { return DecodeJSONMax(r, dst, MaxBodyBytes) }

// DecodeJSONMax is DecodeJSON with another bound on the body, for the few
// endpoints whose input is legitimately larger than MaxBodyBytes (the bulk
// imports of API.md, up to 10 000 items).
func DecodeJSONMax(r *http.Request, dst any, maxBytes int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apperr.New(apperr.Malformed, "Content-Type must be application/json")
		}
	}
	body := http.MaxBytesReader(nil, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Malformed, "request body must hold a single JSON value")
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Malformed, "request body is empty; a JSON object is required")
	case errors.As(err, &syntax):
		return apperr.New(apperr.Malformed, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Malformed, "request body is truncated JSON")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return apperr.MalformedField(field, "must be a JSON %s", jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &maxErr):
		return apperr.New(apperr.TooLarge, "request body exceeds %d bytes", maxBytes)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.MalformedField(name, "unknown field")
	default:
		return apperr.Wrap(err, apperr.Malformed, "request body could not be read")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// PathUUID returns the path value name parsed as a UUID, or a Malformed
// error naming it. A path id that is not a UUID cannot name anything.
func PathUUID(r *http.Request, name string) (uuid.UUID, error) {
	s := r.PathValue(name)
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, apperr.MalformedField(name, "must be a UUID, got %q", truncate(s, 64))
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// MethodNotAllowed is a handler helper for routes that exist but do not
// accept the request's method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, apperr.New(apperr.Malformed, "method %s is not allowed here", r.Method))
}
