package orgkit_test

import (
	"testing"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/policy"
)

// TestKindEvents checks that each kind's event vocabulary is the
// catalogue's for the same kind of organization.
func TestKindEvents(t *testing.T) {
	for _, k := range []orgkit.Kind{orgkit.Customer, orgkit.Dealer, orgkit.MonitoringProvider} {
		if policy.OrgKind(k.Events.Kind) != k.Org {
			t.Errorf("%s: events of kind %q", k.Org, k.Events.Kind)
		}
		if k.Events.Producer != k.Producer {
			t.Errorf("%s: producer %q, events of %q", k.Org, k.Producer, k.Events.Producer)
		}
	}
}
