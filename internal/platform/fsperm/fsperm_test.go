package fsperm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestTree opens up a data directory the way umask 022 and an earlier
// version left it, and checks Tree makes all of it private.
func TestTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	sub := filepath.Join(root, "nats", "jetstream")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{root, filepath.Join(root, "nats"), sub} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{filepath.Join(root, "iam.db"), filepath.Join(root, "iam.db-wal"), filepath.Join(sub, "1.blk")}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := Tree(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{root, filepath.Join(root, "nats"), sub} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s: %04o", d, m)
		}
	}
	for _, f := range files {
		if m := mode(t, f); m != 0o600 {
			t.Errorf("%s: %04o", f, m)
		}
	}
	if m := mode(t, target); m != 0o644 {
		t.Errorf("a symlink's target was changed: %04o", m)
	}
}

func TestSharedDirRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	err := Dir(dir)
	if err == nil || !strings.Contains(err.Error(), "shared directory") {
		t.Fatalf("sticky world-writable directory: %v", err)
	}
}

func TestCreateFile(t *testing.T) {
	RestrictUmask()
	p := filepath.Join(t.TempDir(), "f")
	if err := CreateFile(p); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != 0o600 {
		t.Fatalf("%04o", m)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(p); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != 0o600 {
		t.Fatalf("existing file: %04o", m)
	}
}
