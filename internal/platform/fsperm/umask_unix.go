//go:build unix

package fsperm

import "syscall"

// RestrictUmask sets the process umask to 077, so that every file and
// directory created from now on (the embedded NATS and OpenFGA stores
// create theirs with 0640 and 0750) is private to the user.
func RestrictUmask() { syscall.Umask(0o077) }
