package iam

import (
	"strings"
	"testing"
)

// TestProductionPasswordCost checks the parameters every stored hash gets
// outside tests (OWASP: 19 MiB, 2 passes, 1 lane) and that a hash made
// with them verifies.
func TestProductionPasswordCost(t *testing.T) {
	m, tm := argonMemoryKiB, argonTime
	defer func() { argonMemoryKiB, argonTime = m, tm }()
	argonMemoryKiB, argonTime = 19*1024, 2
	h, err := hashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h, "$m=19456,t=2,p=1$") {
		t.Fatalf("hash parameters: %s", h)
	}
	if ok, err := verifyPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if ok, _ := verifyPassword(h, "wrong horse"); ok {
		t.Fatal("a wrong password verified")
	}
}
