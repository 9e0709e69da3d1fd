package bff

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Cookie names. The session is always written as numbered chunks
// (rg_session.0, rg_session.1, ...) so that reading never has to guess
// whether a value was split. When the cookies are Secure they carry the
// __Host- prefix (cookieJar.name).
const (
	sessionCookie     = "rg_session"
	loginCookiePrefix = "rg_login."
	// hostPrefix makes the browser accept a cookie only when it is Secure,
	// has Path=/ and no Domain, i.e. was set by this very host. Without it
	// a sibling subdomain (evil.example.com next to bff.example.com) could
	// set Domain=example.com cookies of the same name, and plant its own
	// valid session (login CSRF) or login state (session fixation).
	hostPrefix = "__Host-"
	// chunkSize keeps every cookie (name, value and attributes) below the
	// 4096 bytes browsers accept for one cookie.
	chunkSize = 3800
	// maxChunks bounds what a request may make the BFF reassemble; browsers
	// cap the Cookie header anyway, and a larger session is a bug.
	maxChunks = 12
)

// Purposes bound into every sealed value, so that a login-state cookie can
// never be replayed as a session or the other way round.
const (
	purposeSession = "session"
	purposeLogin   = "login"
)

// session is what the BFF remembers about a logged-in browser. It lives in
// the session store shared by every BFF instance (sealed with the cookie
// keys); the cookie names it by ID and generation (sessionRef).
type session struct {
	// ID identifies the session; it is random and never leaves the
	// encrypted cookie (the store keeps only its hash).
	ID string `json:"sid"`
	// Gen is the session's generation, bumped at every refresh; it is the
	// store row's, not part of the sealed data.
	Gen int64 `json:"-"`
	// CSRF is the per-session anti-forgery token the UI echoes in the
	// X-CSRF-Token header. It is random rather than derived from the keys so
	// that a key rotation does not invalidate open pages.
	CSRF    string `json:"csrf"`
	Access  string `json:"at"`
	Refresh string `json:"rt,omitempty"`
	IDToken string `json:"it,omitempty"`
	Expiry  int64  `json:"exp"` // access token expiry, Unix seconds
	// Issued is when the BFF got the access token (Unix seconds), which
	// with Expiry gives its lifetime and so how early to refresh it.
	Issued  int64  `json:"iat,omitempty"`
	Subject string `json:"sub"`
	// IAMSID is the IAM's session id (the ID token's sid) that
	// back-channel logout names.
	IAMSID string   `json:"isid,omitempty"`
	Name   string   `json:"name,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	// Created bounds the absolute lifetime of the session.
	Created int64 `json:"created"`
}

// loginState is what the BFF must remember between /login and
// /auth/callback.
type loginState struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	ReturnTo string `json:"returnTo"`
}

// sealed is the plaintext of every JWE the BFF issues.
type sealed struct {
	Purpose string          `json:"p"`
	Expires int64           `json:"e"` // Unix seconds; the cookie's Max-Age is only advisory
	Data    json.RawMessage `json:"d"`
}

// codec seals and opens cookie values with JWE dir/A256GCM. The first key
// encrypts; every key decrypts, so keys rotate by prepending a new one and
// dropping the old one once the longest session has expired.
type codec struct {
	encKey []byte
	encKid string
	keys   map[string][]byte
	order  [][]byte
	now    func() time.Time
}

// keyID derives a short, non-secret identifier of a key for the JWE "kid"
// header, so decryption picks the right key without trying all of them.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("realguardio-bff-kid:"), key...))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// parseKeys decodes base64 (standard or URL alphabet, padded or not) 32-byte
// keys.
func parseKeys(encoded []string) ([][]byte, error) {
	var out [][]byte
	for i, s := range encoded {
		s = strings.TrimSpace(s)
		var key []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if key, err = enc.DecodeString(s); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("session key %d is not base64", i+1)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("session key %d has %d bytes, want 32", i+1, len(key))
		}
		out = append(out, key)
	}
	if len(out) == 0 {
		return nil, errors.New("at least one session key is required")
	}
	return out, nil
}

func newCodec(keys [][]byte, now func() time.Time) *codec {
	c := &codec{encKey: keys[0], encKid: keyID(keys[0]), keys: map[string][]byte{}, order: keys, now: now}
	for _, k := range keys {
		c.keys[keyID(k)] = k
	}
	return c
}

// seal encrypts v for purpose, valid for ttl.
func (c *codec) seal(purpose string, v any, ttl time.Duration) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(sealed{Purpose: purpose, Expires: c.now().Add(ttl).Unix(), Data: data})
	if err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.DIRECT, Key: c.encKey, KeyID: c.encKid},
		(&jose.EncrypterOptions{}).WithType("JWE"))
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(plain)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// open decrypts and authenticates value into v. Any failure (garbage,
// tampering, an unknown key, the wrong purpose, expiry) is reported as an
// error the caller treats as "no value": a bad cookie must never be more
// than an anonymous request.
func (c *codec) open(purpose, value string, v any) error {
	obj, err := jose.ParseEncryptedCompact(value, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return err
	}
	var plain []byte
	if key, ok := c.keys[obj.Header.KeyID]; ok {
		plain, err = obj.Decrypt(key)
	} else {
		// A value without a known kid may still come from a key configured
		// before kids were written; trying each key is cheap with a handful.
		err = errors.New("unknown key")
		for _, key := range c.order {
			if plain, err = obj.Decrypt(key); err == nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	var s sealed
	if err := json.Unmarshal(plain, &s); err != nil {
		return err
	}
	if s.Purpose != purpose {
		return errors.New("sealed value has another purpose")
	}
	if c.now().Unix() >= s.Expires {
		return errors.New("sealed value expired")
	}
	return json.Unmarshal(s.Data, v)
}

// cookieJar writes the BFF's cookies with the attributes they all share,
// and names them.
type cookieJar struct {
	secure bool
}

// name returns the cookie name for base: with the __Host- prefix when the
// cookies are Secure. Browsers refuse __Host- cookies without Secure, so on
// plain-HTTP localhost (the only place the BFF runs without Secure) the
// names stay unprefixed; a loopback origin has no sibling subdomains to
// defend against anyway.
func (j cookieJar) name(base string) string {
	if j.secure {
		return hostPrefix + base
	}
	return base
}

// chunkName is the name of session chunk i.
func (j cookieJar) chunkName(i int) string {
	return j.name(sessionCookie + "." + strconv.Itoa(i))
}

// loginName is the name of the login state cookie of a login whose state
// starts with key.
func (j cookieJar) loginName(key string) string {
	return j.name(loginCookiePrefix + key)
}

// chunkPrefix is what every session chunk's name starts with.
func (j cookieJar) chunkPrefix() string {
	return j.name(sessionCookie + ".")
}

// cookie builds a cookie with the shared attributes. Path=/, no Domain and
// Secure (when j.secure) are exactly what the __Host- prefix requires, so a
// prefixed cookie is never dropped by the browser.
func (j cookieJar) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   j.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// chunkIndexes returns the indexes of the cookies named prefix+N the
// request carries, sorted.
func chunkIndexes(r *http.Request, prefix string) []int {
	var idx []int
	for _, c := range r.Cookies() {
		rest, ok := strings.CutPrefix(c.Name, prefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 || n >= 64 {
			continue
		}
		idx = append(idx, n)
	}
	sort.Ints(idx)
	return idx
}

// readChunks reassembles the session value from the chunks 0, 1, ...; it
// stops at the first missing index, so stray higher chunks are ignored.
// Only j's names are read: when Secure, an unprefixed rg_session.N is
// exactly what a sibling subdomain could have planted, so it is no session.
func (j cookieJar) readChunks(r *http.Request) string {
	var b strings.Builder
	for i := 0; i < maxChunks; i++ {
		c, err := r.Cookie(j.chunkName(i))
		if err != nil {
			break
		}
		b.WriteString(c.Value)
	}
	return b.String()
}

// writeChunks sets value as numbered chunks and deletes every chunk the
// request carried beyond the new count, so a shrinking session leaves no
// stale tail that would corrupt the next reassembly.
func (j cookieJar) writeChunks(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	n := 0
	for len(value) > 0 {
		part := value
		if len(part) > chunkSize {
			part = value[:chunkSize]
		}
		value = value[len(part):]
		http.SetCookie(w, j.cookie(j.chunkName(n), part, maxAge))
		n++
	}
	for _, i := range chunkIndexes(r, j.chunkPrefix()) {
		if i >= n {
			http.SetCookie(w, j.cookie(j.chunkName(i), "", -1))
		}
	}
	j.clearUnprefixed(w, r)
}

// clearSession deletes every session chunk the request carried.
func (j cookieJar) clearSession(w http.ResponseWriter, r *http.Request) {
	for _, i := range chunkIndexes(r, j.chunkPrefix()) {
		http.SetCookie(w, j.cookie(j.chunkName(i), "", -1))
	}
	j.clearUnprefixed(w, r)
}

// clearUnprefixed deletes, when the cookies are Secure, the unprefixed
// session chunks the request carried: the BFF never reads them, and those
// it set itself before it used the __Host- prefix would otherwise ride
// along in every request (up to maxChunks × 4 KiB) until they expire.
// Planted ones with a Domain attribute are not removed by this host-only
// deletion, but they are ignored all the same.
func (j cookieJar) clearUnprefixed(w http.ResponseWriter, r *http.Request) {
	if !j.secure {
		return
	}
	for _, i := range chunkIndexes(r, sessionCookie+".") {
		http.SetCookie(w, j.cookie(sessionCookie+"."+strconv.Itoa(i), "", -1))
	}
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
