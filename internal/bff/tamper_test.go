package bff

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCookieTamperingMatrix sends every kind of forged, altered, foreign,
// misplaced or expired session cookie to /api/me and /api/securitysystems:
// each is 401 and reaches no backend, while the genuine cookie works.
func TestCookieTamperingMatrix(t *testing.T) {
	ss := securitySystemBackend(t)
	b := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	good := b.mintSession(t, sess)
	value := good[0].Value
	seg := strings.Split(value, ".")
	if len(seg) != 5 {
		t.Fatalf("the session cookie is not a compact JWE: %d parts", len(seg))
	}
	keys, err := parseKeys(b.cfg.SessionKeys)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		// Change one character in the middle, keeping the alphabet.
		i := len(s) / 2
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	with := func(i int, part string) string {
		p := append([]string(nil), seg...)
		p[i] = part
		return strings.Join(p, ".")
	}
	sealAs := func(c *codec, purpose string, v any, ttl time.Duration) string {
		out, err := c.seal(purpose, v, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	chunk := func(i int, v string) *http.Cookie { return &http.Cookie{Name: b.svc.jar.chunkName(i), Value: v} }
	one := func(v string) []*http.Cookie { return []*http.Cookie{chunk(0, v)} }
	past := newCodec(keys, func() time.Time { return time.Now().Add(-48 * time.Hour) })
	foreignKeys, _ := parseKeys([]string{newKey(t)})
	foreign := newCodec(foreignKeys, time.Now)

	cases := map[string][]*http.Cookie{
		"header altered":              one(with(0, flip(seg[0]))),
		"iv altered":                  one(with(2, flip(seg[2]))),
		"ciphertext altered":          one(with(3, flip(seg[3]))),
		"tag altered":                 one(with(4, flip(seg[4]))),
		"tag removed":                 one(strings.Join(seg[:4], ".") + "."),
		"segments swapped":            one(strings.Join([]string{seg[0], seg[1], seg[4], seg[3], seg[2]}, ".")),
		"truncated":                   one(value[:len(value)/2]),
		"trailing garbage chunk":      {chunk(0, value), chunk(1, "AAAA")},
		"split with a missing chunk":  {chunk(0, value[:len(value)/2]), chunk(2, value[len(value)/2:])},
		"garbage":                     one("garbage.garbage"),
		"empty":                       one(""),
		"not base64":                  one("!!!!.@@@@.####.$$$$.%%%%"),
		"oversized, every chunk full": manyChunks(b, maxChunks, strings.Repeat("A", chunkSize)),
		"a JWS instead of a JWE":      one(fakeJWT(map[string]any{"sid": sess.ID, "gen": 1})),
		"header says alg none":        one(with(0, b64url(`{"alg":"none","enc":"A256GCM"}`))),
		"header says A128GCM":         one(with(0, b64url(`{"alg":"dir","enc":"A128GCM"}`))),
		"sealed under a foreign key":  one(sealAs(foreign, purposeSession, sessionRef{ID: sess.ID, Gen: 1}, time.Hour)),
		"expired":                     one(sealAs(past, purposeSession, sessionRef{ID: sess.ID, Gen: 1}, time.Hour)),
		"login state as session":      one(sealAs(b.svc.codec, purposeLogin, loginState{State: "s", Nonce: "n", Verifier: "v"}, time.Hour)),
		"session data as session":     one(sealAs(b.svc.codec, purposeSessionData, sess, time.Hour)),
		"unknown session":             one(sealAs(b.svc.codec, purposeSession, sessionRef{ID: randomToken(18), Gen: 1}, time.Hour)),
		"stale generation":            one(sealAs(b.svc.codec, purposeSession, sessionRef{ID: sess.ID, Gen: 2}, time.Hour)),
		"generation zero":             one(sealAs(b.svc.codec, purposeSession, sessionRef{ID: sess.ID, Gen: 0}, time.Hour)),
		"no session id":               one(sealAs(b.svc.codec, purposeSession, sessionRef{Gen: 1}, time.Hour)),
	}
	for name, cookies := range cases {
		for _, path := range []string{"/api/me", "/api/securitysystems"} {
			resp, body := b.do(t, b.client(t, cookies), "GET", path, "", nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s = %d %s, want 401", name, path, resp.StatusCode, body)
			}
		}
	}
	// Two cookies of one name (a cookie planted by a sibling domain before
	// the real one): the request is refused, never guessed at. A jar keeps
	// one cookie per name, so the header is written by hand.
	for _, path := range []string{"/api/me", "/api/securitysystems"} {
		name := b.svc.jar.chunkName(0)
		resp, body := b.do(t, b.client(t, nil), "GET", path, "", map[string]string{"Cookie": name + "=garbage; " + name + "=" + value})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("garbage before the real chunk: %s = %d %s, want 401", path, resp.StatusCode, body)
		}
	}
	if r, _ := ss.lastRequest(); r != nil {
		t.Fatal("a request with a bad cookie reached the backend")
	}
	for _, path := range []string{"/api/me", "/api/securitysystems"} {
		if resp, body := b.do(t, b.client(t, good), "GET", path, "", nil); resp.StatusCode != 200 {
			t.Fatalf("the genuine cookie: %s = %d %s", path, resp.StatusCode, body)
		}
	}
}

func manyChunks(b *testBFF, n int, v string) []*http.Cookie {
	out := make([]*http.Cookie, n)
	for i := range out {
		out[i] = &http.Cookie{Name: b.svc.jar.chunkName(i), Value: v}
	}
	return out
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
