package iam

import (
	"os"
	"testing"
)

// TestMain lowers the Argon2id cost for the package's tests: they hash and
// verify passwords thousands of times, which under the race detector would
// take most of CI's time. What the tests check (throttling, flows) does
// not depend on the cost; TestProductionPasswordCost checks the real one.
func TestMain(m *testing.M) {
	argonMemoryKiB, argonTime = 256, 1
	h, err := hashPassword("not-a-real-password-" + randomString(16))
	if err != nil {
		panic(err)
	}
	dummyHash = h
	os.Exit(m.Run())
}
