// Package browsertest drives the whole of RealGuardIO in a real browser:
// its test starts every service with internal/system on 127.0.0.1, loads a
// small customer through the public API, and then signs people in through
// the IAM Service's own login page in headless Chromium to use the web UI
// as they would. It has no code of its own besides the test; it lives
// apart from internal/bff so the BFF's package tests stay quick and keep
// depending only on fakes.
//
//	go test ./internal/browsertest/
//	go test ./internal/browsertest/ -args -update-screenshots
package browsertest
