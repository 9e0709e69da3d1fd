package bff

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/realguardio/realguardio/internal/iam"
)

// iamAPI calls the IAM's users API with a bearer token.
func iamAPI(t *testing.T, ri *realIAM, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, ri.issuer+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

// status is the BFF's answer to GET path with cookies.
func status(t *testing.T, b *testBFF, cookies []*http.Cookie, path string) int {
	t.Helper()
	resp, _ := b.do(t, b.client(t, cookies), "GET", path, "", nil)
	return resp.StatusCode
}

// postLogoutToken posts a logout token to the BFF as the IAM would.
func postLogoutToken(t *testing.T, b *testBFF, token string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(b.srv.URL+BackchannelLogoutPath, url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestBackchannelLogout: two BFF sessions of one user (two browsers, each
// with a copy of its cookie) end at once when an administrator disables
// the user or logs the user out everywhere at the IAM, without waiting for
// a refresh; end_session with one session's ID token ends that session
// only; the administrator's own session is untouched throughout.
func TestBackchannelLogout(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	u, _ := url.Parse(b.srv.URL)
	adminBrowser := b.client(t, nil)
	login(t, b, adminBrowser, "/")
	admin := adminBrowser.Jar.Cookies(u)
	adminToken := sessionOf(t, b, admin).Access

	newUser := func(t *testing.T, name string) string {
		st, m := iamAPI(t, ri, adminToken, "POST", "/api/users", `{"username":"`+name+`","password":"`+name+`-password","roles":["CUSTOMER_EMPLOYEE"]}`)
		id, _ := m["id"].(string)
		if st != http.StatusCreated || id == "" {
			t.Fatalf("create %s: %d %v", name, st, m)
		}
		return id
	}
	// twoSessions logs name in from two browsers and returns both cookie
	// sets, each working.
	twoSessions := func(t *testing.T, name string) (one, two []*http.Cookie) {
		for i := range 2 {
			c := b.client(t, nil)
			loginAs(t, b, c, "/", name, name+"-password")
			cookies := c.Jar.Cookies(u)
			if st := status(t, b, cookies, "/api/me"); st != 200 {
				t.Fatalf("%s session %d: %d", name, i+1, st)
			}
			if i == 0 {
				one = cookies
			} else {
				two = cookies
			}
		}
		return one, two
	}
	bothEnded := func(t *testing.T, what string, sessions ...[]*http.Cookie) {
		t.Helper()
		for i, cookies := range sessions {
			// The IAM waits for the first delivery before it answers, up to
			// a bound; on a slow machine the delivery may land just after.
			deadline := time.Now().Add(10 * time.Second)
			for status(t, b, cookies, "/api/me") != http.StatusUnauthorized && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			for _, path := range []string{"/api/me", "/api/securitysystems"} {
				if st := status(t, b, cookies, path); st != http.StatusUnauthorized {
					t.Errorf("%s: session %d %s = %d, want 401", what, i+1, path, st)
				}
			}
		}
		if st := status(t, b, admin, "/api/me"); st != 200 {
			t.Errorf("%s: the administrator's session = %d", what, st)
		}
	}

	t.Run("disable", func(t *testing.T) {
		id := newUser(t, "dora")
		one, two := twoSessions(t, "dora")
		if st, m := iamAPI(t, ri, adminToken, "POST", "/api/users/"+id+"/disable", ""); st != 200 {
			t.Fatalf("disable: %d %v", st, m)
		}
		bothEnded(t, "after the disable", one, two)
	})

	t.Run("log out everywhere", func(t *testing.T) {
		id := newUser(t, "eve")
		one, two := twoSessions(t, "eve")
		if st, m := iamAPI(t, ri, adminToken, "POST", "/api/users/"+id+"/logout", ""); st != http.StatusNoContent {
			t.Fatalf("logout everywhere: %d %v", st, m)
		}
		bothEnded(t, "after log out everywhere", one, two)
		// The account is still enabled: a new login works.
		c := b.client(t, nil)
		loginAs(t, b, c, "/", "eve", "eve-password")
		if st := status(t, b, c.Jar.Cookies(u), "/api/me"); st != 200 {
			t.Errorf("login after log out everywhere: %d", st)
		}
	})

	t.Run("end_session ends its own session only", func(t *testing.T) {
		newUser(t, "fay")
		one, two := twoSessions(t, "fay")
		idToken := sessionOf(t, b, one).IDToken
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(ri.issuer + "/end_session?" + url.Values{"id_token_hint": {idToken}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("end_session: %d", resp.StatusCode)
		}
		bothEnded(t, "after end_session", one)
		if st := status(t, b, two, "/api/me"); st != 200 {
			t.Errorf("the other session after end_session: %d, want 200", st)
		}
	})
}

// TestBackchannelLogoutRefused: a logout token that is replayed, forged,
// expired, of another audience or issuer, mistyped, or lacking what §2.4
// requires is refused with 400 and ends no session.
func TestBackchannelLogoutRefused(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	u, _ := url.Parse(b.srv.URL)
	adminBrowser := b.client(t, nil)
	login(t, b, adminBrowser, "/")
	admin := adminBrowser.Jar.Cookies(u)
	adminToken := sessionOf(t, b, admin).Access

	// A real logout token, for a user who has no session at this BFF.
	st, m := iamAPI(t, ri, adminToken, "POST", "/api/users", `{"username":"gus","password":"gus-password","roles":[]}`)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, m)
	}
	if st, m := iamAPI(t, ri, adminToken, "POST", "/api/users/"+m["id"].(string)+"/logout", ""); st != http.StatusNoContent {
		t.Fatalf("logout everywhere: %d %v", st, m)
	}
	real := ri.lastLogoutToken()
	if real == "" {
		t.Fatal("the IAM sent no logout token")
	}
	h, c, sig := split3(t, real)
	header, claims := decodeMap(t, h), decodeMap(t, c)
	if header["typ"] != "logout+jwt" || header["alg"] != "RS256" || header["kid"] == nil {
		t.Fatalf("logout token header %v", header)
	}
	ev, _ := claims["events"].(map[string]any)
	if _, ok := ev["http://schemas.openid.net/event/backchannel-logout"]; !ok || claims["jti"] == nil || claims["nonce"] != nil ||
		claims["sub"] == nil || claims["aud"] == nil || claims["iss"] != ri.issuer {
		t.Fatalf("logout token claims %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat > 300 || exp <= iat {
		t.Errorf("logout token lives %v s", exp-iat)
	}

	// The real one was taken once (by the IAM's delivery): again is a
	// replay.
	if st, body := postLogoutToken(t, b, real); st != http.StatusBadRequest {
		t.Errorf("replayed logout token: %d %s, want 400", st, body)
	}

	// Forgeries: the claims changed under the real signature; signed with
	// another key under the IAM's kid; alg none; the header's typ changed.
	forgedKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	signWith := func(key *rsa.PrivateKey, hdr map[string]any, cl map[string]any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: header["kid"].(string)}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(hdr["typ"].(string))))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(cl)
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	with := func(mod func(map[string]any)) map[string]any {
		cl := map[string]any{}
		for k, v := range claims {
			cl[k] = v
		}
		cl["jti"] = randomToken(12)
		now := time.Now().Unix()
		cl["iat"], cl["exp"] = now, now+120
		mod(cl)
		return cl
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	cases := map[string]string{
		"claims changed under the real signature": h + "." + enc(with(func(map[string]any) {})) + "." + sig,
		"signed with another key":                 signWith(forgedKey, header, with(func(map[string]any) {})),
		"alg none":                                enc(map[string]any{"alg": "none", "typ": "logout+jwt", "kid": header["kid"]}) + "." + c + ".",
		"HS256 keyed with the public modulus":     enc(map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": header["kid"]}) + "." + c + "." + sig,
		"typ JWT":                                 signWith(forgedKey, map[string]any{"typ": "JWT"}, with(func(map[string]any) {})),
		"not a JWS":                               "not-a-token",
		"JSON serialization":                      `{"payload":"` + c + `","protected":"` + h + `","signature":"` + sig + `"}`,
		"padded base64":                           h + "=." + c + "." + sig,
		"empty":                                   "",
	}
	for name, token := range cases {
		if st, body := postLogoutToken(t, b, token); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, st, body)
		}
	}
	if st := status(t, b, admin, "/api/me"); st != 200 {
		t.Errorf("the administrator's session after refused tokens: %d", st)
	}
}

// TestLogoutTokenClaimsChecked runs the claim checks on tokens signed
// with the IAM's key: each lacks or breaks one requirement of §2.6 and is
// refused before any session is touched. The IAM signs only good tokens,
// so these are signed by a test double of the IAM's key set; the BFF is
// pointed at it.
func TestLogoutTokenClaimsChecked(t *testing.T) {
	kp := newTestIssuer(t)
	b := startBFF(t, kp.issuer, "s", backendURLs{}, []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Subject, sess.IAMSID = "user-1", "sid-1"
	cookies := b.mintSession(t, sess)
	good := func() map[string]any {
		now := time.Now().Unix()
		return map[string]any{
			"iss": kp.issuer, "aud": b.cfg.ClientID, "iat": now, "exp": now + 120, "jti": randomToken(12),
			"sub": "user-1", "sid": "sid-1",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}
	}
	for name, mod := range map[string]func(map[string]any){
		"wrong issuer":      func(c map[string]any) { c["iss"] = "http://evil.example" },
		"wrong audience":    func(c map[string]any) { c["aud"] = "realguardio-cli" },
		"expired":           func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() },
		"no exp":            func(c map[string]any) { delete(c, "exp") },
		"iat in the future": func(c map[string]any) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() },
		"iat too old":       func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() },
		"no iat":            func(c map[string]any) { delete(c, "iat") },
		"no jti":            func(c map[string]any) { delete(c, "jti") },
		"nonce":             func(c map[string]any) { c["nonce"] = "n" },
		"no events":         func(c map[string]any) { delete(c, "events") },
		"event not an object": func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}
		},
		"another event":         func(c map[string]any) { c["events"] = map[string]any{"http://example.com/other": map[string]any{}} },
		"neither sub nor sid":   func(c map[string]any) { delete(c, "sub"); delete(c, "sid") },
		"sub of the wrong type": func(c map[string]any) { c["sub"] = 7 },
	} {
		cl := good()
		mod(cl)
		if st, body := postLogoutToken(t, b, kp.sign(t, "logout+jwt", cl)); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, st, body)
		}
	}
	if st := status(t, b, cookies, "/api/me"); st != 200 {
		t.Fatalf("session after refused tokens: %d", st)
	}
	// A duplicate member is refused, not read either way.
	raw := kp.signRaw(t, "logout+jwt", `{"iss":"`+kp.issuer+`","aud":"`+b.cfg.ClientID+`","iat":`+itoa(time.Now().Unix())+`,"exp":`+itoa(time.Now().Unix()+60)+
		`,"jti":"dup","sub":"user-2","sub":"user-1","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`)
	if st, _ := postLogoutToken(t, b, raw); st != http.StatusBadRequest {
		t.Errorf("duplicate sub: %d, want 400", st)
	}
	// Another typ under the right key is refused too (an ID token is no
	// logout token).
	if st, _ := postLogoutToken(t, b, kp.sign(t, "JWT", good())); st != http.StatusBadRequest {
		t.Errorf("typ JWT: %d, want 400", st)
	}
	// The good token ends the session (by sid), and only once.
	token := kp.sign(t, "logout+jwt", good())
	if st, body := postLogoutToken(t, b, token); st != http.StatusOK {
		t.Fatalf("good logout token: %d %s", st, body)
	}
	if st := status(t, b, cookies, "/api/me"); st != http.StatusUnauthorized {
		t.Errorf("session after the logout token: %d, want 401", st)
	}
	if st, _ := postLogoutToken(t, b, token); st != http.StatusBadRequest {
		t.Errorf("replay of the good token: %d, want 400", st)
	}

	// Forged signatures never turn the BFF into an amplifier against the
	// IAM: under a known kid they fail without reading the JWKS, and
	// unknown kids read it at most once a second (the rest are 503, which
	// the IAM would retry).
	forgedKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	payload, _ := json.Marshal(good())
	before := kp.jwksReads.Load()
	for range 10 {
		if st, _ := postLogoutToken(t, b, kp.signKid(t, forgedKey, "k1", "logout+jwt", string(payload))); st != http.StatusBadRequest {
			t.Errorf("forged signature under the known kid: %d, want 400", st)
		}
	}
	if n := kp.jwksReads.Load() - before; n != 0 {
		t.Errorf("forged signatures under the known kid read the JWKS %d times", n)
	}
	began := time.Now()
	for i := range 20 {
		st, _ := postLogoutToken(t, b, kp.signKid(t, forgedKey, "kid-"+strconv.Itoa(i), "logout+jwt", string(payload)))
		if st != http.StatusBadRequest && st != http.StatusServiceUnavailable {
			t.Errorf("unknown kid: %d, want 400 or 503", st)
		}
	}
	if n, bound := kp.jwksReads.Load()-before, int64(time.Since(began)/logoutKeysInterval)+1; n > bound {
		t.Errorf("20 unknown kids read the JWKS %d times, more than %d", n, bound)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// testIssuer is an OpenID Provider's discovery document and JWKS with one
// RSA key, for signing logout tokens the real IAM would never sign.
type testIssuer struct {
	issuer string
	key    *rsa.PrivateKey
	// jwksReads counts the reads of the key set.
	jwksReads atomic.Int64
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{key: key}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": ti.issuer, "jwks_uri": ti.issuer + "/keys",
				"authorization_endpoint": ti.issuer + "/authorize", "token_endpoint": ti.issuer + "/oauth/token",
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
		case "/keys":
			ti.jwksReads.Add(1)
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	ti.issuer = srv.URL
	return ti
}

func (ti *testIssuer) sign(t *testing.T, typ string, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	return ti.signRaw(t, typ, string(payload))
}

func (ti *testIssuer) signRaw(t *testing.T, typ, payload string) string {
	t.Helper()
	return ti.signKid(t, ti.key, "k1", typ, payload)
}

func (ti *testIssuer) signKid(t *testing.T, key *rsa.PrivateKey, kid, typ, payload string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func split3(t *testing.T, tok string) (string, string, string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	return p[0], p[1], p[2]
}

func decodeMap(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// changePasswordAtLogin submits the IAM's change-password page (the answer
// to a first login with a password someone else chose, page at resp) with
// newPassword, as the person would, and returns where the browser ended.
func changePasswordAtLogin(t *testing.T, c *http.Client, resp *http.Response, page, newPassword string) (*http.Response, string) {
	t.Helper()
	if !strings.Contains(page, `name="new_password"`) {
		t.Fatalf("not the change-password page: %d %s", resp.StatusCode, page)
	}
	form := url.Values{"new_password": {newPassword}, "confirm_password": {newPassword}}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the change-password page: %s", page)
	}
	action, _ := resp.Request.URL.Parse(htmlUnescape(m[1]))
	follow := *c
	follow.CheckRedirect = nil
	resp, err := follow.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestForcedChangeSessionEndsByBackchannel: a user whose password must be
// changed at the first login signs in through the BFF, changes it on the
// IAM's page and gets a BFF session that records the IAM session's sid,
// like any other login's; end_session with that session's ID token ends it
// at once by back-channel logout (by sid), while the user's other session
// (a later login with the new password) stays. A session of the user that
// records no sid ends with it (it could be the one); another user's stays.
func TestForcedChangeSessionEndsByBackchannel(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	u, _ := url.Parse(b.srv.URL)
	adminBrowser := b.client(t, nil)
	login(t, b, adminBrowser, "/")
	adminToken := sessionOf(t, b, adminBrowser.Jar.Cookies(u)).Access
	st, m := iamAPI(t, ri, adminToken, "POST", "/api/users", `{"username":"gina","password":"gina-initial-password","roles":["CUSTOMER_EMPLOYEE"],"passwordChangeRequired":true}`)
	if st != http.StatusCreated {
		t.Fatalf("create gina: %d %v", st, m)
	}

	first := b.client(t, nil)
	resp, page := loginAs(t, b, first, "/", "gina", "gina-initial-password")
	if strings.HasPrefix(resp.Request.URL.String(), b.srv.URL) {
		t.Fatalf("the initial password reached the BFF without a change: %s", resp.Request.URL)
	}
	if st := status(t, b, first.Jar.Cookies(u), "/api/me"); st != http.StatusUnauthorized {
		t.Fatalf("a session before the change: /api/me = %d, want 401", st)
	}
	resp, _ = changePasswordAtLogin(t, first, resp, page, "gina-own-password")
	if !strings.HasPrefix(resp.Request.URL.String(), b.srv.URL) {
		t.Fatalf("after the change the browser is at %s, not the BFF", resp.Request.URL)
	}
	one := first.Jar.Cookies(u)
	if st := status(t, b, one, "/api/me"); st != 200 {
		t.Fatalf("the session after the change: %d", st)
	}
	sess := sessionOf(t, b, one)
	var idClaims struct {
		SID string `json:"sid"`
	}
	if err := decodeJWTPart(sess.IDToken, 1, &idClaims); err != nil {
		t.Fatal(err)
	}
	if sess.IAMSID == "" || sess.IAMSID != idClaims.SID {
		t.Fatalf("the session after the change has iam_sid %q, the ID token's sid is %q", sess.IAMSID, idClaims.SID)
	}
	var stored string
	if err := b.svc.store.db.QueryRowContext(context.Background(), `SELECT iam_sid FROM bff_sessions WHERE id_hash = ?`, hashID(sess.ID)).Scan(&stored); err != nil || stored != sess.IAMSID {
		t.Fatalf("the stored row's iam_sid %q (%v), want %q", stored, err, sess.IAMSID)
	}

	second := b.client(t, nil)
	loginAs(t, b, second, "/", "gina", "gina-own-password")
	two := second.Jar.Cookies(u)
	if st := status(t, b, two, "/api/me"); st != 200 {
		t.Fatalf("a login with the new password: %d", st)
	}
	// A session of gina that records no sid (as one started before the
	// BFF kept iam_sid), and one of another user without a sid.
	unknown := *sessionOf(t, b, two)
	unknown.ID, unknown.IAMSID = randomToken(18), ""
	legacy := b.mintSession(t, &unknown)
	other := *testSession(unknown.Access)
	other.Subject = "someone-else"
	others := b.mintSession(t, &other)
	for name, c := range map[string][]*http.Cookie{"gina's session without sid": legacy, "another user's session without sid": others} {
		if st := status(t, b, c, "/api/me"); st != 200 {
			t.Fatalf("%s: %d", name, st)
		}
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(ri.issuer + "/end_session?" + url.Values{"id_token_hint": {sess.IDToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	// The IAM waits for the first delivery before it answers, up to a
	// bound; on a slow machine the delivery may land just after.
	deadline := time.Now().Add(10 * time.Second)
	for status(t, b, one, "/api/me") != http.StatusUnauthorized && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := status(t, b, one, "/api/securitysystems"); st != http.StatusUnauthorized {
		t.Errorf("the session after its end_session: %d, want 401", st)
	}
	if st := status(t, b, two, "/api/me"); st != 200 {
		t.Errorf("the other session after end_session: %d, want 200", st)
	}
	// The session without a sid cannot be told from the ended one: it
	// ends too. Another user's is untouched.
	if st := status(t, b, legacy, "/api/me"); st != http.StatusUnauthorized {
		t.Errorf("gina's session without sid after end_session: %d, want 401", st)
	}
	if st := status(t, b, others, "/api/me"); st != 200 {
		t.Errorf("another user's session without sid after end_session: %d, want 200", st)
	}
}

// serviceToken gets a client-credentials token of the IAM's service client
// clientID with scope.
func serviceToken(t *testing.T, ri *realIAM, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, _ := http.NewRequest("POST", ri.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("client credentials for %s: %d %v", clientID, resp.StatusCode, err)
	}
	return out.AccessToken
}

// TestForcedChangeRetrySparesTheNewSession: the customer service replays
// an employee's account with a new password that must be changed (which
// revokes the employee's refresh tokens but tells the BFF nothing), while
// the employee has two BFF sessions. The employee then signs in with that
// password and changes it at the IAM; every back-channel delivery fails
// until the BFF session of this login has begun. The IAM's retries, which
// arrive after it, end both earlier sessions, yet the new one lives on:
// the password change's logout tokens name the earlier sessions by sid,
// never the whole user.
func TestForcedChangeRetrySparesTheNewSession(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	u, _ := url.Parse(b.srv.URL)
	svc := serviceToken(t, ri, iam.AudienceCustomer, iamCustomerSecret, iam.ScopeUsersWrite)
	account := func(password string, mustChange bool) string {
		return `{"id":"6f1c0c3e-5b0e-4b8a-9d57-2a4f3c9e8b10","username":"hana","password":"` + password +
			`","roles":["CUSTOMER_EMPLOYEE"],"passwordChangeRequired":` + strconv.FormatBool(mustChange) + `}`
	}
	if st, m := iamAPI(t, ri, svc, "POST", "/api/users", account("hana-first-password", false)); st != http.StatusCreated {
		t.Fatalf("create hana: %d %v", st, m)
	}
	var old [][]*http.Cookie
	for range 2 {
		c := b.client(t, nil)
		loginAs(t, b, c, "/", "hana", "hana-first-password")
		cookies := c.Jar.Cookies(u)
		if st := status(t, b, cookies, "/api/me"); st != 200 {
			t.Fatalf("a login with the first password: %d", st)
		}
		old = append(old, cookies)
	}
	if st, m := iamAPI(t, ri, svc, "POST", "/api/users", account("hana-second-password", true)); st != http.StatusOK {
		t.Fatalf("replay hana: %d %v", st, m)
	}
	// The replay revoked the refresh tokens only: the sessions live on
	// until their next refresh, or until the change below ends them.
	for i, c := range old {
		if st := status(t, b, c, "/api/me"); st != 200 {
			t.Fatalf("earlier session %d after the replay: %d", i, st)
		}
	}

	ri.failLogouts.Store(true)
	c := b.client(t, nil)
	resp, page := loginAs(t, b, c, "/", "hana", "hana-second-password")
	resp, _ = changePasswordAtLogin(t, c, resp, page, "hana-own-password")
	if !strings.HasPrefix(resp.Request.URL.String(), b.srv.URL) {
		t.Fatalf("after the change the browser is at %s, not the BFF", resp.Request.URL)
	}
	fresh := c.Jar.Cookies(u)
	if st := status(t, b, fresh, "/api/me"); st != 200 {
		t.Fatalf("the session after the change: %d", st)
	}
	freshSID := sessionOf(t, b, fresh).IAMSID
	if freshSID == "" {
		t.Fatal("the session after the change records no sid")
	}
	// Only now can a delivery get through: whatever the BFF is told from
	// here on arrives after the new session began.
	ri.failLogouts.Store(false)

	// The retries come 1, 5 and 25 s after a failure; the bound is far
	// beyond them.
	deadline := time.Now().Add(time.Minute)
	for (status(t, b, old[0], "/api/me") != http.StatusUnauthorized || status(t, b, old[1], "/api/me") != http.StatusUnauthorized) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for i, c := range old {
		if st := status(t, b, c, "/api/me"); st != http.StatusUnauthorized {
			t.Errorf("earlier session %d after the retries: %d, want 401", i, st)
		}
	}
	if st := status(t, b, fresh, "/api/me"); st != 200 {
		t.Errorf("the session begun after the change, after the retries: %d, want 200", st)
	}
	ri.mu.Lock()
	tokens := slices.Clone(ri.logoutTokens)
	ri.mu.Unlock()
	if len(tokens) < 2 {
		t.Fatalf("%d logout tokens sent, want at least one per earlier session", len(tokens))
	}
	for _, tok := range tokens {
		var claims struct {
			Sub string `json:"sub"`
			SID string `json:"sid"`
		}
		if err := decodeJWTPart(tok, 1, &claims); err != nil {
			t.Fatal(err)
		}
		if claims.SID == "" || claims.SID == freshSID {
			t.Errorf("a logout token of the password change names sid %q (the new session's is %q), want an earlier session's", claims.SID, freshSID)
		}
	}
}
