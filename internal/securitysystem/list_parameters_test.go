package securitysystem_test

import (
	"context"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestListParameters checks the validation of the list's parameters, each
// error naming its parameter, and that a caller who may view nothing gets
// an empty page without a query.
func TestListParameters(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
	svc := app.NewService(store.New(db, authztest.DiscardEvents{}), replicate.New(db), nil, nil)
	caller := &auth.Caller{Subject: "00000000-0000-0000-0000-000000000001"}
	for _, c := range []struct {
		q     app.ListQuery
		field string
	}{
		{app.ListQuery{Limit: -1}, "limit"},
		{app.ListQuery{Limit: 501}, "limit"},
		{app.ListQuery{LocationID: "x"}, "locationId"},
		{app.ListQuery{CustomerID: "00000000-0000-0000-0000-00000000000"}, "customerId"},
		{app.ListQuery{State: "armed"}, "state"},
		{app.ListQuery{Q: strings.Repeat("x", 201)}, "q"},
		{app.ListQuery{Cursor: "!!"}, "cursor"},
		{app.ListQuery{Cursor: "e30"}, "cursor"}, // {} decodes but names no row
	} {
		_, err := svc.List(context.Background(), caller, c.q)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error naming %s", c.q, err, c.field)
		}
	}
	page, err := svc.List(context.Background(), caller, app.ListQuery{Limit: 500})
	if err != nil || len(page.Systems) != 0 || page.NextCursor != "" {
		t.Errorf("nobody's list: %+v, %v", page, err)
	}
	_ = sqldb.SQLite
}
