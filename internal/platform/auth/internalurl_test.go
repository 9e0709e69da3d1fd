package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/platform/svcauth"
)

// TestPublicIssuerInternalURL: the IAM issues tokens for the public
// https issuer, a name that does not even resolve here, while the service
// reaches it at its internal http URL for discovery, the token endpoint
// and the JWKS; validation still requires iss to be the public issuer.
func TestPublicIssuerInternalURL(t *testing.T) {
	const public = "https://iam.realguardio.invalid"
	const secret = "securitysystem-secret-0123456789abcdef"
	srv := httptest.NewUnstartedServer(nil)
	internal := "http://" + srv.Listener.Addr().String()
	svc, err := iam.New(context.Background(), iam.Config{
		Issuer:          public,
		AdminPassword:   "admin-password-1",
		KeyPublishAhead: -1,
		Clients:         iam.DefaultClients("https://app.realguardio.invalid/auth/callback", "https://app.realguardio.invalid/", map[string]string{iam.AudienceSecuritySystem: secret}, "bff-secret-0123456789abcdefghijkl"),
	}, iam.Deps{DB: sqldbtest.OpenSQLite(t)})
	if err != nil {
		t.Fatalf("iam.New: %v", err)
	}
	srv.Config.Handler = svc.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	rt, err := auth.InternalTransport(public, internal, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	tok, err := svcauth.TokenSource(svcauth.Config{
		Issuer: public, ClientID: iam.AudienceSecuritySystem, ClientSecret: secret, Scopes: []string{iam.ScopeAuthzRead},
	}, client).Token()
	if err != nil {
		t.Fatalf("client credentials through the internal URL: %v", err)
	}
	ctx := context.Background()
	pv, err := auth.NewValidator(auth.Options{Issuer: public, Audience: iam.AudienceCustomer, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	if err := pv.Ready(ctx); err != nil {
		t.Fatalf("keys through the internal URL: %v", err)
	}
	if _, err := pv.Validate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("token of the public issuer: %v", err)
	}
	// The internal URL is not the issuer: a validator configured with it
	// refuses the token (the discovery document names the public issuer).
	v, err := auth.NewValidator(auth.Options{Issuer: internal, Audience: iam.AudienceCustomer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(ctx, tok.AccessToken); err == nil {
		t.Fatal("a validator for the internal URL accepted a token of the public issuer")
	}
	// Requests elsewhere pass through unchanged.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	defer other.Close()
	resp, err := client.Get(other.URL + "/x")
	if err != nil || resp.StatusCode != 299 {
		t.Fatalf("another host through the transport: %v %v", resp, err)
	}
	resp.Body.Close()
}
