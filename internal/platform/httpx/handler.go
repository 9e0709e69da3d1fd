package httpx

import "net/http"

// HandlerFunc is a handler that returns its failure instead of writing it:
// nil means it wrote its answer, anything else is written by WriteError,
// the one place a status is chosen. Handlers then read as straight-line
// steps (decode, read the caller, call the use case, write) with
// `return err` at each, and no step can forget to stop after an error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP runs f and writes its error as problem+json.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, r, err)
	}
}
