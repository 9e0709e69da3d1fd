//go:build unix

package sqldb_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestSQLiteFilesPrivate opens a SQLite database under a permissive umask
// in a directory an earlier version left 0755, with a database file left
// 0644: the directory, the file and its -wal and -shm companions must all
// end up private.
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		path := filepath.Join(dir, "new.db")
		if existing {
			path = filepath.Join(dir, "old.db")
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		db, err := sqldb.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(context.Background(), `CREATE TABLE t (x INTEGER)`); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", filepath.Base(f), m)
			}
		}
		db.Close()
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("directory: mode %04o, want 0700", m)
	}
}
