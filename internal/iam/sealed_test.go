package iam

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

func storedKeys(t *testing.T, db *sqldb.DB) map[string]string {
	t.Helper()
	rows, err := (&store{db: db}).keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.ID] = r.PrivatePEM
	}
	return out
}

// TestSigningKeysSealed: keys are stored sealed under the key-encryption
// key, plaintext keys of an earlier version are sealed at start, a KEK is
// rotated by listing the new one first, and a database without its KEK
// mints nothing.
func TestSigningKeysSealed(t *testing.T) {
	ctx := context.Background()
	kek1, kek2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	start := func(db *sqldb.DB, keks ...[]byte) (*Service, error) {
		return New(ctx, Config{Issuer: "http://127.0.0.1:1", AdminPassword: testAdminPW, KeyPublishAhead: -1, KeyEncryptionKeys: keks}, Deps{DB: db})
	}
	db := sqldbtest.OpenSQLite(t)
	// An earlier version stored the key plaintext.
	if _, err := start(db); err != nil {
		t.Fatal(err)
	}
	plain := storedKeys(t, db)
	for id, v := range plain {
		if !strings.Contains(v, "PRIVATE KEY") {
			t.Fatalf("key %s not plaintext without a KEK", id)
		}
	}
	svc, err := start(db, kek1)
	if err != nil {
		t.Fatal(err)
	}
	sealed := storedKeys(t, db)
	for id, v := range sealed {
		if !strings.HasPrefix(v, sealedPrefix+kekID(kek1)+":") || strings.Contains(v, "PRIVATE") {
			t.Fatalf("key %s not sealed under kek1 after migration: %.40s", id, v)
		}
		if _, known := plain[id]; !known {
			t.Fatalf("migration made a new key %s instead of sealing the old", id)
		}
	}
	// New keys are sealed too.
	if err := svc.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for id, v := range storedKeys(t, db) {
		if !strings.HasPrefix(v, sealedPrefix) {
			t.Fatalf("rotated key %s stored plaintext", id)
		}
	}
	// A copied database alone, or with a wrong KEK, mints nothing.
	if _, err := start(db); err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Fatalf("start without the KEK: %v", err)
	}
	if _, err := start(db, kek2); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("start with another KEK: %v", err)
	}
	// Rotation: new first, old second, then the new one alone.
	if _, err := start(db, kek2, kek1); err != nil {
		t.Fatal(err)
	}
	for id, v := range storedKeys(t, db) {
		if !strings.HasPrefix(v, sealedPrefix+kekID(kek2)+":") {
			t.Fatalf("key %s not resealed under kek2", id)
		}
	}
	svc, err = start(db, kek2)
	if err != nil {
		t.Fatalf("start with the rotated KEK alone: %v", err)
	}
	if _, _, err := svc.ServiceToken(ctx, []string{AudienceCustomer}, nil); err != nil {
		t.Fatalf("mint after rotation: %v", err)
	}
	// A sealed value moved to another key's row does not open.
	vals := storedKeys(t, db)
	var ids []string
	for id := range vals {
		ids = append(ids, id)
	}
	if _, err := db.ExecContext(ctx, `UPDATE iam_signing_keys SET private_pem = ? WHERE id = ?`, vals[ids[0]], ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := start(db, kek2); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("swapped sealed value: %v", err)
	}
}

func TestParseKeyEncryptionKeys(t *testing.T) {
	k, _ := NewKeyEncryptionKey()
	got, err := ParseKeyEncryptionKeys(" " + k + " , " + strings.TrimRight(k, "=") + " ")
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %d", err, len(got))
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKeyEncryptionKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
