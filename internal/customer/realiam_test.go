package customer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// realIAM is a running IAM Service: the customer service creates its
// employees' accounts there, and users log in through its login form.
type realIAM struct {
	issuer             string
	authorize, tokenEP string
}

const (
	iamAdminPassword  = "admin-password-123"
	customerSecret    = "customer-client-secret"
	factsClientID     = "facts-reader"
	factsClientSecret = "facts-reader-secret"
	cliRedirectURI    = "http://127.0.0.1:53682/callback"
)

func startIAM(t *testing.T) *realIAM {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	clients := iam.DefaultClients("http://127.0.0.1:1/auth/callback", "", map[string]string{customer.DefaultAudience: customerSecret}, "bff-secret")
	clients = append(clients, iam.ClientConfig{ID: factsClientID, Secret: factsClientSecret, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"authz:read"}, Audiences: iam.AllAudiences})
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := iam.New(ctx, iam.Config{Issuer: issuer, AdminPassword: iamAdminPassword, Clients: clients, KeyPublishAhead: -1},
		iam.Deps{Logger: slog.New(slog.DiscardHandler), DB: sqldbtest.OpenSQLite(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc.Handler()}
	go func() { _ = srv.Serve(ln) }()
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); cancel(); <-done; _ = svc.Close() })

	var disc struct {
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil {
		t.Fatal(err)
	}
	return &realIAM{issuer: issuer, authorize: disc.AuthorizationEndpoint, tokenEP: disc.TokenEndpoint}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRe   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// login runs the authorization code flow with PKCE as the public CLI
// client, submitting the login form, and returns the access token.
func (s *realIAM) login(t *testing.T, username, password string) string {
	t.Helper()
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	verifier := base64.RawURLEncoding.EncodeToString(buf[:])
	sum := sha256.Sum256([]byte(verifier))
	jar, _ := cookiejar.New(nil)
	var code string
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), cliRedirectURI) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {"realguardio-cli"}, "redirect_uri": {cliRedirectURI}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"s1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	resp, err := client.Get(s.authorize + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no login form (status %d): %s", resp.StatusCode, page)
	}
	form := url.Values{"username": {username}, "password": {password}}
	for _, h := range hiddenRe.FindAllSubmatch(page, -1) {
		form.Set(string(h[1]), html.UnescapeString(string(h[2])))
	}
	action, _ := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	resp, err = client.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code == "" {
		t.Fatalf("login of %s did not reach the callback (status %d): %s", username, resp.StatusCode, body)
	}
	tok := s.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirectURI},
		"client_id": {"realguardio-cli"}, "code_verifier": {verifier}}, "", "")
	return tok
}

// clientToken returns a client-credentials access token.
func (s *realIAM) clientToken(t *testing.T, id, secret, scope string) string {
	return s.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, id, secret)
}

func (s *realIAM) token(t *testing.T, form url.Values, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.tokenEP, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		t.Fatalf("token request = %d %s", resp.StatusCode, raw)
	}
	return out.AccessToken
}

// TestWithRealIAM runs the article's employee-roles scenario with the real
// IAM Service: the customer service provisions the accounts through the
// IAM user API with its client credentials, and every token comes from a
// real login or a real client-credentials grant.
func TestWithRealIAM(t *testing.T) {
	s := startIAM(t)
	db := sqldbtest.OpenSQLite(t)
	svc, err := customer.New(context.Background(), customer.Config{Issuer: s.issuer, IAMClientID: customer.DefaultAudience, IAMClientSecret: customerSecret},
		customer.Deps{Logger: slog.New(slog.DiscardHandler), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, url: srv.URL}

	admin := s.login(t, "admin", iamAdminPassword)
	out := e.must(201, "POST", "/customers", admin, map[string]any{
		"name": "Acme", "administrator": map[string]any{"email": "alice@acme.test", "firstName": "Alice", "lastName": "A", "password": "alice-password-1"},
	})
	acme := out["id"].(string)
	e.must(201, "POST", "/customers", admin, map[string]any{
		"name": "Foo", "administrator": map[string]any{"email": "bob@foo.test", "firstName": "Bob", "lastName": "B", "password": "bob-password-1"},
	})
	alice := s.login(t, "alice@acme.test", "alice-password-1")
	bob := s.login(t, "bob@foo.test", "bob-password-1")
	carol := e.must(201, "POST", "/customers/"+acme+"/employees", alice, map[string]any{"email": "carol@acme.test", "firstName": "Carol", "lastName": "C"})
	carolToken := s.login(t, "carol@acme.test", carol["initialPassword"].(string))

	path := "/customers/" + acme + "/employees/" + carol["id"].(string) + "/roles"
	body := map[string]any{"roles": []string{disarmer}}
	e.expect(403, "", "PUT", path, admin, body)      // REALGUARDIO_ADMIN has no role inside the customer
	e.expect(403, "", "PUT", path, bob, body)        // administrator of another customer
	e.expect(403, "", "PUT", path, carolToken, body) // not an administrator
	e.must(200, "PUT", path, alice, body)

	if p := e.must(200, "GET", "/profiles", carolToken, nil); p["firstName"] != "Carol" {
		t.Fatalf("carol's profile = %v", p)
	}
	e.expect(403, "", "GET", "/profiles", admin, nil) // no CUSTOMER_EMPLOYEE

	facts := s.clientToken(t, factsClientID, factsClientSecret, "authz:read")
	subj := e.must(200, "GET", "/authz/subjects/"+carol["userId"].(string), facts, nil)
	if org := subj["organization"].(map[string]any); org["id"] != acme {
		t.Fatalf("subject facts = %v", subj)
	}
	e.must(200, "GET", "/authz/subjects/"+carol["userId"].(string), carolToken, nil)
	e.expect(403, "", "GET", "/authz/subjects/"+carol["userId"].(string), alice, nil)
	e.expect(403, "", "GET", "/authz/subjects/"+carol["userId"].(string), s.clientToken(t, customer.DefaultAudience, customerSecret, "users:write"), nil)
}
