package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const invalidChallenge = `Bearer error="invalid_token", error_description="`

// attackerServer serves the attacker's JWKS and certificate for jku and
// x5u headers and counts requests: the validator must never make one.
func attackerServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &testKeys().attacker.PublicKey, KeyID: mainKID, Algorithm: "RS256", Use: "sig",
		}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func publicKeyPEM(t *testing.T) []byte {
	der, err := x509.MarshalPKIXPublicKey(&testKeys().main.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func attackerCertificate(t *testing.T) string {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	k := testKeys().attacker
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// signRawHeader signs exactly header (bytes no JSON encoder would write)
// and claims with the issuer's real key.
func signRawHeader(t *testing.T, header []byte, claims map[string]any) string {
	t.Helper()
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(header) + "." + b64(p)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, testKeys().main, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// replacePart swaps segment i of a compact token.
func replacePart(tok string, i int, part string) string {
	parts := strings.Split(tok, ".")
	parts[i] = part
	return strings.Join(parts, ".")
}

// TestTokenMatrix drives every kind of bad (and a few good) tokens through
// the middleware and checks status, challenge, and how many JWKS fetches
// the request caused.
func TestTokenMatrix(t *testing.T) {
	attacker, attackerHits := attackerServer(t)
	keys := testKeys()
	type tc struct {
		name string
		// setup runs after the validator cached the JWKS.
		setup func(e *testEnv)
		token func(t *testing.T, e *testEnv) string
		// status is 204 (accepted), 401 or 503.
		status int
		// fetches is the number of JWKS fetches the request may cause.
		fetches int32
		// detail, when set, must appear in the challenge.
		detail string
	}
	spec := func(mod func(s *tokenSpec, e *testEnv)) func(t *testing.T, e *testEnv) string {
		return func(t *testing.T, e *testEnv) string {
			s := e.goodSpec()
			mod(&s, e)
			return sign(t, s)
		}
	}
	none := func(alg string) func(t *testing.T, e *testEnv) string {
		return func(t *testing.T, e *testEnv) string {
			return unsigned(t, map[string]any{"alg": alg, "typ": "at+jwt", "kid": mainKID}, e.claims())
		}
	}
	cases := []tc{
		{name: "valid", token: spec(func(*tokenSpec, *testEnv) {}), status: 204},
		{name: "typ upper case", token: spec(func(s *tokenSpec, _ *testEnv) { s.typ = "AT+JWT" }), status: 204},
		{name: "typ application/at+jwt", token: spec(func(s *tokenSpec, _ *testEnv) { s.typ = "application/at+jwt" }), status: 204},
		{name: "expired within leeway", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["exp"] = e.clock.Now().Unix() - 10 }), status: 204},
		{name: "aud as string", token: spec(func(s *tokenSpec, _ *testEnv) { s.claims["aud"] = testAudience }), status: 204},

		{name: "alg none", token: none("none"), status: 401},
		{name: "alg None", token: none("None"), status: 401},
		{name: "alg NONE", token: none("NONE"), status: 401},
		{name: "alg nOnE", token: none("nOnE"), status: 401},
		{name: "alg none with a signature", token: func(t *testing.T, e *testEnv) string {
			return none("none")(t, e) + strings.Split(e.good(t), ".")[2]
		}, status: 401},
		{name: "HS256 keyed with the RSA public key", token: func(t *testing.T, e *testEnv) string {
			return sign(t, tokenSpec{key: publicKeyPEM(t), alg: jose.HS256, kid: mainKID, typ: "at+jwt", claims: e.claims()})
		}, status: 401, detail: "algorithm"},
		{name: "RS512", token: spec(func(s *tokenSpec, _ *testEnv) { s.alg = jose.RS512 }), status: 401, detail: "algorithm"},
		{name: "PS256", token: spec(func(s *tokenSpec, _ *testEnv) { s.alg = jose.PS256 }), status: 401, detail: "algorithm"},
		{name: "unknown kid refetches once", token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.kid = keys.attacker, "attacker-1" }), status: 401, fetches: 1, detail: "unknown"},
		{name: "kid path traversal", token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.kid = keys.attacker, "../../etc/passwd" }), status: 401, fetches: 1},
		{name: "kid SQL", token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.kid = keys.attacker, "' OR 1=1 --" }), status: 401, fetches: 1},
		{name: "missing kid", token: spec(func(s *tokenSpec, _ *testEnv) { s.kid = "" }), status: 401},
		{name: "jku to attacker JWKS", token: spec(func(s *tokenSpec, _ *testEnv) {
			s.key, s.kid, s.headers = keys.attacker, "attacker-jku", map[string]any{"jku": attacker.URL + "/jwks"}
		}), status: 401, fetches: 1},
		{name: "x5u to attacker certificate", token: spec(func(s *tokenSpec, _ *testEnv) {
			s.key, s.kid, s.headers = keys.attacker, "attacker-x5u", map[string]any{"x5u": attacker.URL + "/cert.pem"}
		}), status: 401, fetches: 1},
		{name: "jku with a real kid", token: spec(func(s *tokenSpec, _ *testEnv) {
			s.key, s.headers = keys.attacker, map[string]any{"jku": attacker.URL + "/jwks"}
		}), status: 401, detail: "signature"},
		{name: "embedded jwk with a real kid", token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.embedJWK = keys.attacker, true }), status: 401, detail: "signature"},
		{name: "embedded jwk without kid", token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.kid, s.embedJWK = keys.attacker, "", true }), status: 401},
		{name: "x5c with the attacker certificate", token: func(t *testing.T, e *testEnv) string {
			s := e.goodSpec()
			s.key, s.headers = keys.attacker, map[string]any{"x5c": []string{attackerCertificate(t)}}
			return sign(t, s)
		}, status: 401},
		{name: "expired", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["exp"] = e.clock.Now().Unix() - 31 }), status: 401, detail: "token expired"},
		{name: "missing exp", token: spec(func(s *tokenSpec, _ *testEnv) { delete(s.claims, "exp") }), status: 401},
		{name: "exp as string", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["exp"] = "9999999999" }), status: 401},
		{name: "nbf in the future", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["nbf"] = e.clock.Now().Unix() + 120 }), status: 401, detail: "not yet valid"},
		{name: "iat far in the future", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["iat"] = e.clock.Now().Unix() + 3600 }), status: 401},
		{name: "wrong iss", token: spec(func(s *tokenSpec, _ *testEnv) { s.claims["iss"] = "http://evil.example" }), status: 401, detail: "issuer"},
		{name: "iss with trailing slash", token: spec(func(s *tokenSpec, e *testEnv) { s.claims["iss"] = e.iss.srv.URL + "/" }), status: 401},
		{name: "wrong aud", token: spec(func(s *tokenSpec, _ *testEnv) { s.claims["aud"] = []string{"realguardio-dealer"} }), status: 401, detail: "token audience does not include realguardio-customer"},
		{name: "missing aud", token: spec(func(s *tokenSpec, _ *testEnv) { delete(s.claims, "aud") }), status: 401},
		{name: "missing sub", token: spec(func(s *tokenSpec, _ *testEnv) { delete(s.claims, "sub") }), status: 401},
		{name: "roles not an array", token: spec(func(s *tokenSpec, _ *testEnv) { s.claims["roles"] = RoleAdmin }), status: 401},
		{name: "ID token typ JWT", token: spec(func(s *tokenSpec, _ *testEnv) { s.typ = "JWT" }), status: 401, detail: "at+jwt"},
		{name: "missing typ", token: spec(func(s *tokenSpec, _ *testEnv) { s.typ = "" }), status: 401},
		{name: "unknown crit", token: spec(func(s *tokenSpec, _ *testEnv) {
			s.headers = map[string]any{"crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true}
		}), status: 401},
		{name: "crit b64 unencoded payload", token: func(t *testing.T, e *testEnv) string {
			opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", mainKID).WithBase64(false)
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: keys.main}, opts)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte("abc"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := jws.DetachedCompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return replacePart(out, 1, "abc")
		}, status: 401},
		{name: "duplicate sub claim", token: func(t *testing.T, e *testEnv) string {
			s := e.goodSpec()
			s.claims["sub"] = "victim"
			p, _ := json.Marshal(s.claims)
			p = append(p[:len(p)-1], []byte(`,"sub":"`+testSubject+`"}`)...)
			return signPayload(t, s, p)
		}, status: 401},
		{name: "non-UTF-8 header bytes", token: func(t *testing.T, e *testEnv) string {
			return signRawHeader(t, []byte(`{"alg":"RS256","kid":"`+mainKID+`","typ":"at+jwt","x":"`+"\xff\xfe"+`"}`), e.claims())
		}, status: 401, detail: "header"},
		{name: "duplicate kid header member", token: func(t *testing.T, e *testEnv) string {
			return signRawHeader(t, []byte(`{"alg":"RS256","kid":"attacker-1","typ":"at+jwt","kid":"`+mainKID+`"}`), e.claims())
		}, status: 401, detail: "header"},
		{name: "empty crit", token: spec(func(s *tokenSpec, _ *testEnv) { s.headers = map[string]any{"crit": []string{}} }), status: 401},
		{name: "tampered payload", token: func(t *testing.T, e *testEnv) string {
			c := e.claims()
			c["roles"] = []string{RoleAdmin}
			p, _ := json.Marshal(c)
			return replacePart(e.good(t), 1, b64(p))
		}, status: 401, detail: "signature"},
		{name: "empty signature", token: func(t *testing.T, e *testEnv) string { return replacePart(e.good(t), 2, "") }, status: 401},
		{name: "non-canonical signature encoding", token: func(t *testing.T, e *testEnv) string {
			tok := e.good(t)
			// A 256-byte signature encodes to 342 characters whose last
			// carries 4 unused bits; setting one keeps the decoded bytes.
			last := tok[len(tok)-1]
			i := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
			return tok[:len(tok)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i|1])
		}, status: 401},
		{name: "malformed base64", token: func(t *testing.T, e *testEnv) string { return replacePart(e.good(t), 1, "eyJzdWIi*?") }, status: 401},
		{name: "padded base64", token: func(t *testing.T, e *testEnv) string {
			h := strings.Split(e.good(t), ".")[0]
			return replacePart(e.good(t), 0, h+strings.Repeat("=", (4-len(h)%4)%4))
		}, status: 401},
		{name: "two parts", token: func(t *testing.T, e *testEnv) string {
			p := strings.Split(e.good(t), ".")
			return p[0] + "." + p[1]
		}, status: 401},
		{name: "JWE five parts", token: func(t *testing.T, e *testEnv) string {
			enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &keys.main.PublicKey, KeyID: mainKID},
				(&jose.EncrypterOptions{}).WithType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			p, _ := json.Marshal(e.claims())
			obj, err := enc.Encrypt(p)
			if err != nil {
				t.Fatal(err)
			}
			out, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, status: 401, detail: "compact JWS"},
		{name: "JSON serialization", token: func(t *testing.T, e *testEnv) string {
			p := strings.Split(e.good(t), ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
		}, status: 401},
		{name: "oversized", token: spec(func(s *tokenSpec, _ *testEnv) { s.claims["pad"] = strings.Repeat("x", 16<<10) }), status: 401, detail: "too large"},
		{name: "1024-bit key in JWKS", setup: func(e *testEnv) {
			// Cache a JWKS that lists the small key, as a fresh
			// validator would.
			e.iss.setKeys(mainKID, smallKID)
			e.v.keys.Store(nil)
			if err := e.v.Ready(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, token: spec(func(s *tokenSpec, _ *testEnv) { s.key, s.kid = keys.small, smallKID }), status: 401, detail: "not acceptable"},
	}
	// Each case runs cold, and warm: after a good token cached its header,
	// so that bad tokens sharing that header take the cached-header path.
	for _, c := range cases {
		for _, warm := range []bool{false, true} {
			name := c.name
			if warm {
				name += " (warm)"
			}
			t.Run(name, func(t *testing.T) {
				e := newTestEnv(t)
				if err := e.v.Ready(context.Background()); err != nil {
					t.Fatal(err)
				}
				if warm {
					if _, err := e.v.Validate(context.Background(), e.good(t)); err != nil {
						t.Fatal(err)
					}
				}
				// Past the refresh rate limit, within the JWKS max age.
				e.clock.Advance(time.Minute)
				if c.setup != nil {
					c.setup(e)
				}
				tok := c.token(t, e)
				before := e.iss.jwksHits.Load()
				rec, caller := serve(t, e.v, "Bearer "+tok)
				if rec.Code != c.status {
					t.Fatalf("status %d, want %d; challenge %q", rec.Code, c.status, rec.Header().Get("WWW-Authenticate"))
				}
				challenge := rec.Header().Get("WWW-Authenticate")
				t.Logf("%d %s", rec.Code, challenge)
				switch c.status {
				case 204:
					if caller == nil || caller.Subject != testSubject || challenge != "" {
						t.Fatalf("caller %+v challenge %q", caller, challenge)
					}
				case 401:
					if !strings.HasPrefix(challenge, invalidChallenge) || !strings.Contains(challenge, c.detail) {
						t.Fatalf("challenge %q, want invalid_token mentioning %q", challenge, c.detail)
					}
					if strings.Contains(challenge, tok) || strings.Contains(rec.Body.String(), tok) {
						t.Fatal("the response echoes the token")
					}
				}
				if got := e.iss.jwksHits.Load() - before; got != c.fetches {
					t.Fatalf("%d JWKS fetches, want %d", got, c.fetches)
				}
			})
		}
	}

	if n := attackerHits.Load(); n != 0 {
		t.Fatalf("the validator contacted the attacker's server %d times", n)
	}
}

// signPayload signs arbitrary payload bytes with the spec's key and headers.
func signPayload(t *testing.T, s tokenSpec, payload []byte) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(s.typ)).WithHeader("kid", s.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
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
