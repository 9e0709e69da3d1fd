package orgkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// IDListPageSize is the page size of the facts endpoints that answer a
// list of ids (docs/fetch-api.md, "Lists of ids"): large enough that a
// dealer's tens of thousands of locations take a handful of calls, small
// enough that one answer stays well under a megabyte.
const IDListPageSize = 10000

// MaxIDListKeys bounds the ids a request of such an endpoint names.
const MaxIDListKeys = 1000

// DecodeIDListRequest reads {key: [ids…], "cursor": "…"?} of an id-list
// facts endpoint; every id must be a UUID, and so must the cursor (the last
// id of the previous page). Errors name the field.
func DecodeIDListRequest(r *http.Request, key string) (ids []string, cursor string, err error) {
	var body map[string]json.RawMessage
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, "", err
	}
	raw, ok := body[key]
	if !ok {
		return nil, "", apperr.InvalidField(key, "is required")
	}
	if err := json.Unmarshal(raw, &ids); err != nil || ids == nil {
		return nil, "", apperr.MalformedField(key, "must be an array of ids")
	}
	if len(ids) > MaxIDListKeys {
		return nil, "", apperr.InvalidField(key, "must hold at most %d ids", MaxIDListKeys)
	}
	for i, s := range ids {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return nil, "", apperr.MalformedField(fmt.Sprintf("%s[%d]", key, i), "must be a UUID")
		}
		ids[i] = id.String()
	}
	if raw, ok := body["cursor"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &cursor); err != nil {
			return nil, "", apperr.MalformedField("cursor", "must be a string")
		}
		if _, err := uuid.Parse(cursor); err != nil || len(cursor) != 36 {
			return nil, "", apperr.MalformedField("cursor", "must be the nextCursor of the previous page")
		}
	}
	for k := range body {
		if k != key && k != "cursor" {
			return nil, "", apperr.MalformedField(k, "is not a field of this request")
		}
	}
	return ids, cursor, nil
}

// QueryIDPage runs query, whose one column is an id, for one page:
// query must contain the placeholders of the id set (a JSON array; use
// IDSet) and of the cursor, in that order, and end in "ORDER BY <id>" so
// that LIMIT can be appended. It returns the page and the next cursor (""
// on the last page).
func QueryIDPage(ctx context.Context, q sqldb.Querier, d sqldb.Dialect, query string, ids []string, cursor string) ([]string, string, error) {
	rows, err := q.QueryContext(ctx, query+` LIMIT ?`, IDSetArg(d, ids), cursor, IDListPageSize+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := make([]string, 0, 64)
	next := ""
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, "", err
		}
		if len(out) == IDListPageSize {
			next = out[len(out)-1]
			break
		}
		out = append(out, id)
	}
	return out, next, rows.Err()
}

// IDSet is the subquery of the elements of one set parameter (IDSetArg)
// on the dialect: a set of any size is one parameter, not a list of
// placeholders. On PostgreSQL it unnests an array, whose size the planner
// estimates from the value, so a small set is looked up by index.
func IDSet(d sqldb.Dialect) string {
	if d == sqldb.Postgres {
		return `SELECT unnest(CAST(? AS text[]))`
	}
	return `SELECT value FROM json_each(?)`
}

// IDSetArg is the parameter of IDSet: a JSON array on SQLite, an array
// literal on PostgreSQL (JSON's string quoting is also the literal's).
func IDSetArg(d sqldb.Dialect, ids []string) string {
	b, _ := json.Marshal(ids) // a []string always marshals
	if d == sqldb.Postgres {
		return "{" + string(b[1:len(b)-1]) + "}"
	}
	return string(b)
}

// WriteIDPage answers one page of an id list: {key: ids, "nextCursor":
// next or null}.
func WriteIDPage(w http.ResponseWriter, key string, ids []string, next string) {
	var n any
	if next != "" {
		n = next
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{key: ids, "nextCursor": n})
}
