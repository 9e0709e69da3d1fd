package openfga_test

import (
	"testing"

	"github.com/realguardio/realguardio/internal/policy/openfga"
)

func TestModelCompiles(t *testing.T) {
	m, err := openfga.Model()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.GetConditions()) != 1 || m.GetSchemaVersion() != "1.1" {
		t.Fatalf("conditions %v, schema %q", m.GetConditions(), m.GetSchemaVersion())
	}
}
