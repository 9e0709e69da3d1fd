// Package paging is the keyset paging of API.md's "Lists" for the
// organization services: the limit and cursor query parameters, the opaque
// cursor and the SQL predicate that continues after it.
//
// A page is the rows strictly after the previous page's last key in the
// list's order (a name, then the id), read with LIMIT limit+1: the extra row
// only says whether a next page exists. Because the cursor holds the last
// key and not an offset, a row inserted while a client pages never shifts
// the rows after it, so paging neither repeats nor skips a row that existed
// when paging began, and a page costs an index range scan of limit+1 rows
// whatever the table holds.
package paging

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/cursor"
)

// The bounds of limit (API.md).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// maxQueryLen bounds the q filter; it is compared with names of at most 200
// characters, so anything longer matches nothing anyway.
const maxQueryLen = 200

// Request is one page request: how many rows, after which key, and the
// optional name filter.
type Request struct {
	// Limit is the page size, 1 to MaxLimit.
	Limit int
	// After is the key of the previous page's last row, nil for the first
	// page. Its length is the number of key columns of the list.
	After []string
	// Query is the q filter, trimmed; "" means no filter.
	Query string
	scope string
}

// position is what an opaque cursor (platform/cursor) holds. Scope ties it
// to one list and one filter, so a cursor of another list (or of the same
// list with another q) is refused instead of silently starting somewhere
// meaningless.
type position struct {
	Scope string   `json:"s"`
	Key   []string `json:"k"`
}

// Parse reads limit, cursor and (when withQuery) q from the query string of
// a list whose key has keyLen columns. scope names the list ("locations of
// customer C"); the filter is added to it. Errors name the parameter: a
// limit or cursor that is not even well-formed is Malformed (400), a
// well-formed limit out of range or an overlong q is Invalid (422).
func Parse(v url.Values, scope string, keyLen int, withQuery bool) (Request, error) {
	req := Request{Limit: DefaultLimit}
	if s, ok := v["limit"]; ok {
		if len(s) != 1 {
			return Request{}, apperr.MalformedField("limit", "must be given once")
		}
		n, err := strconv.Atoi(strings.TrimSpace(s[0]))
		if err != nil {
			return Request{}, apperr.MalformedField("limit", "must be an integer")
		}
		if n < 1 || n > MaxLimit {
			return Request{}, apperr.InvalidField("limit", "must be between 1 and %d", MaxLimit)
		}
		req.Limit = n
	}
	if withQuery {
		if s, ok := v["q"]; ok {
			if len(s) != 1 {
				return Request{}, apperr.MalformedField("q", "must be given once")
			}
			q := strings.TrimSpace(s[0])
			if !utf8.ValidString(q) {
				return Request{}, apperr.MalformedField("q", "must be valid UTF-8")
			}
			if utf8.RuneCountInString(q) > maxQueryLen {
				return Request{}, apperr.InvalidField("q", "must be at most %d characters", maxQueryLen)
			}
			req.Query = q
		}
	}
	req.scope = scope + "\x00" + req.Query
	if s, ok := v["cursor"]; ok {
		if len(s) != 1 {
			return Request{}, apperr.MalformedField("cursor", "must be given once")
		}
		if s[0] != "" {
			key, err := decode(s[0], req.scope, keyLen)
			if err != nil {
				return Request{}, err
			}
			req.After = key
		}
	}
	return req, nil
}

func decode(s, scope string, keyLen int) ([]string, error) {
	c, err := cursor.Decode(s, func(c position) bool { return c.Scope == scope && len(c.Key) == keyLen })
	return c.Key, err
}

// Cursor returns the opaque cursor that continues req's list after key.
func (req Request) Cursor(key []string) string {
	return cursor.Encode(position{Scope: req.scope, Key: key})
}

// Fetch is the number of rows to read: one more than the page, so the
// answer tells whether there is a next page without a count.
func (req Request) Fetch() int { return req.Limit + 1 }

// Page is one page of a list. Next is the cursor of the next page, "" on
// the last one.
type Page[T any] struct {
	Items []T
	Next  string
}

// Cut turns rows read with req.Fetch() into the page: at most req.Limit
// items and, when a row was left over, the cursor after the last item
// (key returns a row's key, in the list's order).
func Cut[T any](req Request, rows []T, key func(T) []string) Page[T] {
	if rows == nil {
		rows = []T{}
	}
	if len(rows) <= req.Limit {
		return Page[T]{Items: rows}
	}
	rows = rows[:req.Limit]
	return Page[T]{Items: rows, Next: req.Cursor(key(rows[len(rows)-1]))}
}

// Where returns the keyset predicate "the row's key columns come after
// req.After" and its arguments, or "" and nil on the first page. It is a
// row-value comparison, which both SQLite (3.15+) and PostgreSQL turn into
// a range scan of an index whose trailing columns are cols.
func (req Request) Where(cols ...string) (string, []any) {
	if req.After == nil {
		return "", nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	args := make([]any, len(req.After))
	for i, k := range req.After {
		args[i] = k
	}
	return "(" + strings.Join(cols, ", ") + ") > (" + marks + ")", args
}

// Contains returns the predicate "column contains req.Query, ignoring
// case" and its argument, or "" and nil without a filter. LIKE wildcards in
// the query are escaped, so "50%" finds a literal "50%". SQLite's lower()
// folds ASCII letters only; PostgreSQL's folds every letter.
func (req Request) Contains(column string) (string, []any) {
	if req.Query == "" {
		return "", nil
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "lower(" + column + `) LIKE ? ESCAPE '\'`, []any{"%" + r.Replace(strings.ToLower(req.Query)) + "%"}
}

// Body is the JSON of a page: the items under key and nextCursor, null on
// the last page.
func Body[T any](key string, p Page[T]) map[string]any {
	var next any
	if p.Next != "" {
		next = p.Next
	}
	return map[string]any{key: p.Items, "nextCursor": next}
}
