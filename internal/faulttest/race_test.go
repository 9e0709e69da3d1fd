//go:build race

package faulttest

// The services are built with the race detector when the suite is, so the
// build reuses the packages `go test -race` already compiled, and a data
// race in a service under a fault fails the suite.
func init() { raceEnabled = true }
