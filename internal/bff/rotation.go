package bff

import (
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// rotationCache remembers, for a short while, the token set that replaced a
// refresh token. Requests of the same browser that were already on their way
// with the old cookie when the refresh happened present the old refresh
// token; they get the new tokens from here instead of refreshing again.
//
// It is bounded (oldest entries are dropped first) and entries expire, so it
// holds at most a few minutes of refreshes. The cost is that, within that
// window, a copy of the old cookie also yields the new tokens, which is no
// more than the old cookie allowed a moment earlier.
type rotationCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	items map[string]rotationEntry
	order []string // insertion order, for eviction
}

type rotationEntry struct {
	tok     *oauth2.Token
	expires time.Time
}

func newRotationCache(max int, ttl time.Duration, now func() time.Time) *rotationCache {
	return &rotationCache{max: max, ttl: ttl, now: now, items: map[string]rotationEntry{}}
}

func (c *rotationCache) get(key string) (*oauth2.Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.tok, true
}

func (c *rotationCache) put(key string, tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	// Drop expired entries from the front, then the oldest while full.
	for len(c.order) > 0 {
		e, ok := c.items[c.order[0]]
		if ok && now.Before(e.expires) && len(c.items) < c.max {
			break
		}
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	if _, exists := c.items[key]; !exists {
		c.order = append(c.order, key)
	}
	c.items[key] = rotationEntry{tok: tok, expires: now.Add(c.ttl)}
}

func (c *rotationCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
