package securitysystem_test

import (
	"bytes"
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
	"github.com/realguardio/realguardio/internal/iam/authzclaims"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

const (
	e2eAdminPassword = "admin-password-123"
	e2eCustomerSec   = "customer-client-secret"
	e2eRedirect      = "http://127.0.0.1:53682/callback"
)

// e2eIAM is the real IAM Service with the provide claims hook.
type e2eIAM struct {
	issuer, authorize, tokenEP string
}

// startProvideIAM starts the IAM on 127.0.0.1:0; its claims hook asks
// customerURL and, as it asks every owner, a stand-in for the dealer and
// monitoring provider services that employs nobody.
func startProvideIAM(t *testing.T, ln net.Listener, customerURL string) *e2eIAM {
	t.Helper()
	issuer := "http://" + ln.Addr().String()
	nobody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"organization":null,"schedule":null}`)
	}))
	t.Cleanup(nobody.Close)
	hook, err := authzclaims.New(authzclaims.Config{CustomerURL: customerURL, DealerURL: nobody.URL, MonitoringURL: nobody.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := iam.DefaultClients("http://127.0.0.1:1/auth/callback", "", map[string]string{customer.DefaultAudience: e2eCustomerSec}, "bff-secret")
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := iam.New(ctx, iam.Config{Issuer: issuer, AdminPassword: e2eAdminPassword, Clients: clients, KeyPublishAhead: -1},
		iam.Deps{Logger: slog.New(slog.DiscardHandler), DB: sqldbtest.OpenSQLite(t), AuthorizationClaims: hook})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); cancel() })
	return &e2eIAM{issuer: issuer, authorize: issuer + "/authorize", tokenEP: issuer + "/oauth/token"}
}

var (
	e2eFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	e2eHidden     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// tokens are an access token and its refresh token.
type tokens struct{ access, refresh string }

// login runs the code flow with PKCE as the CLI, with offline_access.
func (s *e2eIAM) login(t *testing.T, username, password string) tokens {
	t.Helper()
	return s.firstLogin(t, username, password, "")
}

// firstLogin is login for an account an organization service created with
// an initial password: the IAM's change-password page follows the
// password, and newPassword is chosen there. With newPassword "" no
// change may be asked.
func (s *e2eIAM) firstLogin(t *testing.T, username, password, newPassword string) tokens {
	t.Helper()
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	verifier := base64.RawURLEncoding.EncodeToString(buf[:])
	sum := sha256.Sum256([]byte(verifier))
	jar, _ := cookiejar.New(nil)
	var code string
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e2eRedirect) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {iam.ClientCLI}, "redirect_uri": {e2eRedirect}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {"s1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	resp, err := client.Get(s.authorize + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := e2eFormAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no login form (status %d)", resp.StatusCode)
	}
	form := url.Values{"username": {username}, "password": {password}}
	for _, h := range e2eHidden.FindAllSubmatch(page, -1) {
		form.Set(string(h[1]), html.UnescapeString(string(h[2])))
	}
	action, _ := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	resp, err = client.PostForm(action.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if change := strings.Contains(string(page), `name="new_password"`); change != (newPassword != "") {
		t.Fatalf("login of %s: change-password page %v, want %v (status %d)", username, change, newPassword != "", resp.StatusCode)
	}
	if newPassword != "" {
		m := e2eFormAction.FindSubmatch(page)
		if m == nil {
			t.Fatalf("no change-password form (status %d)", resp.StatusCode)
		}
		form := url.Values{"new_password": {newPassword}, "confirm_password": {newPassword}}
		for _, h := range e2eHidden.FindAllSubmatch(page, -1) {
			form.Set(string(h[1]), html.UnescapeString(string(h[2])))
		}
		action, _ := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
		resp, err = client.PostForm(action.String(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if code == "" {
		t.Fatalf("login of %s did not reach the callback (status %d)", username, resp.StatusCode)
	}
	status, tok, raw := s.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {e2eRedirect},
		"client_id": {iam.ClientCLI}, "code_verifier": {verifier}})
	if status != http.StatusOK {
		t.Fatalf("code exchange: %d %s", status, raw)
	}
	return tok
}

// refresh rotates the refresh token.
func (s *e2eIAM) refresh(t *testing.T, tok tokens) tokens {
	t.Helper()
	status, next, raw := s.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.refresh}, "client_id": {iam.ClientCLI}})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, raw)
	}
	return next
}

func (s *e2eIAM) token(form url.Values) (int, tokens, []byte) {
	resp, err := http.PostForm(s.tokenEP, form)
	if err != nil {
		return 0, tokens{}, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, tokens{access: out.AccessToken, refresh: out.RefreshToken}, raw
}

// call sends a JSON request with a bearer token and returns the status and
// decoded body.
func call(t *testing.T, method, u, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func mustCall(t *testing.T, want int, method, u, token string, body any) map[string]any {
	t.Helper()
	status, out := call(t, method, u, token, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, u, status, want, out)
	}
	return out
}

// feedOutbox applies the customer service's outbox events to the Security
// System Service's resource facts, as its consumer would after NATS
// delivered them (the NATS path itself is the events package's business).
func feedOutbox(t *testing.T, from, to *sqldb.DB) {
	t.Helper()
	rows, err := from.QueryContext(context.Background(), `SELECT id, event_type, aggregate_id, payload FROM event_outbox ORDER BY pos`)
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for rows.Next() {
		var ev events.Event
		var payload string
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.AggregateID, &payload); err != nil {
			t.Fatal(err)
		}
		ev.Payload = json.RawMessage(payload)
		evs = append(evs, ev)
	}
	rows.Close()
	sstest.Apply(t, to, provide.Handle, evs)
}

// TestProvideStaleness shows the provide strategy's staleness bound with
// the real services: the IAM puts the customer service's facts in the
// token; after a location role is revoked the old token still disarms (its
// claims are what they were at issue), and the token of the next refresh
// does not.
func TestProvideStaleness(t *testing.T) {
	ctx := context.Background()
	iamLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + iamLn.Addr().String()

	custDB := sqldbtest.OpenSQLite(t)
	cust, err := customer.New(ctx, customer.Config{Issuer: issuer, IAMClientID: customer.DefaultAudience, IAMClientSecret: e2eCustomerSec},
		customer.Deps{Logger: slog.New(slog.DiscardHandler), DB: custDB})
	if err != nil {
		t.Fatal(err)
	}
	custSrv := httptest.NewServer(cust.Handler())
	t.Cleanup(custSrv.Close)
	s := startProvideIAM(t, iamLn, custSrv.URL)

	ssDB := sqldbtest.OpenSQLite(t)
	v, err := auth.NewValidator(auth.Options{Issuer: issuer, Audience: securitysystem.DefaultAudience, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := securitysystem.New(ctx, securitysystem.Config{Issuer: issuer, Strategy: "provide"},
		securitysystem.Deps{Logger: slog.New(slog.DiscardHandler), DB: ssDB, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	ssSrv := httptest.NewServer(ss.Handler())
	t.Cleanup(ssSrv.Close)

	admin := s.login(t, "admin", e2eAdminPassword)
	acme := mustCall(t, 201, "POST", custSrv.URL+"/customers", admin.access, map[string]any{
		"name": "Acme", "administrator": map[string]any{"email": "alice@acme.test", "firstName": "Alice", "lastName": "A", "password": "alice-password-1"},
	})["id"].(string)
	alice := s.firstLogin(t, "alice@acme.test", "alice-password-1", "alice-own-password")
	carol := mustCall(t, 201, "POST", custSrv.URL+"/customers/"+acme+"/employees", alice.access,
		map[string]any{"email": "carol@acme.test", "firstName": "Carol", "lastName": "C"})
	loc := mustCall(t, 201, "POST", custSrv.URL+"/customers/"+acme+"/locations", alice.access, map[string]any{"name": "HQ"})["id"].(string)
	rolesPath := custSrv.URL + "/customers/" + acme + "/locations/" + loc + "/employee-roles/" + carol["id"].(string)
	mustCall(t, 200, "PUT", rolesPath, alice.access, map[string]any{"roles": []string{policy.RoleArmer, policy.RoleDisarmer}})
	feedOutbox(t, custDB, ssDB)

	// Alice's token names her the customer's administrator: she may create.
	sys := mustCall(t, 201, "POST", ssSrv.URL+"/securitysystems", alice.access, map[string]any{"locationId": loc, "name": "Front door"})
	sysURL := ssSrv.URL + "/securitysystems/" + sys["id"].(string)
	if got := sys["id"]; got == "" {
		t.Fatalf("created %v", sys)
	}

	carolTok := s.firstLogin(t, "carol@acme.test", carol["initialPassword"].(string), "carol-own-password")
	mustCall(t, 200, "PUT", sysURL, carolTok.access, map[string]any{"action": "ARM"})

	// Revoke every role of carol at the location.
	mustCall(t, 200, "PUT", rolesPath, alice.access, map[string]any{"roles": []string{}})
	// The old token still carries them: the staleness of the strategy.
	mustCall(t, 200, "PUT", sysURL, carolTok.access, map[string]any{"action": "DISARM"})
	// The refreshed token reflects the revocation.
	fresh := s.refresh(t, carolTok)
	status, p := call(t, "PUT", sysURL, fresh.access, map[string]any{"action": "ARM"})
	if status != http.StatusForbidden || p["reason"] != policy.ReasonNoRole {
		t.Fatalf("after refresh: status %d %v, want 403 no_role", status, p)
	}

	// The customer service down: a refresh fails with the IAM's 503
	// server_error, never a token without the claims.
	custSrv.Close()
	status, _, raw := s.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.refresh}, "client_id": {iam.ClientCLI}})
	if status != http.StatusServiceUnavailable || !strings.Contains(string(raw), "server_error") {
		t.Fatalf("refresh with the customer service down: %d %s", status, raw)
	}
}
