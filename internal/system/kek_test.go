package system

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/iam"
)

// TestKeyEncryptionKeys: without a setting, the first start generates the
// key in the data directory, 0600, and later starts reuse it; a setting or
// a file wins; a bad value is refused naming the setting.
func TestKeyEncryptionKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := &Config{DataDir: dir}
	first, err := c.keyEncryptionKeys()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, kekFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v %v", err, fi)
	}
	again, err := c.keyEncryptionKeys()
	if err != nil || len(again) != 1 || !bytes.Equal(again[0], first[0]) {
		t.Fatalf("second start did not reuse the key: %v", err)
	}
	k, _ := iam.NewKeyEncryptionKey()
	c.KeyEncryptionKey = k
	if got, err := c.keyEncryptionKeys(); err != nil || bytes.Equal(got[0], first[0]) {
		t.Fatalf("the setting did not win: %v", err)
	}
	c.KeyEncryptionKey = ""
	c.KeyEncryptionKeyFile = filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(c.KeyEncryptionKeyFile, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.keyEncryptionKeys(); err == nil || !strings.Contains(err.Error(), "--key-encryption-key-file") {
		t.Fatalf("bad file: %v", err)
	}
	if fi, _ := os.Stat(c.KeyEncryptionKeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file left %04o", fi.Mode().Perm())
	}
}
