// Package faulttest is RealGuardIO's fault suite: every service runs as its
// own `realguardio serve <service>` process, built once from this module,
// on this machine's PostgreSQL (a fresh database per service and run), a
// three-node NATS cluster and an OpenFGA server of the test's own, and the
// tests attack the processes (kill -9, SIGSTOP, restarts, terminated
// database connections, a lost NATS node) while driving the public API as
// a client would. Each case asserts the status codes, that a 503 changed
// nothing, and logs how long recovery took; docs/operations.md quotes those
// figures.
//
// The package holds only tests:
//
//	REALGUARDIO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -race -count=1 -v ./internal/faulttest/
//
// It needs PostgreSQL, a nats-server binary (eventstest.ServerBinary builds
// one from the module cache) and an openfga binary
// (REALGUARDIO_TEST_OPENFGA, else built from the module cache). Without
// CI=true a missing one skips the suite; with CI=true it fails.
package faulttest
