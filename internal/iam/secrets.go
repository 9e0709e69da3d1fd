package iam

import (
	"context"
	"fmt"
)

// The instance secrets in iam_secrets (the login CSRF key, the device
// cookie key, the refresh rotation key, and whatever else store.secret
// is asked for) are sealed like the signing keys: AES-256-GCM under the
// key-encryption key, with the secret's name as additional data, so a
// copied database yields none of them and a sealed value cannot be moved
// to another name. Rows stored plaintext by an earlier version, or sealed
// under a KEK being rotated out, are resealed under the first KEK at
// start (resealSecrets).

// secretAD is the additional data of the secret name.
func secretAD(name string) string { return "secret:" + name }

// sealSecret seals the value of secret name for storage.
func (s *store) sealSecret(name, value string) (string, error) {
	return s.sealer.sealValue(secretAD(name), value)
}

// openSecret opens the stored value of secret name.
func (s *store) openSecret(name, stored string) (string, error) {
	return s.sealer.openValue(secretAD(name), "secret "+name, stored)
}

// resealSecrets seals every secret not yet sealed under the first KEK.
// Each row is replaced only if it still holds what was read, so instances
// starting together do not overwrite each other; without a KEK nothing
// changes (and a sealed row then fails to open when it is used, naming
// the missing KEK).
func (s *store) resealSecrets(ctx context.Context) error {
	if s.sealer == nil {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM iam_secrets`)
	if err != nil {
		return fmt.Errorf("load secrets: %w", err)
	}
	type row struct{ name, value string }
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.value); err != nil {
			rows.Close()
			return fmt.Errorf("load secrets: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load secrets: %w", err)
	}
	for _, r := range all {
		if s.sealer.current(r.value) {
			continue
		}
		plain, err := s.openSecret(r.name, r.value)
		if err != nil {
			return err
		}
		sealed, err := s.sealSecret(r.name, plain)
		if err != nil {
			return err
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE iam_secrets SET value = ? WHERE name = ? AND value = ?`, sealed, r.name, r.value); err != nil {
			return fmt.Errorf("reseal secret %s: %w", r.name, err)
		}
	}
	return nil
}
