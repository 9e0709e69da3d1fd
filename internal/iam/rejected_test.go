package iam

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorizeRaw sends an authorization request and returns the response
// without following redirects.
func authorizeRaw(t *testing.T, e *env, q url.Values) *http.Response {
	t.Helper()
	resp, err := noFollow.Get(e.issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func baseAuthQuery(e *env) url.Values {
	_, challenge := pkce()
	return url.Values{
		"client_id": {ClientBFF}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"redirect_uri": {e.callback.URL + "/auth/callback"}, "state": {"s"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// wantErrorRedirect asserts a redirect to the client's callback carrying
// the OAuth error code.
func wantErrorRedirect(t *testing.T, e *env, resp *http.Response, code string) {
	t.Helper()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.callback.URL) {
		t.Fatalf("want error redirect to the client, got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := loc.Query().Get("error"); got != code {
		t.Fatalf("error = %q, want %q (%s)", got, code, loc.Query().Get("error_description"))
	}
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestRejected(t *testing.T) {
	eachStore(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := newEnv(t, envOpts{db: db})
		e.createUser(t, "bob", "bob-password", auth.RoleDealerEmployee)
		cfg := e.bffConfig()
		refresh := func(rt string) (*oauth2.Token, error) {
			return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		}
		login := func(t *testing.T) *oauth2.Token {
			code, verifier := e.loginCode(t, cfg, "bob", "bob-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			return tok
		}

		t.Run("missing PKCE", func(t *testing.T) {
			q := baseAuthQuery(e)
			q.Del("code_challenge")
			q.Del("code_challenge_method")
			wantErrorRedirect(t, e, authorizeRaw(t, e, q), "invalid_request")
		})
		t.Run("plain PKCE", func(t *testing.T) {
			q := baseAuthQuery(e)
			q.Set("code_challenge", oauth2.GenerateVerifier())
			q.Set("code_challenge_method", "plain")
			wantErrorRedirect(t, e, authorizeRaw(t, e, q), "invalid_request")
		})
		t.Run("wrong verifier", func(t *testing.T) {
			code, _ := e.loginCode(t, cfg, "bob", "bob-password")
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			if oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("missing verifier", func(t *testing.T) {
			code, _ := e.loginCode(t, cfg, "bob", "bob-password")
			_, err := cfg.Exchange(ctx, code)
			if oauthErrorCode(err) != "invalid_request" {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("reused code revokes its tokens", func(t *testing.T) {
			code, verifier := e.loginCode(t, cfg, "bob", "bob-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("second exchange: %v", err)
			}
			if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("refresh of a replayed code's token: %v", err)
			}
		})
		t.Run("expired code", func(t *testing.T) {
			code, verifier := e.loginCode(t, cfg, "bob", "bob-password")
			e.clock.advance(61 * time.Second)
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("redirect URI not registered", func(t *testing.T) {
			q := baseAuthQuery(e)
			q.Set("redirect_uri", "http://evil.example/cb")
			resp := authorizeRaw(t, e, q)
			if resp.StatusCode == http.StatusFound {
				t.Fatalf("redirected to %q", resp.Header.Get("Location"))
			}
		})
		t.Run("unknown client", func(t *testing.T) {
			q := baseAuthQuery(e)
			q.Set("client_id", "nobody")
			if resp := authorizeRaw(t, e, q); resp.StatusCode == http.StatusFound || resp.StatusCode < 400 {
				t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			status, body := postForm(t, e.issuer+"/oauth/token", "nobody", "whatever", url.Values{"grant_type": {"client_credentials"}})
			if status < 400 || body["error"] != "invalid_client" {
				t.Fatalf("token: %d %v", status, body)
			}
		})
		t.Run("wrong client secret", func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: "wrong", TokenURL: e.issuer + "/oauth/token"}
			if _, err := cc.Token(ctx); oauthErrorCode(err) != "invalid_client" {
				t.Fatalf("err = %v", err)
			}
			bad := *cfg
			bad.ClientSecret = "wrong"
			code, verifier := e.loginCode(t, cfg, "bob", "bob-password")
			if _, err := bad.Exchange(ctx, code, oauth2.VerifierOption(verifier)); oauthErrorCode(err) != "invalid_client" {
				t.Fatalf("exchange with wrong secret: %v", err)
			}
		})
		t.Run("reused refresh token revokes the family", func(t *testing.T) {
			tok := login(t)
			next, err := refresh(tok.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			// Past the reuse grace window (refresh_test.go covers the
			// window itself).
			e.clock.advance(DefaultRefreshReuseGrace + time.Second)
			if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("reuse: %v", err)
			}
			if _, err := refresh(next.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("the family survived a reuse: %v", err)
			}
		})
		t.Run("refresh after revocation", func(t *testing.T) {
			tok := login(t)
			status, _ := postForm(t, e.issuer+"/oauth/revoke", ClientBFF, testBFFSecret, url.Values{"token": {tok.RefreshToken}})
			if status != http.StatusOK {
				t.Fatalf("revoke: %d", status)
			}
			if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("disabled user", func(t *testing.T) {
			id := e.createUser(t, "carol", "carol-password")
			code, verifier := e.loginCode(t, cfg, "carol", "carol-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.store.setEnabled(ctx, id, false, e.clock.now()); err != nil {
				t.Fatal(err)
			}
			if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("refresh of a disabled user: %v", err)
			}
			// Enabling the account again (a re-hire) must not revive the
			// sessions of the first employment.
			if err := e.svc.store.setEnabled(ctx, id, true, e.clock.now()); err != nil {
				t.Fatal(err)
			}
			if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("refresh after disable and enable: %v", err)
			}
			if err := e.svc.store.setEnabled(ctx, id, false, e.clock.now()); err != nil {
				t.Fatal(err)
			}
			c := browser(t)
			f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			resp, body := submitLogin(t, c, f, "carol", "carol-password")
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, invalidCredentials) {
				t.Fatalf("disabled login: %d %s", resp.StatusCode, body)
			}
		})
		t.Run("password grant", func(t *testing.T) {
			status, body := postForm(t, e.issuer+"/oauth/token", ClientBFF, testBFFSecret,
				url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-password"}})
			if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
				t.Fatalf("%d %v", status, body)
			}
		})
		t.Run("implicit grant", func(t *testing.T) {
			for _, rt := range []string{"token", "id_token token", "id_token"} {
				q := baseAuthQuery(e)
				q.Set("response_type", rt)
				q.Set("nonce", "n")
				resp := authorizeRaw(t, e, q)
				loc := resp.Header.Get("Location")
				if strings.Contains(loc, "access_token") || strings.Contains(loc, "id_token=") || strings.Contains(loc, "/login") {
					t.Fatalf("%s: issued or proceeded: %d %q", rt, resp.StatusCode, loc)
				}
				if resp.StatusCode == http.StatusFound && !strings.Contains(loc, "error=") {
					t.Fatalf("%s: %q", rt, loc)
				}
			}
		})
		t.Run("service client cannot use the code flow", func(t *testing.T) {
			q := baseAuthQuery(e)
			q.Set("client_id", AudienceCustomer)
			if resp := authorizeRaw(t, e, q); resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "/login") {
				t.Fatal("service client reached the login page")
			}
		})
		t.Run("scope not allowed for a service", func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: AudienceSecuritySystem, ClientSecret: testSvcSecret, TokenURL: e.issuer + "/oauth/token", Scopes: []string{ScopeUsersWrite}}
			if _, err := cc.Token(ctx); oauthErrorCode(err) != "invalid_scope" {
				t.Fatalf("err = %v", err)
			}
		})
	})
}

// TestCLIClient checks the public client: loopback redirect on any port,
// PKCE without a secret, refresh tokens.
func TestCLIClient(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	e.createUser(t, "dave", "dave-password")
	cfg := &oauth2.Config{
		ClientID:    ClientCLI,
		RedirectURL: strings.Replace(e.callback.URL, "127.0.0.1", "127.0.0.1", 1) + "/callback",
		Scopes:      []string{"openid", "profile", "offline_access"},
		Endpoint:    oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	code, verifier := e.loginCode(t, cfg, "dave", "dave-password")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// Another path on the loopback host is not registered.
	q := url.Values{"client_id": {ClientCLI}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {e.callback.URL + "/other"}, "code_challenge": {"x"}, "code_challenge_method": {"S256"}}
	if resp := authorizeRaw(t, e, q); resp.StatusCode == http.StatusFound {
		t.Fatalf("unregistered loopback path accepted: %q", resp.Header.Get("Location"))
	}
}

type fakeAuthz struct{ err error }

func (f fakeAuthz) Claims(_ context.Context, req AuthorizationRequest) (map[string]any, error) {
	if f.err != nil {
		return nil, f.err
	}
	return map[string]any{"rg_orgs": []string{"org-of-" + req.UserID}}, nil
}

// TestAuthorizationClaimsHook checks the provide strategy's extension
// point: its claims appear in user tokens, and its failure fails the token
// request with a clear OAuth error.
func TestAuthorizationClaimsHook(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
	}{{"adds claims", nil}, {"failure fails the request", errors.New("customer service down")}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{authz: fakeAuthz{err: tc.err}})
			id := e.createUser(t, "erin", "erin-password")
			cfg := e.bffConfig()
			code, verifier := e.loginCode(t, cfg, "erin", "erin-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if tc.err != nil {
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "server_error" || re.Response.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, c := jwtParts(t, tok.AccessToken)
			if got := stringsOf(c["rg_orgs"]); len(got) != 1 || got[0] != "org-of-"+id {
				t.Fatalf("rg_orgs = %v", c["rg_orgs"])
			}
			// Service tokens do not carry user authorization claims.
			cc := clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: testSvcSecret, TokenURL: e.issuer + "/oauth/token"}
			st, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, c := jwtParts(t, st.AccessToken); c["rg_orgs"] != nil {
				t.Fatalf("service token has rg_orgs")
			}
		})
	}
}
