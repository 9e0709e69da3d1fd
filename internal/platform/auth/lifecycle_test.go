package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

func wantStatus(t *testing.T, v *Validator, tok string, status int) {
	t.Helper()
	rec, _ := serve(t, v, "Bearer "+tok)
	if rec.Code != status {
		t.Fatalf("status %d, want %d (%s)", rec.Code, status, rec.Header().Get("WWW-Authenticate"))
	}
	if status == http.StatusServiceUnavailable && rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("503 with a challenge %q", rec.Header().Get("WWW-Authenticate"))
	}
}

func TestRotatedKeyAcceptedWithoutRestart(t *testing.T) {
	e := newTestEnv(t)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)

	e.iss.setKeys(mainKID, rotatedKID)
	e.clock.Advance(DefaultJWKSMinRefreshInterval + time.Second)
	s := e.goodSpec()
	s.key, s.kid = testKeys().rotated, rotatedKID
	before := e.iss.jwksHits.Load()
	wantStatus(t, e.v, sign(t, s), http.StatusNoContent)
	if got := e.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for the rotated key, want 1", got)
	}
	// Both keys are now cached: no further fetch.
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	wantStatus(t, e.v, sign(t, s), http.StatusNoContent)
	if got := e.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches, want 1", got)
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	e := newTestEnv(t)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	e.clock.Advance(time.Minute)
	// The rotated key appears only after the first refetch: within the
	// rate limit it stays unknown.
	s := e.goodSpec()
	s.key, s.kid = testKeys().rotated, rotatedKID
	before := e.iss.jwksHits.Load()
	wantStatus(t, e.v, sign(t, s), http.StatusUnauthorized)
	e.iss.setKeys(mainKID, rotatedKID)
	wantStatus(t, e.v, sign(t, s), http.StatusUnauthorized)
	if got := e.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches within the rate limit, want 1", got)
	}
	e.clock.Advance(DefaultJWKSMinRefreshInterval)
	wantStatus(t, e.v, sign(t, s), http.StatusNoContent)
}

func TestUnknownKidBurstFetchesOnce(t *testing.T) {
	e := newTestEnv(t)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	e.clock.Advance(time.Minute)
	before := e.iss.jwksHits.Load()
	var wg sync.WaitGroup
	for i := range 32 {
		s := e.goodSpec()
		s.key, s.kid = testKeys().attacker, fmt.Sprintf("forged-%d", i)
		tok := sign(t, s)
		wg.Go(func() {
			_, err := e.v.Validate(context.Background(), tok)
			if !apperr.Is(err, apperr.Unauthenticated) {
				t.Errorf("forged kid: %v", err)
			}
		})
	}
	wg.Wait()
	if got := e.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for a burst of unknown kids, want 1", got)
	}
}

func TestRemovedKeyRejected(t *testing.T) {
	e := newTestEnv(t)
	e.iss.setKeys(mainKID, rotatedKID)
	s := e.goodSpec()
	s.key, s.kid = testKeys().rotated, rotatedKID
	s.claims["exp"] = e.clock.Now().Unix() + 60
	tok := sign(t, s)
	wantStatus(t, e.v, tok, http.StatusNoContent)

	// The token expires, then the issuer withdraws its key.
	e.clock.Advance(2 * time.Minute)
	e.iss.setKeys(mainKID)
	wantStatus(t, e.v, tok, http.StatusUnauthorized)

	// Once the cached JWKS is older than its max age it is refreshed in
	// the background, after which even a fresh token under the withdrawn
	// key is refused.
	e.clock.Advance(DefaultJWKSMaxAge)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	deadline := time.Now().Add(5 * time.Second)
	for e.v.keys.Load().keys[rotatedKID] != nil {
		if time.Now().After(deadline) {
			t.Fatal("the withdrawn key is still cached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.claims = e.claims()
	_, err := e.v.Validate(context.Background(), sign(t, s))
	if !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("token under a withdrawn key: %v", err)
	}
}

func TestIssuerDownAtFirstUse(t *testing.T) {
	e := newTestEnv(t)
	tok := e.good(t)
	e.iss.down.Store(true)
	wantStatus(t, e.v, tok, http.StatusServiceUnavailable)
	if err := e.v.Ready(context.Background()); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("Ready with the issuer down: %v", err)
	}
	// The issuer comes up: the service recovers without restart.
	e.iss.down.Store(false)
	e.clock.Advance(coldRetryInterval)
	wantStatus(t, e.v, tok, http.StatusNoContent)
	if err := e.v.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestIssuerUnreachableAtFirstUse(t *testing.T) {
	e := newTestEnv(t)
	tok := e.good(t)
	e.iss.srv.Close() // connection refused, not an HTTP error
	wantStatus(t, e.v, tok, http.StatusServiceUnavailable)
}

func TestIssuerDownAfterKeysCached(t *testing.T) {
	e := newTestEnv(t)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	e.iss.down.Store(true)
	e.clock.Advance(time.Minute)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	// An unknown kid cannot be checked while the issuer is down: it might
	// be a fresh rotation. Fail closed with 503, never accept.
	s := e.goodSpec()
	s.key, s.kid = testKeys().rotated, rotatedKID
	wantStatus(t, e.v, sign(t, s), http.StatusServiceUnavailable)
	// Known kids keep working, also past the JWKS max age.
	e.clock.Advance(DefaultJWKSMaxAge + time.Minute)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	if err := e.v.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with cached keys: %v", err)
	}
}

// TestIssuerDownPastHardMaxAge checks that cached keys are not trusted
// forever while the issuer stays unreachable: past JWKSHardMaxAge every
// token is refused with 503 (fail closed), and service resumes as soon as a
// refresh succeeds.
func TestIssuerDownPastHardMaxAge(t *testing.T) {
	e := newTestEnv(t)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	e.iss.down.Store(true)
	// Still within the hard maximum age: the known key keeps working.
	e.clock.Advance(DefaultJWKSHardMaxAge - time.Minute)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	e.clock.Advance(2 * time.Minute)
	wantStatus(t, e.v, e.good(t), http.StatusServiceUnavailable)
	if err := e.v.Ready(context.Background()); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("Ready with expired keys and the issuer down: %v", err)
	}
	// Repeated requests stay refused and do not hammer the issuer.
	wantStatus(t, e.v, e.good(t), http.StatusServiceUnavailable)

	e.iss.down.Store(false)
	e.clock.Advance(coldRetryInterval)
	wantStatus(t, e.v, e.good(t), http.StatusNoContent)
	if err := e.v.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after the issuer returned: %v", err)
	}
}

func TestDiscoveryIssuerMismatchFailsClosed(t *testing.T) {
	e := newTestEnv(t)
	evil := "http://evil.example"
	e.iss.issuerOverride.Store(&evil)
	wantStatus(t, e.v, e.good(t), http.StatusServiceUnavailable)
	if e.iss.jwksHits.Load() != 0 {
		t.Fatal("the JWKS of a mismatched issuer was fetched")
	}
}

func TestMalformedAuthorizationHeaders(t *testing.T) {
	e := newTestEnv(t)
	tok := e.good(t)
	for _, h := range []string{"Bearer", "Bearer ", "Bearer  ", "Bearer a b", "Bearer\t" + tok} {
		rec, _ := serve(t, e.v, h)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%q: status %d", h, rec.Code)
		}
	}
	// Two Authorization headers are ambiguous.
	h := e.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached") }))
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header.Add("Authorization", "Bearer "+tok)
	req.Header.Add("Authorization", "Bearer "+tok)
	rec := &recorder{h: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.code != http.StatusUnauthorized || !strings.HasPrefix(rec.h.Get("WWW-Authenticate"), invalidChallenge) {
		t.Errorf("two headers: %d %q", rec.code, rec.h.Get("WWW-Authenticate"))
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

func TestRejectionMetrics(t *testing.T) {
	iss := newTestIssuer(t)
	reg := prometheus.NewRegistry()
	clock := newFakeClock()
	v, err := NewValidator(Options{Issuer: iss.srv.URL, Audience: testAudience, HTTPClient: iss.srv.Client(),
		Clock: clock.Now, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{iss: iss, clock: clock, v: v}
	s := e.goodSpec()
	s.claims["exp"] = clock.Now().Unix() - 3600
	_, _ = v.Validate(context.Background(), sign(t, s))
	serve(t, v, "")
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "realguardio_auth_token_rejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got[reasonExpired] != 1 || got[reasonMissing] != 1 || got[reasonSignature] != 0 || len(got) != len(allReasons) {
		t.Errorf("rejections %v", got)
	}
}

func TestNewValidatorOptions(t *testing.T) {
	for _, o := range []Options{
		{Audience: testAudience},
		{Issuer: "localhost:9000", Audience: testAudience},
		{Issuer: "http://localhost:9000"},
		{Issuer: "http://localhost:9000", Audience: testAudience, Leeway: time.Minute},
		{Issuer: "http://localhost:9000", Audience: testAudience, MaxTokenBytes: -1},
		{Issuer: "http://localhost:9000", Audience: testAudience, JWKSHardMaxAge: -time.Hour},
		{Issuer: "http://localhost:9000", Audience: testAudience, JWKSMaxAge: 2 * time.Hour},
	} {
		if _, err := NewValidator(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// FuzzValidate feeds arbitrary strings to Validate. It must never panic,
// must only ever answer Unauthenticated (the issuer is up), and may only
// accept a token whose signature verifies under the test key and whose
// claims are good.
func FuzzValidate(f *testing.F) {
	e := newTestEnv(f)
	good := e.good(f)
	f.Add(good)
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1])
	f.Add(good + ".e30.e30")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Add("...")
	f.Add(`{"protected":"e30","payload":"e30","signature":""}`)
	s := e.goodSpec()
	s.typ = "JWT"
	f.Add(sign(f, s))
	s = e.goodSpec()
	s.claims["exp"] = 1
	f.Add(sign(f, s))
	if err := e.v.Ready(context.Background()); err != nil {
		f.Fatal(err)
	}
	pub := &testKeys().main.PublicKey
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := e.v.Validate(context.Background(), raw)
		if err != nil {
			if !apperr.Is(err, apperr.Unauthenticated) {
				t.Fatalf("error of code %s: %v", apperr.CodeOf(err), err)
			}
			return
		}
		// Accepted: it must be a genuine token of the test key.
		i := strings.LastIndexByte(raw, '.')
		sig, derr := base64.RawURLEncoding.DecodeString(raw[i+1:])
		sum := sha256.Sum256([]byte(raw[:i]))
		if derr != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
			t.Fatalf("accepted a token not signed by the test key: %q", raw)
		}
		payload, derr := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
		var claims map[string]any
		if derr != nil || json.Unmarshal(payload, &claims) != nil {
			t.Fatalf("accepted undecodable claims: %q", raw)
		}
		if claims["iss"] != e.iss.srv.URL || claims["sub"] != c.Subject || !AudienceContains(claims["aud"], testAudience) {
			t.Fatalf("accepted bad claims %v", claims)
		}
		if exp, _ := claims["exp"].(float64); exp < float64(e.clock.Now().Unix())-DefaultLeeway.Seconds() {
			t.Fatalf("accepted an expired token")
		}
	})
}
