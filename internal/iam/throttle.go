package iam

import (
	"sync"
	"time"
)

// throttle slows down and then refuses repeated login failures per
// username and per client address. It is in memory, so each instance of
// the IAM Service counts on its own: behind a load balancer an attacker
// gets at most (instances × limit) attempts per window, which is still
// far too few for online guessing. The clock is injected for tests.
type throttle struct {
	now     func() time.Time
	maxUser int
	maxIP   int
	window  time.Duration
	lockout time.Duration

	mu    sync.Mutex
	users map[string]*attempts
	ips   map[string]*attempts
}

type attempts struct {
	failures    []time.Time
	lockedUntil time.Time
}

func newThrottle(now func() time.Time, maxUser, maxIP int, window, lockout time.Duration) *throttle {
	return &throttle{now: now, maxUser: maxUser, maxIP: maxIP, window: window, lockout: lockout,
		users: map[string]*attempts{}, ips: map[string]*attempts{}}
}

// maxDelay caps the progressive delay so a slowed login still completes
// well within any HTTP timeout.
const maxDelay = 4 * time.Second

// check returns how long to delay this attempt, or, when the username or
// the address is locked, how long until it is unlocked.
func (t *throttle) check(username, ip string) (delay, locked time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	u := t.recent(t.users, username, now)
	a := t.recent(t.ips, ip, now)
	for _, e := range []*attempts{u, a} {
		if e != nil && now.Before(e.lockedUntil) {
			locked = max(locked, e.lockedUntil.Sub(now))
		}
	}
	if locked > 0 {
		return 0, locked
	}
	n := 0
	if u != nil {
		n = len(u.failures)
	}
	if a != nil {
		// An address failing across many usernames is slowed down more
		// gently than one username, since a shared NAT is common.
		n = max(n, len(a.failures)/4)
	}
	if n == 0 {
		return 0, 0
	}
	// 250 ms, 500 ms, 1 s, 2 s, 4 s, ...
	delay = 250 * time.Millisecond << min(n-1, 8)
	return min(delay, maxDelay), 0
}

// recent returns the entry of key with failures outside the window
// dropped; nil when there is none.
func (t *throttle) recent(m map[string]*attempts, key string, now time.Time) *attempts {
	e := m[key]
	if e == nil {
		return nil
	}
	cut := 0
	for cut < len(e.failures) && now.Sub(e.failures[cut]) >= t.window {
		cut++
	}
	e.failures = e.failures[cut:]
	if len(e.failures) == 0 && !now.Before(e.lockedUntil) {
		delete(m, key)
		return nil
	}
	return e
}

// fail records a failed attempt and locks the username or address that
// reached its limit.
func (t *throttle) fail(username, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.add(t.users, username, t.maxUser, now)
	t.add(t.ips, ip, t.maxIP, now)
	if len(t.users)+len(t.ips) > 100_000 {
		t.sweep(now)
	}
}

func (t *throttle) add(m map[string]*attempts, key string, limit int, now time.Time) {
	e := t.recent(m, key, now)
	if e == nil {
		e = &attempts{}
		m[key] = e
	}
	e.failures = append(e.failures, now)
	if len(e.failures) >= limit {
		e.lockedUntil = now.Add(t.lockout)
		e.failures = nil
	}
}

// succeed forgets the username's failures: the user proved who they are.
// The address's failures stay, so one known account cannot be used to
// reset an address that is guessing others.
func (t *throttle) succeed(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.users, username)
}

// sweep bounds memory under a flood of distinct usernames.
func (t *throttle) sweep(now time.Time) {
	for _, m := range []map[string]*attempts{t.users, t.ips} {
		for k := range m {
			t.recent(m, k, now)
		}
	}
}
