package system

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSessionKeysKeptInTheDataDirectory: without REALGUARDIO_SESSION_KEYS,
// `up` generates the BFF's key once into a private file and reads the same
// key at every later start, so web sessions survive a restart.
func TestSessionKeysKeptInTheDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := &System{cfg: Config{DataDir: dir}}
	first, err := s.sessionKeys()
	if err != nil || len(first) != 1 {
		t.Fatalf("first start: %v %v", first, err)
	}
	path := filepath.Join(dir, sessionKeysFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v, want 0700", di.Mode().Perm())
	}
	again, err := s.sessionKeys()
	if err != nil || len(again) != 1 || again[0] != first[0] {
		t.Fatalf("restart: %v %v, want the same key", again, err)
	}

	// A file readable by others is made private before use.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sessionKeys(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after start %v, want 0600", fi.Mode().Perm())
	}

	// Configured keys win; an empty file is refused with what to do.
	s.cfg.SessionKeys = "a, b"
	if keys, _ := s.sessionKeys(); len(keys) != 2 || keys[0] != "a" || keys[1] != "b" {
		t.Fatalf("configured keys: %v", keys)
	}
	s.cfg.SessionKeys = ""
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sessionKeys(); err == nil {
		t.Fatal("an empty key file was accepted")
	}
	// A service run alone must be given its keys.
	s.cfg.Only = ServiceBFF
	if _, err := s.sessionKeys(); err == nil {
		t.Fatal("serve bff without keys was accepted")
	}
}
