package iam

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

func storedSecrets(t *testing.T, db *sqldb.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT name, value FROM iam_secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		out[n] = v
	}
	return out
}

// TestSecretsSealed: the CSRF, device-cookie and refresh-rotation secrets
// are stored sealed under the key-encryption key; plaintext rows of an
// earlier version are sealed at the first start with a KEK and keep their
// values (device cookies and pending logins stay valid); a KEK rotation
// reseals them, also through rotate-keys; a copied database does not open
// them, and a sealed value moved to another name does not decrypt.
func TestSecretsSealed(t *testing.T) {
	ctx := context.Background()
	kek1, kek2, kek3 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	start := func(db *sqldb.DB, keks ...[]byte) (*Service, error) {
		return New(ctx, Config{Issuer: "http://127.0.0.1:1", AdminPassword: testAdminPW, KeyPublishAhead: -1, KeyEncryptionKeys: keks}, Deps{DB: db})
	}
	db := sqldbtest.OpenSQLite(t)
	old, err := start(db)
	if err != nil {
		t.Fatal(err)
	}
	plain := storedSecrets(t, db)
	for _, name := range []string{"csrf", "device-cookie", "refresh-rotation"} {
		if v := plain[name]; v == "" || strings.HasPrefix(v, sealedPrefix) {
			t.Fatalf("secret %s without a KEK: %q", name, v)
		}
	}
	svc, err := start(db, kek1)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range storedSecrets(t, db) {
		if !strings.HasPrefix(v, sealedPrefix+kekID(kek1)+":") || strings.Contains(v, plain[name]) {
			t.Fatalf("secret %s not sealed under kek1 after migration: %.40s", name, v)
		}
	}
	if !bytes.Equal(svc.csrfKey, old.csrfKey) || !bytes.Equal(svc.devices.key, old.devices.key) || !bytes.Equal(svc.rotationKey, old.rotationKey) {
		t.Fatal("sealing changed a secret's value")
	}
	// A new database with a KEK never holds a plaintext secret.
	fresh := sqldbtest.OpenSQLite(t)
	if _, err := start(fresh, kek1); err != nil {
		t.Fatal(err)
	}
	for name, v := range storedSecrets(t, fresh) {
		if !strings.HasPrefix(v, sealedPrefix) {
			t.Fatalf("new secret %s stored plaintext", name)
		}
	}
	// Rotation at start: new first, old second.
	if _, err := start(db, kek2, kek1); err != nil {
		t.Fatal(err)
	}
	for name, v := range storedSecrets(t, db) {
		if !strings.HasPrefix(v, sealedPrefix+kekID(kek2)+":") {
			t.Fatalf("secret %s not resealed under kek2", name)
		}
	}
	// Rotation through rotate-keys.
	if _, _, err := RotateSigningKeys(ctx, db, 0, [][]byte{kek3, kek2}); err != nil {
		t.Fatal(err)
	}
	for name, v := range storedSecrets(t, db) {
		if !strings.HasPrefix(v, sealedPrefix+kekID(kek3)+":") {
			t.Fatalf("secret %s not resealed by rotate-keys", name)
		}
	}
	svc, err = start(db, kek3)
	if err != nil {
		t.Fatalf("start with the rotated KEK alone: %v", err)
	}
	if !bytes.Equal(svc.csrfKey, old.csrfKey) {
		t.Fatal("rotation changed the CSRF secret")
	}
	// The store alone, without the KEK, opens no secret.
	if _, err := (&store{db: db}).secret(ctx, "csrf", func() string { return "new" }); err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("secret without the KEK: %v", err)
	}
	// A sealed value moved to another name does not open.
	vals := storedSecrets(t, db)
	if _, err := db.ExecContext(ctx, `UPDATE iam_secrets SET value = ? WHERE name = 'device-cookie'`, vals["csrf"]); err != nil {
		t.Fatal(err)
	}
	if _, err := start(db, kek3); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("swapped sealed secret: %v", err)
	}
}
