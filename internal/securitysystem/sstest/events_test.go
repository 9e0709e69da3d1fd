package sstest_test

import (
	"math/rand"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestEventsFollowTheCatalogue checks that every event the builder writes
// for a world and its changes is one of docs/events.md, with its producer,
// aggregate type and exactly its payload fields.
func TestEventsFollowTheCatalogue(t *testing.T) {
	w := policytest.Generate(7, policytest.Small)
	b := sstest.NewEvents(time.Unix(0, 0))
	b.World(w)
	rng := rand.New(rand.NewSource(7))
	for range 300 {
		before := w.Clone()
		b.Change(before, w.Mutate(rng))
	}
	seen := map[string]bool{}
	for _, ev := range b.List() {
		typ := catalog.Type(ev.Type)
		if err := catalog.Validate(typ, ev.Payload); err != nil {
			t.Errorf("%s: %v (%s)", ev.Type, err, ev.Payload)
		}
		if ev.Producer != typ.Producer() {
			t.Errorf("%s: producer %q", ev.Type, ev.Producer)
		}
		if agg, _ := catalog.AggregateTypeOf(ev.Producer); ev.AggregateType != agg {
			t.Errorf("%s: aggregate type %q, want %q", ev.Type, ev.AggregateType, agg)
		}
		seen[ev.Type] = true
	}
	if len(seen) < 15 {
		t.Errorf("only %d event types built: %v", len(seen), seen)
	}
}
