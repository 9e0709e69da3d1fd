package iam

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// Rotation on command: a key added to the database by the operator's
// command is published by the IAM before it signs.
func TestRotateSigningKeysOnCommand(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.OpenSQLite(t)
	svc, err := New(ctx, Config{Issuer: "http://localhost:9000", AdminPassword: "admin-password-1"}, Deps{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	before, err := svc.keys.current()
	if err != nil {
		t.Fatal(err)
	}
	id, activates, err := RotateSigningKeys(ctx, db, 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id == before.id || time.Until(activates) < 9*time.Minute {
		t.Fatalf("new key %s activates at %v; old key %s", id, activates, before.id)
	}
	// The running service reloads its keys at its maintenance tick.
	if err := svc.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{}
	for _, k := range jwks.Keys {
		published[k.Kid] = true
	}
	if !published[id] || !published[before.id] {
		t.Fatalf("JWKS %v should list the new key %s and the signing one %s", published, id, before.id)
	}
	if cur, _ := svc.keys.current(); cur.id != before.id {
		t.Fatalf("the new key signs before its publish-ahead time")
	}
	if _, _, err := RotateSigningKeys(ctx, db, -time.Second, nil); err == nil {
		t.Fatal("a negative publish-ahead time was accepted")
	}
}
