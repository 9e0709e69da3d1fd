package policytest

import (
	"fmt"
	"math/rand"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
)

// Case is one decision to check: may UserID, whose token carries AppRoles,
// perform Op on SecuritySystemID at instant At?
type Case struct {
	UserID           string
	AppRoles         []string
	Op               policy.Op
	SecuritySystemID string
	At               time.Time
}

// String prints the case for failure messages, with the instant in UTC.
func (c Case) String() string {
	return fmt.Sprintf("user %s %v %s system %s at %s", c.UserID, c.AppRoles, c.Op, c.SecuritySystemID, c.At.UTC().Format(time.RFC3339))
}

// Expected is the reference decision of a case: policy.IsAllowed over the
// world's facts.
func Expected(w *World, c Case) policy.Decision {
	return policy.IsAllowed(w.Subject(c.UserID, c.AppRoles), c.Op, w.Resource(c.SecuritySystemID), c.At)
}

var ops = []policy.Op{policy.OpView, policy.OpArm, policy.OpDisarm}

// year is the span random instants are drawn from; it contains both DST
// changes of every zone in Zones.
var (
	yearStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	yearEnd   = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Cases returns n cases over the world. Users are all of Users() with extra
// weight on employees with a schedule; half the systems are ones the user
// holds some role for, so allows are as common as denials; instants are
// random seconds of 2026 or, for scheduled users, shift edges (start,
// start-1s, end-1s, end, around midnight) on random days and on the days of
// the zone's DST changes, and the DST change instants themselves.
func (w *World) Cases(rng *rand.Rand, n int) []Case {
	users := w.Users()
	var scheduled []string
	for _, e := range w.Employees {
		if e.Schedule != nil {
			scheduled = append(scheduled, e.UserID)
		}
	}
	systems := w.Systems()
	out := make([]Case, 0, n)
	for range n {
		u := users[rng.Intn(len(users))]
		if len(scheduled) > 0 && rng.Intn(3) == 0 {
			u = scheduled[rng.Intn(len(scheduled))]
		}
		c := Case{UserID: u, AppRoles: w.AppRoles(u), Op: ops[rng.Intn(len(ops))]}
		c.SecuritySystemID = systems[rng.Intn(len(systems))]
		if rng.Intn(2) == 0 {
			if related := w.relatedSystems(u); len(related) > 0 {
				c.SecuritySystemID = related[rng.Intn(len(related))]
			}
		}
		var sched *policy.Schedule
		if e, ok := w.Employee(u); ok {
			sched = e.Schedule
		}
		c.At = Instant(rng, sched)
		out = append(out, c)
	}
	return out
}

// relatedSystems returns the systems u may view by a role (not by
// REALGUARDIO_ADMIN).
func (w *World) relatedSystems(u string) []string {
	s := w.Subject(u, nil)
	var out []string
	for _, sys := range w.SecuritySystems {
		if policy.IsAllowed(s, policy.OpView, w.Resource(sys.ID), yearStart).Allowed {
			out = append(out, sys.ID)
		}
	}
	return out
}

// Instant returns an instant worth testing a schedule at: with no schedule
// a random second of 2026; otherwise, mostly, an edge of one of its shifts
// or a DST change of its zone. Exported so strategy tests can pick
// instants for their own subjects.
func Instant(rng *rand.Rand, s *policy.Schedule) time.Time {
	if s == nil || len(s.Shifts) == 0 || rng.Intn(4) == 0 {
		return randomInstant(rng)
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return randomInstant(rng)
	}
	transitions := zoneTransitions(loc)
	if len(transitions) > 0 && rng.Intn(4) == 0 {
		offsets := []time.Duration{0, -time.Second, time.Second, -30 * time.Minute, 30 * time.Minute, -time.Hour, time.Hour}
		return transitions[rng.Intn(len(transitions))].Add(offsets[rng.Intn(len(offsets))])
	}
	sh := s.Shifts[rng.Intn(len(s.Shifts))]
	// The day: a random one of 2026, or one around a DST change.
	var day time.Time
	if len(transitions) > 0 && rng.Intn(2) == 0 {
		day = transitions[rng.Intn(len(transitions))].In(loc).AddDate(0, 0, rng.Intn(3)-1)
	} else {
		day = randomInstant(rng).In(loc)
	}
	// Move to a weekday of the shift, so its edges are the interesting ones.
	if len(sh.Weekdays) > 0 {
		want := weekdayOf(sh.Weekdays[rng.Intn(len(sh.Weekdays))])
		day = day.AddDate(0, 0, int(want-day.Weekday()+7)%7)
	}
	y, m, d := day.Date()
	sh0, sm := clock(sh.Start)
	eh, em := clock(sh.End)
	start := time.Date(y, m, d, sh0, sm, 0, 0, loc)
	endDay := d
	if eh*60+em <= sh0*60+sm {
		endDay++ // a night or 24-hour shift ends on the next day
	}
	end := time.Date(y, m, endDay, eh, em, 0, 0, loc)
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	switch rng.Intn(7) {
	case 0:
		return start
	case 1:
		return start.Add(-time.Second)
	case 2:
		return end.Add(-time.Second)
	case 3:
		return end
	case 4:
		return midnight
	case 5:
		return midnight.Add(-time.Second)
	}
	return start.Add(time.Duration(rng.Int63n(int64(24 * time.Hour))))
}

func randomInstant(rng *rand.Rand) time.Time {
	t := yearStart.Add(time.Duration(rng.Int63n(int64(yearEnd.Sub(yearStart)/time.Second))) * time.Second)
	if rng.Intn(2) == 0 {
		t = t.Truncate(time.Minute)
	}
	return t
}

func weekdayOf(s string) time.Weekday {
	for i, w := range policy.Weekdays {
		if w == s {
			return time.Weekday(i)
		}
	}
	return time.Sunday
}

// clock splits a valid "HH:MM" (as produced by RandomSchedule); invalid
// input yields 0:00, which only makes the instant less interesting.
func clock(s string) (h, m int) {
	if len(s) != 5 {
		return 0, 0
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), int(s[3]-'0')*10 + int(s[4]-'0')
}

var transitionsCache sync.Map // zone name -> []time.Time

// zoneTransitions returns the instants of 2026 at which loc's offset
// changes, in order.
func zoneTransitions(loc *time.Location) []time.Time {
	if v, ok := transitionsCache.Load(loc.String()); ok {
		return v.([]time.Time)
	}
	var out []time.Time
	t := yearStart
	for t.Before(yearEnd) {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(yearEnd) {
			break
		}
		out = append(out, end)
		t = end
	}
	transitionsCache.Store(loc.String(), out)
	return out
}
