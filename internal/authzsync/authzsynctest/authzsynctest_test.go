package authzsynctest_test

import (
	"math/rand"
	"testing"

	"github.com/realguardio/realguardio/internal/authzsync/authzsynctest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// TestEventsFollowTheCatalogue checks that every event the builder writes
// for a world and its changes is one of docs/events.md, with its producer,
// aggregate type and exactly its payload fields.
func TestEventsFollowTheCatalogue(t *testing.T) {
	w := policytest.Generate(7, policytest.Small)
	b := authzsynctest.NewBuilder()
	evs := b.World(w)
	rng := rand.New(rand.NewSource(7))
	for range 300 {
		evs = append(evs, b.Change(w.Mutate(rng))...)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		checkEvent(t, ev)
		seen[ev.Type] = true
	}
	if len(seen) < 15 {
		t.Errorf("only %d event types built: %v", len(seen), seen)
	}
}

func checkEvent(t *testing.T, ev events.Event) {
	t.Helper()
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
}
