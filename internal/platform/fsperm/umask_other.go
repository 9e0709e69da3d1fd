//go:build !unix

package fsperm

// RestrictUmask does nothing where there is no umask.
func RestrictUmask() {}
