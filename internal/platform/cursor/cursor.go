// Package cursor is the one codec of the opaque keyset cursors of API.md's
// "Lists": a cursor is the JSON of the previous page's last key in
// unpadded base64url, so it travels in a query string or a JSON body as it
// is. Each list keeps its own key type (the columns it orders by) and says
// which keys are valid; this package only turns them into strings and
// back, so every list refuses a foreign or tampered cursor the same way: a
// Malformed cursor parameter (400). It has no transport dependency; the use
// cases call it.
package cursor

import (
	"encoding/base64"
	"encoding/json"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// MaxLen bounds a cursor before it is decoded: a key holds a few names and
// an id, so anything longer is not one of ours and is refused unread.
const MaxLen = 4096

// Encode returns the opaque cursor holding key. key must marshal to JSON
// (the key types are structs of strings and numbers, which always do).
func Encode(key any) string {
	raw, err := json.Marshal(key)
	if err != nil {
		// A key type that cannot marshal is a programming error the
		// list's tests catch on their first page.
		panic("cursor: the key does not marshal: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Decode reads a cursor made by Encode into a K. valid says whether the
// decoded key names a row of the list (nil accepts any key that decodes):
// "e30" is "{}", well-formed base64 and JSON, yet no list's key. Anything
// else than a valid key is Malformed.
func Decode[K any](s string, valid func(K) bool) (K, error) {
	var key K
	if len(s) > MaxLen {
		return key, Malformed()
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return key, Malformed()
	}
	if err := json.Unmarshal(raw, &key); err != nil {
		var zero K
		return zero, Malformed()
	}
	if valid != nil && !valid(key) {
		var zero K
		return zero, Malformed()
	}
	return key, nil
}

// Malformed is the error of a cursor parameter that is not a cursor of the
// list asked for: one the client made up, changed, or took from another
// list or from the same list with other filters.
func Malformed() *apperr.Error {
	return apperr.MalformedField("cursor", "is not a cursor of this list (use the nextCursor of the previous page, with the same filters)")
}
