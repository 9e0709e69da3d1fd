package bff

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func mustCodec(t *testing.T, keys ...string) *codec {
	t.Helper()
	k, err := parseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	return newCodec(k, time.Now)
}

func TestCodecRoundTripAndRotation(t *testing.T) {
	oldKey, newKeyS := newKey(t), newKey(t)
	old := mustCodec(t, oldKey)
	rotated := mustCodec(t, newKeyS, oldKey)

	v, err := old.seal(purposeSession, testSession("at"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got session
	if err := rotated.open(purposeSession, v, &got); err != nil {
		t.Fatalf("rotated codec must open a value sealed with the old key: %v", err)
	}
	if got.Access != "at" || got.Subject != "user-1" {
		t.Fatalf("round trip lost data: %+v", got)
	}
	// The new key encrypts: the old-only codec cannot open a new value.
	v2, _ := rotated.seal(purposeSession, testSession("at2"), time.Hour)
	if err := old.open(purposeSession, v2, &got); err == nil {
		t.Fatal("a value sealed with the new key opened with only the old key")
	}
	if err := mustCodec(t, newKeyS).open(purposeSession, v2, &got); err != nil || got.Access != "at2" {
		t.Fatalf("new key must open its own value: %v", err)
	}
}

func TestCodecRefusesTamperingPurposeAndExpiry(t *testing.T) {
	c := mustCodec(t, newKey(t))
	v, _ := c.seal(purposeSession, testSession("at"), time.Hour)
	var s session
	// Flip one character of the ciphertext part.
	parts := strings.Split(v, ".")
	ct := []byte(parts[3])
	if ct[0] == 'A' {
		ct[0] = 'B'
	} else {
		ct[0] = 'A'
	}
	parts[3] = string(ct)
	for name, bad := range map[string]string{
		"tampered": strings.Join(parts, "."),
		"garbage":  "not-a-jwe",
		"empty":    "",
		"foreign": func() string {
			v, _ := mustCodec(t, newKey(t)).seal(purposeSession, testSession("x"), time.Hour)
			return v
		}(),
	} {
		if err := c.open(purposeSession, bad, &s); err == nil {
			t.Errorf("%s value opened", name)
		}
	}
	if err := c.open(purposeLogin, v, &s); err == nil {
		t.Error("a session value opened as login state")
	}
	expired, _ := c.seal(purposeSession, testSession("at"), -time.Second)
	if err := c.open(purposeSession, expired, &s); err == nil {
		t.Error("an expired value opened")
	}
}

func TestParseKeys(t *testing.T) {
	if _, err := parseKeys(nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := parseKeys([]string{"c2hvcnQ="}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := parseKeys([]string{"!!!"}); err == nil {
		t.Error("non-base64 key accepted")
	}
}

func TestChunkingSplitsReassemblesAndDeletesStaleChunks(t *testing.T) {
	jar := cookieJar{}
	big := strings.Repeat("x", 3*chunkSize+10)
	rec := httptest.NewRecorder()
	jar.writeChunks(rec, httptest.NewRequest("GET", "/", nil), big, 60)
	cookies := rec.Result().Cookies()
	if len(cookies) != 4 {
		t.Fatalf("want 4 chunks, got %d", len(cookies))
	}
	for _, c := range cookies {
		if len(c.String()) > 4096 {
			t.Errorf("cookie %s is %d bytes, over the browser limit", c.Name, len(c.String()))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s lacks HttpOnly or SameSite=Lax", c.Name)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	if got := readChunks(req); got != big {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(big))
	}
	// Shrinking to one chunk deletes chunks 1..3.
	rec = httptest.NewRecorder()
	jar.writeChunks(rec, req, "small", 60)
	var set, deleted int
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			deleted++
		} else {
			set++
		}
	}
	if set != 1 || deleted != 3 {
		t.Fatalf("shrinking: set %d deleted %d, want 1 and 3", set, deleted)
	}
}

func TestBigSessionThroughTheServiceIsChunkedAndReadBack(t *testing.T) {
	b := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, nil)
	sess := testSession("")
	roles := make([]string, 400)
	for i := range roles {
		roles[i] = "LOCATION_ROLE_" + strings.Repeat("Z", 10)
	}
	sess.Access = fakeJWT(map[string]any{"sub": "user-1", "roles": roles, "exp": time.Now().Add(time.Hour).Unix()})
	sess.Roles = roles
	cookies := b.mintSession(t, sess)
	if len(cookies) < 3 {
		t.Fatalf("a %d-byte token should need several chunks, got %d", len(sess.Access), len(cookies))
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	got, err := b.svc.readSession(req)
	if err != nil || got.Access != sess.Access {
		t.Fatalf("big session did not read back: %v", err)
	}
}

func TestSafeReturnTo(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/admin/platform":       "/admin/platform",
		"/token?x=1":            "/token?x=1",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"evil.example":          "/",
		"/ok\r\nSet-Cookie: x":  "/",
	} {
		if got := safeReturnTo(in); got != want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRotationCacheBoundsAndExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newRotationCache(3, time.Minute, func() time.Time { return now })
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(k, nil)
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d, want at most 3", c.len())
	}
	if _, ok := c.get("a"); ok {
		t.Error("oldest entry not evicted")
	}
	if _, ok := c.get("d"); !ok {
		t.Error("newest entry missing")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.get("d"); ok {
		t.Error("expired entry returned")
	}
}

func TestSecureCookieRule(t *testing.T) {
	for u, local := range map[string]bool{
		"http://localhost:3000": true, "http://127.0.0.1:3000": true, "http://[::1]:3000": true,
		"https://localhost": false, "http://bff.example": false, "https://bff.example": false,
	} {
		b := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, func(c *Config, _ *Deps) { c.PublicURL = u })
		if b.svc.jar.secure == local {
			t.Errorf("%s: Secure=%v", u, b.svc.jar.secure)
		}
	}
}
