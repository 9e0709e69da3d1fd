package authzsync

import (
	"context"
	"fmt"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

// This file is the sync's batch path (events.BatchHandler): the events of
// a batch are planned one after the other against the SQL state in the
// batch's transaction, exactly as one at a time, and their plans are
// folded into the batch's net change per tuple key, which goes to OpenFGA
// in as few Writes as its limit on tuples per Write allows (usually one).
// One Write per event made a world of ten thousand systems take longer
// than the benchmark's import wait, with the SQLite write lock held
// through every round trip.
//
// The net change is what the plans executed one at a time (execute) would
// leave, whatever OpenFGA held before: every Write is idempotent
// (on_duplicate and on_missing "ignore"), so a batch whose commit failed,
// run again as a batch or one event at a time, converges to the same
// tuples.

// netKind is what a batch does to one tuple key.
type netKind int

const (
	// netDelete leaves the key absent.
	netDelete netKind = iota + 1
	// netWrite writes the tuple if the key is absent and leaves a tuple
	// already held alone: a plain write of the plans.
	netWrite
	// netSet leaves exactly the tuple, whatever the key held: an upsert
	// or a replacement of the plans, or a write after a delete.
	netSet
)

// netChange is the batch's change of one key.
type netChange struct {
	kind  netKind
	tuple *openfgav1.TupleKey // netWrite and netSet
	// replace marks a netSet whose key may be held with another condition
	// (a replacement of the plans: the on_duty tuple of a changed
	// schedule): it is deleted, then written, in two Writes, as replace
	// does.
	replace bool
}

// netChanges folds plans, in order, into one change per key.
type netChanges struct {
	order   []tupleKey // first appearance, so Writes are deterministic
	changes map[tupleKey]*netChange
}

func newNetChanges() *netChanges { return &netChanges{changes: map[tupleKey]*netChange{}} }

func keyOf(object, relation, user string) tupleKey { return tupleKey{object, relation, user} }

func (n *netChanges) at(k tupleKey) *netChange {
	c, ok := n.changes[k]
	if !ok {
		c = &netChange{}
		n.changes[k] = c
		n.order = append(n.order, k)
	}
	return c
}

// add folds p in, in the order execute applies it: its writes and deletes
// (deduplicated as execute does, distinct keys), then its upserts, then its
// replacements.
func (n *netChanges) add(p *plan) {
	writes, deletes := dedupe(p.writes, p.deletes)
	for _, t := range deletes {
		*n.at(keyOf(t.GetObject(), t.GetRelation(), t.GetUser())) = netChange{kind: netDelete}
	}
	for _, t := range writes {
		c := n.at(keyOf(t.GetObject(), t.GetRelation(), t.GetUser()))
		switch c.kind {
		case 0:
			*c = netChange{kind: netWrite, tuple: t}
		case netDelete:
			// Absent at this point of the batch, so held after it.
			*c = netChange{kind: netSet, tuple: t}
		}
		// After a write or a set the key is held: a write leaves it.
	}
	for _, t := range p.upsert {
		c := n.at(keyOf(t.GetObject(), t.GetRelation(), t.GetUser()))
		// A replacement earlier in the batch says the key may well be
		// held with another condition: keep replacing.
		*c = netChange{kind: netSet, tuple: t, replace: c.kind == netSet && c.replace}
	}
	for _, t := range p.replace {
		*n.at(keyOf(t.GetObject(), t.GetRelation(), t.GetUser())) = netChange{kind: netSet, tuple: t, replace: true}
	}
}

// empty reports whether the batch changes no key.
func (n *netChanges) empty() bool { return len(n.order) == 0 }

// calls returns the batch's Writes: the first deletes every key left
// absent and every key to replace and writes the others, the second
// writes the replaced keys (OpenFGA refuses a Write naming a key twice).
// With replaceAll every netSet is replaced: the first attempt found a key
// held with another condition.
func (n *netChanges) calls(replaceAll bool) (writes []*openfgav1.TupleKey, deletes []*openfgav1.TupleKeyWithoutCondition, replaced []*openfgav1.TupleKey) {
	for _, k := range n.order {
		c := n.changes[k]
		switch {
		case c.kind == netDelete:
			deletes = append(deletes, &openfgav1.TupleKeyWithoutCondition{Object: k.object, Relation: k.relation, User: k.user})
		case c.kind == netSet && (c.replace || replaceAll):
			deletes = append(deletes, openfga.WithoutCondition(c.tuple))
			replaced = append(replaced, c.tuple)
		default:
			writes = append(writes, c.tuple)
		}
	}
	return writes, deletes, replaced
}

// handleBatch is the consumer's batch handler: it plans every event in
// order in tx (each sees the SQL state the ones before it left) and sends
// the batch's net change to OpenFGA (or, in a rebuild, applies the plans to
// the tuple set). An error makes the consumer apply the batch again one
// event at a time with handle, which says which event fails.
func (s *Syncer) handleBatch(ctx context.Context, tx *sqldb.Tx, evs []events.Event) error {
	plans := make([]*plan, 0, len(evs))
	for _, ev := range evs {
		p, err := planEvent(ctx, tx, ev)
		if err != nil {
			return fmt.Errorf("authzsync: %s %s: %w", ev.Type, ev.ID, err)
		}
		plans = append(plans, p)
	}
	if s.sink != nil {
		if !s.sink.apply(plans...) {
			s.pauseConsumer()
			return fmt.Errorf("authzsync: a batch of %d events: the rebuild is writing its tuples; handed back", len(evs))
		}
		return nil
	}
	n := newNetChanges()
	for _, p := range plans {
		n.add(p)
	}
	if err := s.executeNet(ctx, n); err != nil {
		s.pauseIfUnavailable(err)
		return fmt.Errorf("authzsync: a batch of %d events: %w", len(evs), err)
	}
	return nil
}

// executeNet writes n to OpenFGA. Keys believed unchanged (upserts) are
// written in the first Write; if OpenFGA holds one of them with another
// condition (it got ahead of the SQL state, as execute allows for), the
// Write is refused as a whole and the batch replaces every such key
// instead. Between the two Writes of a replacement the key is absent,
// which can only deny, never allow.
func (s *Syncer) executeNet(ctx context.Context, n *netChanges) error {
	if n.empty() {
		return nil
	}
	writes, deletes, replaced := n.calls(false)
	err := s.deps.FGA.Write(ctx, writes, deletes)
	if fga.IsConflict(err) {
		writes, deletes, replaced = n.calls(true)
		err = s.deps.FGA.Write(ctx, writes, deletes)
	}
	if err != nil || len(replaced) == 0 {
		return err
	}
	return s.deps.FGA.Write(ctx, replaced, nil)
}
