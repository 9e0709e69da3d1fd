// Package orgkittest starts a real IAM Service for the component tests of
// the organization services and obtains real access tokens from it: user
// tokens through the authorization code flow with PKCE (the public CLI
// client and a loopback redirect, exactly as a script would), and service
// tokens through the client-credentials grant. Nothing is faked: the
// services under test validate these tokens against the IAM's JWKS.
package orgkittest

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/realguardio/realguardio/internal/contract/facts"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/contract/iamaccounts"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// AdminPassword is the password of the bootstrap user "admin", who holds
// REALGUARDIO_ADMIN and REALGUARDIO_DEALER_ADMINISTRATOR.
const AdminPassword = "admin-password-for-tests"

// FactsClient is a client-credentials client granted scope authz:read, as
// the Security System Service's fetch strategy uses.
const FactsClient = "test-facts-reader"

// ClientSecret is the secret of every service client of the test IAM.
const ClientSecret = "test-client-secret-0123456789"

// IAM is a running IAM Service on 127.0.0.1.
type IAM struct {
	// URL is the issuer.
	URL string
	// Service is the IAM itself.
	Service *iam.Service
	// usersDown makes /api/users answer 503, to simulate an IAM outage for
	// account provisioning while token validation keeps working.
	usersDown atomic.Bool
}

// StartIAM starts an IAM Service with the default clients, a client
// (id = audience, secret ClientSecret) for each of serviceClients, and
// FactsClient. It stops when the test ends.
func StartIAM(t testing.TB, serviceClients ...string) *IAM {
	t.Helper()
	i := &IAM{}
	srv := httptest.NewUnstartedServer(nil)
	i.URL = "http://" + srv.Listener.Addr().String()
	secrets := map[string]string{}
	for _, c := range serviceClients {
		secrets[c] = ClientSecret
	}
	// No BFF runs in these tests; its client is configured with the
	// default address only because DefaultClients always includes it.
	clients := iam.DefaultClients("http://localhost:3000/auth/callback", "", secrets, ClientSecret)
	clients = append(clients, iam.ClientConfig{
		ID:         FactsClient,
		SecretHash: iam.HashClientSecret(ClientSecret),
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{facts.ScopeRead},
		Audiences:  slices.Clone(iam.AllAudiences),
	})
	svc, err := iam.New(context.Background(), iam.Config{
		Issuer:          i.URL,
		AdminPassword:   AdminPassword,
		KeyPublishAhead: -1,
		Clients:         clients,
	}, iam.Deps{DB: sqldbtest.OpenSQLite(t)})
	if err != nil {
		t.Fatalf("start IAM: %v", err)
	}
	i.Service = svc
	h := svc.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i.usersDown.Load() && strings.HasPrefix(r.URL.Path, "/api/users") {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return i
}

// SetUsersDown makes the IAM's user API answer 503 (true) or work again.
func (i *IAM) SetUsersDown(down bool) { i.usersDown.Store(down) }

// Client returns an IAM client authenticating as the service client id.
func (i *IAM) Client(id string) *iamaccounts.Client {
	return iamaccounts.New(i.URL, id, ClientSecret, nil)
}

// CreateUser creates an IAM account as the platform administrator (a
// service client may only provision its own employee role, so accounts
// with other roles, such as a dealer-onboarding operator, are made by the
// admin) and returns its id.
func (i *IAM) CreateUser(t testing.TB, username, password string, roles ...string) string {
	t.Helper()
	r := Do(t, "POST", i.URL+"/api/users", i.Login(t, "admin", AdminPassword),
		map[string]any{"username": username, "password": password, "roles": roles})
	r.Want(t, http.StatusCreated)
	return r.String("id")
}

// SetRoles replaces the application roles of an IAM account, as the
// platform administrator: services may not change roles.
func (i *IAM) SetRoles(t testing.TB, userID string, roles ...string) {
	t.Helper()
	Do(t, "PUT", i.URL+"/api/users/"+userID+"/roles", i.Login(t, "admin", AdminPassword),
		map[string]any{"roles": roles}).Want(t, http.StatusOK)
}

// ServiceToken returns a client-credentials access token of clientID.
func (i *IAM) ServiceToken(t testing.TB, clientID string, scopes ...string) string {
	t.Helper()
	cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: ClientSecret, TokenURL: i.URL + "/oauth/token", Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatalf("client credentials token for %s: %v", clientID, err)
	}
	return tok.AccessToken
}

// Login logs username in through the authorization code flow with PKCE
// (public client realguardio-cli, loopback redirect, the IAM's login form
// submitted as a browser would: apiclient's scripted login) and returns the
// access token.
func (i *IAM) Login(t testing.TB, username, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := apiclient.Discover(ctx, i.URL, nil)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	se, err := p.Login(ctx, username, password)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	tok, err := se.AccessToken(ctx)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return tok
}

// FirstLogin is Login for an account an organization service created: its
// password (initial, typed by an administrator or generated) is someone
// else's, so the IAM shows the change-password page after it, where
// newPassword is entered as the employee would. It returns the access
// token; from then on the account logs in with newPassword.
func (i *IAM) FirstLogin(t testing.TB, username, initial, newPassword string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := apiclient.Discover(ctx, i.URL, nil)
	if err != nil {
		t.Fatalf("first login %s: %v", username, err)
	}
	se, err := p.LoginChangingPassword(ctx, username, initial, newPassword)
	if err != nil {
		t.Fatalf("first login %s: %v", username, err)
	}
	tok, err := se.AccessToken(ctx)
	if err != nil {
		t.Fatalf("first login %s: %v", username, err)
	}
	return tok
}

// Response is an answer of Do: the status, the raw body and the body
// decoded as a JSON object (nil when it is not one).
type Response struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any
}

// Do sends a request with an optional Bearer token and JSON body (a string
// is sent as is, anything else marshalled).
func Do(t testing.TB, method, u, token string, body any) Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

// Want fails the test unless the response has the given status.
func (r Response) Want(t testing.TB, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return r
}

// String returns the string at the dotted path of the JSON body
// ("administrator.userId"), or "".
func (r Response) String(path string) string {
	var v any = r.JSON
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}
