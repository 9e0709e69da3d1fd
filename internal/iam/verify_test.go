package iam

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/auth"
)

// TestOwnTokensValidatedStrictly signs tokens with the IAM's real key that
// the audit's looser IAM validator accepted, and sends them to the two
// places the IAM checks its own tokens (/userinfo and the users API). The
// well-formed one is accepted, so every refusal is the validator's rule.
func TestOwnTokensValidatedStrictly(t *testing.T) {
	e := newEnv(t, envOpts{})
	adminID := e.createUser(t, "root@example.com", "root-password", auth.RoleAdmin)
	k, err := e.svc.keys.current()
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	signRaw := func(header, payload []byte) string {
		input := enc(header) + "." + enc(payload)
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.private, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + enc(sig)
	}
	header := []byte(`{"alg":"RS256","kid":"` + k.id + `","typ":"at+jwt"}`)
	claims := func(mod func(map[string]any)) []byte {
		now := e.clock.now().Unix()
		c := map[string]any{
			"iss": e.issuer, "sub": adminID, "aud": []string{AudienceIAM}, "exp": now + 300, "iat": now, "nbf": now,
			"jti": "j", "client_id": ClientBFF, "scope": "openid profile", "roles": []string{auth.RoleAdmin},
		}
		if mod != nil {
			mod(c)
		}
		b, _ := json.Marshal(c)
		return b
	}
	good := signRaw(header, claims(nil))
	cases := []struct {
		name    string
		headers []string // Authorization header values
		want    int
	}{
		{"well-formed", []string{"Bearer " + good}, http.StatusOK},
		{"non-canonical base64", []string{"Bearer " + good[:len(good)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", good[len(good)-1])|1])}, http.StatusUnauthorized},
		{"whitespace inside", []string{"Bearer " + strings.Replace(good, ".", ". ", 1)}, http.StatusUnauthorized},
		{"JWS JSON serialization", []string{"Bearer " + func() string {
			p := strings.Split(good, ".")
			return `{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`
		}()}, http.StatusUnauthorized},
		{"two Authorization headers", []string{"Bearer " + good, "Bearer " + good}, http.StatusUnauthorized},
		{"duplicate sub", []string{"Bearer " + signRaw(header, func() []byte {
			b := claims(func(c map[string]any) { c["sub"] = "someone-else" })
			return append(b[:len(b)-1], []byte(`,"sub":"`+adminID+`"}`)...)
		}())}, http.StatusUnauthorized},
		{"iat in the future", []string{"Bearer " + signRaw(header, claims(func(c map[string]any) { c["iat"] = e.clock.now().Unix() + 3600 }))}, http.StatusUnauthorized},
		{"roles of the wrong type", []string{"Bearer " + signRaw(header, claims(func(c map[string]any) { c["roles"] = auth.RoleAdmin }))}, http.StatusUnauthorized},
		{"client_id of the wrong type", []string{"Bearer " + signRaw(header, claims(func(c map[string]any) { c["client_id"] = 7 }))}, http.StatusUnauthorized},
		{"crit []", []string{"Bearer " + signRaw([]byte(`{"alg":"RS256","crit":[],"kid":"`+k.id+`","typ":"at+jwt"}`), claims(nil))}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		for _, path := range []string{"/userinfo", "/api/users/" + adminID} {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, e.issuer+path, nil)
			for _, h := range c.headers {
				req.Header.Add("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s at %s: %d, want %d", c.name, path, resp.StatusCode, c.want)
			}
			if c.want == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("%s at %s: challenge %q", c.name, path, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
}
