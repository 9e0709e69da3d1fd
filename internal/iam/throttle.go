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
	// inFlight counts attempts reserved by begin and not yet finished.
	// They count against the limit like failures: otherwise parallel
	// attempts would all be checked against the same old count before any
	// of them is recorded, and a burst could try far more passwords than
	// the limit.
	inFlight int
}

func newThrottle(now func() time.Time, maxUser, maxIP int, window, lockout time.Duration) *throttle {
	return &throttle{now: now, maxUser: maxUser, maxIP: maxIP, window: window, lockout: lockout,
		users: map[string]*attempts{}, ips: map[string]*attempts{}}
}

// maxDelay caps the progressive delay so a slowed login still completes
// well within any HTTP timeout.
const maxDelay = 4 * time.Second

// busyRetry is the Retry-After of an attempt refused only because the
// attempts already in flight fill the limit: they finish within a few
// seconds (the longest delay plus a password hash), after which the
// failures they record decide.
const busyRetry = maxDelay + time.Second

// reservation is one login attempt admitted by begin. Exactly one of
// succeeded and failed must end it, so that it stops counting as in
// flight; abandon ends it as a failure if neither did.
type reservation struct {
	t            *throttle
	username, ip string
	done         bool
}

// begin reserves a login attempt for username from ip, atomically with
// the limit check: the attempt counts against both limits from now on, so
// concurrent attempts see each other. It returns the reservation and how
// long to delay the attempt, or, when the username or the address is
// locked or its limit is filled by failures and attempts in flight, a nil
// reservation and how long until trying again makes sense.
func (t *throttle) begin(username, ip string) (r *reservation, delay, locked time.Duration) {
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
		return nil, 0, locked
	}
	if (u != nil && len(u.failures)+u.inFlight >= t.maxUser) || (a != nil && len(a.failures)+a.inFlight >= t.maxIP) {
		return nil, 0, busyRetry
	}
	n := 0
	if u != nil {
		n = len(u.failures) + u.inFlight
	}
	if a != nil {
		// An address failing across many usernames is slowed down more
		// gently than one username, since a shared NAT is common.
		n = max(n, (len(a.failures)+a.inFlight)/4)
	}
	if n > 0 {
		// 250 ms, 500 ms, 1 s, 2 s, 4 s, ...
		delay = min(250*time.Millisecond<<min(n-1, 8), maxDelay)
	}
	t.entry(t.users, username, now).inFlight++
	t.entry(t.ips, ip, now).inFlight++
	return &reservation{t: t, username: username, ip: ip}, delay, 0
}

// entry returns the entry of key, creating it.
func (t *throttle) entry(m map[string]*attempts, key string, now time.Time) *attempts {
	e := t.recent(m, key, now)
	if e == nil {
		e = &attempts{}
		m[key] = e
	}
	return e
}

// release ends the reservation's in-flight count; the caller holds mu.
func (r *reservation) release(now time.Time) {
	t := r.t
	for _, k := range []struct {
		m   map[string]*attempts
		key string
	}{{t.users, r.username}, {t.ips, r.ip}} {
		if e := k.m[k.key]; e != nil && e.inFlight > 0 {
			e.inFlight--
			t.recent(k.m, k.key, now)
		}
	}
}

// failed ends the attempt as a failure: it is recorded against the
// username and the address, locking whichever reached its limit.
func (r *reservation) failed() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	now := t.now()
	r.release(now)
	t.add(t.users, r.username, t.maxUser, now)
	t.add(t.ips, r.ip, t.maxIP, now)
	if len(t.users)+len(t.ips) > 100_000 {
		t.sweep(now)
	}
}

// succeeded ends the attempt as a success and forgets the username's
// failures: the user proved who they are. The address's failures stay, so
// one known account cannot be used to reset an address that is guessing
// others.
func (r *reservation) succeeded() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.release(t.now())
	if e := t.users[r.username]; e != nil {
		e.failures = nil
		e.lockedUntil = time.Time{}
		if e.inFlight == 0 {
			delete(t.users, r.username)
		}
	}
}

// abandon ends an attempt that neither succeeded nor failed (a panic on
// the way) as a failure, so a reservation can never stay in flight and
// block the username for good. It does nothing after succeeded or failed.
func (r *reservation) abandon() { r.failed() }

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
	if len(e.failures) == 0 && e.inFlight == 0 && !now.Before(e.lockedUntil) {
		delete(m, key)
		return nil
	}
	return e
}

// add records a failure of key and locks it when it reached limit.
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

// sweep bounds memory under a flood of distinct usernames.
func (t *throttle) sweep(now time.Time) {
	for _, m := range []map[string]*attempts{t.users, t.ips} {
		for k := range m {
			t.recent(m, k, now)
		}
	}
}
