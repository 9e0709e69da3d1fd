package svcauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// fakeIAM serves a discovery document and a token endpoint. discoveryUp
// switches the discovery document on and off; the counters tell how often
// each endpoint was called.
type fakeIAM struct {
	srv         *httptest.Server
	discoveryUp atomic.Bool
	discoveries atomic.Int32
	tokens      atomic.Int32
	mu          sync.Mutex
	scope       string
}

func newFakeIAM(t *testing.T) *fakeIAM {
	t.Helper()
	f := &fakeIAM{}
	f.discoveryUp.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.discoveries.Add(1)
		if !f.discoveryUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token_endpoint": f.srv.URL + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		f.tokens.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != "svc" || secret != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		f.mu.Lock()
		f.scope = r.FormValue("scope")
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":300}`))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func TestDiscoveryFailureIsRetried(t *testing.T) {
	f := newFakeIAM(t)
	f.discoveryUp.Store(false)
	ts := TokenSource(Config{Issuer: f.srv.URL + "/", ClientID: "svc", ClientSecret: "s3cret"}, nil)
	if _, err := ts.Token(); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("Token with discovery down: err %v, want Unavailable", err)
	}
	f.discoveryUp.Store(true)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("Token after discovery came up: %v", err)
	}
	if tok.AccessToken != "tok" {
		t.Fatalf("access token %q", tok.AccessToken)
	}
	if got := f.discoveries.Load(); got != 2 {
		t.Fatalf("discovery fetched %d times, want 2", got)
	}
}

func TestTokenIsCachedAndScopesSent(t *testing.T) {
	f := newFakeIAM(t)
	ts := TokenSource(Config{Issuer: f.srv.URL, ClientID: "svc", ClientSecret: "s3cret", Scopes: []string{"a:read", "b:write"}}, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := ts.Token(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if got := f.discoveries.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}
	if got := f.tokens.Load(); got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scope != "a:read b:write" {
		t.Errorf("scope %q, want %q", f.scope, "a:read b:write")
	}
}

func TestTokenURLSkipsDiscovery(t *testing.T) {
	f := newFakeIAM(t)
	ts := TokenSource(Config{TokenURL: f.srv.URL + "/oauth/token", ClientID: "svc", ClientSecret: "s3cret"}, nil)
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if got := f.discoveries.Load(); got != 0 {
		t.Fatalf("discovery fetched %d times, want 0", got)
	}
}

func TestRefusedCredentials(t *testing.T) {
	f := newFakeIAM(t)
	_, err := TokenSource(Config{Issuer: f.srv.URL, ClientID: "svc", ClientSecret: "wrong"}, nil).Token()
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("err %v, want Unavailable", err)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err %v does not keep the *oauth2.RetrieveError", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := TokenSource(Config{Issuer: srv.URL, ClientID: "svc", ClientSecret: "s3cret"}, nil).Token()
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("err %v, want Unavailable", err)
	}
}
