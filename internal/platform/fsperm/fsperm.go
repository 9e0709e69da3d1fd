// Package fsperm keeps RealGuardIO's files private to the user that runs
// it: every database, key, store and session file is 0600 in a 0700
// directory, whatever the umask and whatever modes the files had before.
// A file readable by other local users would hand them the IAM's signing
// keys, the password hashes or a session's tokens.
package fsperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Private modes of directories and files.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Dir creates dir (and its parents) when missing and makes it 0700 when
// group or others have any access to it. A sticky directory open to others
// (such as /tmp) is shared by design and cannot be made private: it is
// refused, so the caller names a directory of its own.
func Dir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return fixDir(dir)
}

func fixDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		return fmt.Errorf("%s is a shared directory (mode %s); keep RealGuardIO's files in a directory of their own", dir, fi.Mode())
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("%s is mode %04o and cannot be made private (0700): %w; run chmod 0700 %s", dir, fi.Mode().Perm(), err, dir)
	}
	return nil
}

// File makes an existing file 0600 when group or others have any access
// to it; a missing file is no error.
func File(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, FileMode); err != nil {
		return fmt.Errorf("%s is mode %04o and cannot be made private (0600): %w; run chmod 0600 %s", path, fi.Mode().Perm(), err, path)
	}
	return nil
}

// Tree makes dir private (see Dir) and every directory and regular file
// below it too. Symbolic links are not followed: what they point at is
// not RealGuardIO's to change.
func Tree(dir string) error {
	if err := Dir(dir); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case path == dir:
			return nil
		case d.IsDir():
			return fixDir(path)
		case d.Type().IsRegular():
			return File(path)
		}
		return nil
	})
}

// CreateFile creates path with mode 0600 when it does not exist (so the
// umask cannot widen it), and makes an existing one private.
func CreateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return File(path)
}
