// Package archtest holds no code: its test checks the import rules that
// keep the services apart (docs/development.md, "Layering"). The rules are
// read from the source tree with go/build, so the test needs no network,
// no go command and no build.
package archtest
