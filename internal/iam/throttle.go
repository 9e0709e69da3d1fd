package iam

import (
	"net/netip"
	"sync"
	"time"
)

// throttle slows down and then refuses repeated login failures without
// letting a stranger lock a user out (OWASP "Slow Down Online Guessing
// Attacks with Device Cookies"). An attempt is counted in buckets chosen by
// who makes it:
//
//   - from a browser with a valid device cookie for the account (it logged
//     in to that account before): only in that cookie's own bucket, so the
//     failures of anyone else never slow down or lock it;
//   - from anyone else (a stranger): in the bucket of the (account,
//     client address) pair, in the account's bucket of stranger attempts
//     from all addresses together (the bound on distributed guessing), and
//     in the address's bucket over all accounts (password spraying).
//
// A bucket that reaches its limit within the window is locked for the
// lockout; a locked bucket refuses only the attempts counted in it. The
// counts are in memory, so each instance of the IAM Service counts on its
// own: behind a load balancer an attacker gets at most (instances × limit)
// attempts per window, still far too few for online guessing. The clock is
// injected for tests.
type throttle struct {
	now    func() time.Time
	limits throttleLimits

	mu      sync.Mutex
	buckets map[string]*attempts
}

// throttleLimits are the failures per window that lock each kind of
// bucket.
type throttleLimits struct {
	// client is the limit of one account from one client address, and of
	// one device cookie.
	client int
	// account is the limit of one account's stranger attempts from all
	// addresses together.
	account int
	// address is the limit of one client address's stranger attempts over
	// all accounts.
	address int
	window  time.Duration
	lockout time.Duration
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

func newThrottle(now func() time.Time, l throttleLimits) *throttle {
	return &throttle{now: now, limits: l, buckets: map[string]*attempts{}}
}

// maxDelay caps the progressive delay so a slowed login still completes
// well within any HTTP timeout.
const maxDelay = 4 * time.Second

// busyRetry is the Retry-After of an attempt refused only because the
// attempts already in flight fill the limit: they finish within a few
// seconds (the longest delay plus a password hash), after which the
// failures they record decide.
const busyRetry = maxDelay + time.Second

// maxBuckets bounds the throttle's memory under a flood of distinct
// usernames or addresses; past it the oldest information is swept.
const maxBuckets = 200_000

// bucketKey is one bucket an attempt counts in, with its limit and how
// strongly its count slows the attempt down (the count is divided by it).
type bucketKey struct {
	key    string
	limit  int
	dilute int
}

// attempt names who tries which account: the account key, the client
// address, and the nonce of a valid device cookie for the account ("" for
// a stranger).
type attempt struct {
	account string
	address netip.Addr
	device  string
}

// keys returns the buckets of a.
func (t *throttle) keys(a attempt) []bucketKey {
	if a.device != "" {
		return []bucketKey{{key: "d\x00" + a.device, limit: t.limits.client, dilute: 1}}
	}
	addr := addressKey(a.address)
	return []bucketKey{
		{key: "c\x00" + a.account + "\x00" + addr, limit: t.limits.client, dilute: 1},
		// A distributed attack slows every stranger down, more gently
		// than one address guessing, since the real user may be a
		// stranger on a new device.
		{key: "u\x00" + a.account, limit: t.limits.account, dilute: 4},
		// A shared NAT is common, so an address failing across many
		// accounts is slowed down gently too.
		{key: "a\x00" + addr, limit: t.limits.address, dilute: 4},
	}
}

// addressKey is the address an attempt is counted under: an IPv4 address,
// or the /64 of an IPv6 address, since one subscriber commonly holds a
// whole /64 and could otherwise rotate through it.
func addressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// reservation is one login attempt admitted by begin. Exactly one of
// succeeded and failed must end it, so that it stops counting as in
// flight; abandon ends it as a failure if neither did.
type reservation struct {
	t    *throttle
	keys []bucketKey
	done bool
}

// begin reserves a login attempt, atomically with the limit check: the
// attempt counts against each of its buckets' limits from now on, so
// concurrent attempts see each other. It returns the reservation and how
// long to delay the attempt, or, when one of its buckets is locked or
// filled by failures and attempts in flight, a nil reservation and how
// long until trying again makes sense.
func (t *throttle) begin(a attempt) (r *reservation, delay, locked time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	keys := t.keys(a)
	busy := false
	n := 0
	for _, k := range keys {
		e := t.recent(k.key, now)
		if e == nil {
			continue
		}
		if now.Before(e.lockedUntil) {
			locked = max(locked, e.lockedUntil.Sub(now))
			continue
		}
		c := len(e.failures) + e.inFlight
		if c >= k.limit {
			busy = true
		}
		n = max(n, c/k.dilute)
	}
	if locked > 0 {
		return nil, 0, locked
	}
	if busy {
		return nil, 0, busyRetry
	}
	if n > 0 {
		// 250 ms, 500 ms, 1 s, 2 s, 4 s, ...
		delay = min(250*time.Millisecond<<min(n-1, 8), maxDelay)
	}
	for _, k := range keys {
		t.entry(k, now).inFlight++
	}
	return &reservation{t: t, keys: keys}, delay, 0
}

// entry returns the bucket of k, creating it.
func (t *throttle) entry(k bucketKey, now time.Time) *attempts {
	e := t.recent(k.key, now)
	if e == nil {
		e = &attempts{}
		t.buckets[k.key] = e
	}
	return e
}

// release ends the reservation's in-flight counts; the caller holds mu.
func (r *reservation) release(now time.Time) {
	for _, k := range r.keys {
		if e := r.t.buckets[k.key]; e != nil && e.inFlight > 0 {
			e.inFlight--
			r.t.recent(k.key, now)
		}
	}
}

// failed ends the attempt as a failure: it is recorded in each of its
// buckets, locking whichever reached its limit.
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
	for _, k := range r.keys {
		e := t.entry(k, now)
		e.failures = append(e.failures, now)
		if len(e.failures) >= k.limit {
			e.lockedUntil = now.Add(t.limits.lockout)
			e.failures = nil
		}
	}
	if len(t.buckets) > maxBuckets {
		t.sweep(now)
	}
}

// succeeded ends the attempt as a success and forgets the failures of the
// client's own bucket (the pair or the device cookie): the user proved who
// they are. The account's and the address's stranger counts stay, so one
// known account cannot be used to reset an address that is guessing
// others, and the real user logging in does not hand an attacker a fresh
// budget for the account.
func (r *reservation) succeeded() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.release(t.now())
	own := r.keys[0].key
	if e := t.buckets[own]; e != nil {
		e.failures = nil
		e.lockedUntil = time.Time{}
		if e.inFlight == 0 {
			delete(t.buckets, own)
		}
	}
}

// abandon ends an attempt that neither succeeded nor failed (a panic on
// the way) as a failure, so a reservation can never stay in flight and
// block a bucket for good. It does nothing after succeeded or failed.
func (r *reservation) abandon() { r.failed() }

// recent returns the bucket of key with failures outside the window
// dropped; nil when there is none.
func (t *throttle) recent(key string, now time.Time) *attempts {
	e := t.buckets[key]
	if e == nil {
		return nil
	}
	cut := 0
	for cut < len(e.failures) && now.Sub(e.failures[cut]) >= t.limits.window {
		cut++
	}
	e.failures = e.failures[cut:]
	if len(e.failures) == 0 && e.inFlight == 0 && !now.Before(e.lockedUntil) {
		delete(t.buckets, key)
		return nil
	}
	return e
}

// sweep drops what has expired; if the buckets still exceed maxBuckets (a
// flood within one window), it drops unlocked buckets with nothing in
// flight, which only loses slow-down information, never a lock.
func (t *throttle) sweep(now time.Time) {
	for k := range t.buckets {
		t.recent(k, now)
	}
	if len(t.buckets) <= maxBuckets {
		return
	}
	for k, e := range t.buckets {
		if e.inFlight == 0 && !now.Before(e.lockedUntil) {
			delete(t.buckets, k)
			if len(t.buckets) <= maxBuckets*3/4 {
				return
			}
		}
	}
}
