package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// This file is the test issuer: an httptest server serving discovery and a
// JWKS whose content tests change at will, RSA keys generated once per test
// binary, and helpers that sign tokens with any header.

const (
	testAudience = "realguardio-customer"
	testSubject  = "8d1f5a2e-3b7c-4e0f-9a61-2c5d8e7f9b10"
	testClient   = "realguardio-bff"
	mainKID      = "key-2026-01"
	rotatedKID   = "key-2026-02"
	smallKID     = "key-small"
)

// Keys are generated once: RSA generation dominates test time otherwise.
var testKeys = sync.OnceValue(func() (k struct{ main, rotated, attacker, small *rsa.PrivateKey }) {
	gen := func(bits int) *rsa.PrivateKey {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		return key
	}
	k.main, k.rotated, k.attacker, k.small = gen(2048), gen(2048), gen(2048), gen(1024)
	return k
})

// fakeClock is a settable clock shared by the validator and the token
// factory, so expiry and refresh intervals are tested without sleeping.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testIssuer serves discovery and the JWKS.
type testIssuer struct {
	srv *httptest.Server
	// issuerOverride, when set, is what discovery claims as issuer.
	issuerOverride atomic.Pointer[string]
	down           atomic.Bool
	jwksHits       atomic.Int32
	discoveryHits  atomic.Int32

	mu   sync.Mutex
	keys []jose.JSONWebKey
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveryHits.Add(1)
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		issuer := iss.srv.URL
		if o := iss.issuerOverride.Load(); o != nil {
			issuer = *o
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": iss.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksHits.Add(1)
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), iss.keys...)}
		iss.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.setKeys(mainKID)
	return iss
}

// publicJWK returns the JWKS entry for one of the test keys.
func publicJWK(kid string) jose.JSONWebKey {
	k := testKeys()
	var pub *rsa.PublicKey
	switch kid {
	case mainKID:
		pub = &k.main.PublicKey
	case rotatedKID:
		pub = &k.rotated.PublicKey
	case smallKID:
		pub = &k.small.PublicKey
	default:
		panic("unknown test kid " + kid)
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// setKeys replaces the published JWKS with the named keys.
func (iss *testIssuer) setKeys(kids ...string) {
	keys := make([]jose.JSONWebKey, 0, len(kids))
	for _, kid := range kids {
		keys = append(keys, publicJWK(kid))
	}
	iss.mu.Lock()
	iss.keys = keys
	iss.mu.Unlock()
}

// testEnv is one validator against one test issuer.
type testEnv struct {
	iss   *testIssuer
	clock *fakeClock
	v     *Validator
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	iss := newTestIssuer(t)
	clock := newFakeClock()
	v, err := NewValidator(Options{
		Issuer:     iss.srv.URL,
		Audience:   testAudience,
		HTTPClient: iss.srv.Client(),
		Clock:      clock.Now,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{iss: iss, clock: clock, v: v}
}

// claims returns the claims of a good user access token at the env's time.
func (e *testEnv) claims() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{
		"iss":       e.iss.srv.URL,
		"sub":       testSubject,
		"aud":       []string{testAudience, "realguardio-dealer"},
		"exp":       now + 300,
		"iat":       now,
		"jti":       "2b9c1e0a-7f3d-4c55-8e21-6a0b9d4f3c12",
		"client_id": testClient,
		"scope":     "openid profile",
		"roles":     []string{RoleCustomerEmployee},
	}
}

// tokenSpec describes a token to sign with go-jose.
type tokenSpec struct {
	key      any // *rsa.PrivateKey or []byte for HMAC
	alg      jose.SignatureAlgorithm
	kid      string // "" omits the header
	typ      string // "" omits the header
	embedJWK bool
	headers  map[string]any
	claims   map[string]any
}

// goodSpec is a token the validator must accept.
func (e *testEnv) goodSpec() tokenSpec {
	return tokenSpec{key: testKeys().main, alg: jose.RS256, kid: mainKID, typ: "at+jwt", claims: e.claims()}
}

func (e *testEnv) good(t testing.TB) string { return sign(t, e.goodSpec()) }

func sign(t testing.TB, s tokenSpec) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: s.embedJWK}
	if s.kid != "" {
		opts.WithHeader("kid", s.kid)
	}
	if s.typ != "" {
		opts.WithType(jose.ContentType(s.typ))
	}
	for k, v := range s.headers {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	key := s.key
	if priv, ok := key.(*rsa.PrivateKey); ok && s.embedJWK {
		// EmbedJWK needs a JWK signing key to know what to embed.
		key = jose.JSONWebKey{Key: priv, Algorithm: string(s.alg)}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(s.claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned builds "header.payload." by hand, for tokens no signer makes
// (alg none).
func unsigned(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c) + "."
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
