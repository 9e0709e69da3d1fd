package events

import "testing"

func TestSubjectWithin(t *testing.T) {
	for _, tc := range []struct {
		filter, pattern string
		want            bool
	}{
		{"realguardio.customer.>", "realguardio.customer.>", true},
		{"realguardio.customer.employee_roles_set", "realguardio.customer.>", true},
		{"realguardio.customer.*", "realguardio.customer.>", true},
		{"realguardio.customer", "realguardio.customer.>", false},
		{"realguardio.dealer.created", "realguardio.customer.>", false},
		{"realguardio.>", "realguardio.customer.>", false},
		{"realguardio.*.created", "realguardio.customer.>", false},
		{"a.b", "a.*", true},
		{"a.>", "a.*", false},
		{"a.b.c", "a.*", false},
	} {
		if got := subjectWithin(tc.filter, tc.pattern); got != tc.want {
			t.Errorf("subjectWithin(%q, %q) = %v, want %v", tc.filter, tc.pattern, got, tc.want)
		}
	}
	if StreamName("", ProducerSecuritySystem) != "REALGUARDIO_SECURITYSYSTEM" || Subject("", "customer.created") != "realguardio.customer.created" {
		t.Error("default stream name or subject differs from docs/events.md")
	}
}
