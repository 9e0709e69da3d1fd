package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSessionFileMadePrivate: a session directory and file left readable
// by others (an earlier version, a copy, a umask) are made 0700 and 0600
// when the session is loaded and saved.
func TestSessionFileMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "realguardio")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st := sessionStore{path: filepath.Join(dir, "session.json")}
	if err := os.WriteFile(st.path, []byte(`{"issuer":"http://localhost:9000","subject":"s","access_token":"a"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, st.path} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := st.load()
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		for p, want := range map[string]os.FileMode{dir: 0o700, st.path: 0o600} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: %s is %04o, want %04o", when, filepath.Base(p), fi.Mode().Perm(), want)
			}
		}
	}
	check("after load")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.save(s); err != nil {
		t.Fatal(err)
	}
	check("after save")
}
