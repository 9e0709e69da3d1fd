package systemtest

import (
	"context"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
)

// CLIClientID is the IAM Service's public client for command-line use
// (API.md): authorization code with PKCE, loopback redirect on any port.
const CLIClientID = apiclient.CLIClientID

// Session is a user logged in through the OIDC flow (apiclient.Session):
// the verified ID token's subject and the current tokens, refreshable with
// the refresh token.
type Session = apiclient.Session

// provider discovers the IAM Service once per system.
func (s *System) provider(ctx context.Context) (*apiclient.Provider, error) {
	s.oidcOnce.Do(func() {
		s.oidc, s.oidcErr = apiclient.Discover(ctx, s.Issuer, s.http)
	})
	return s.oidc, s.oidcErr
}

// Login logs username in as a person at a terminal would with the CLI
// client (apiclient.Provider.Login): a loopback listener for the redirect,
// a browser-like HTTP client submitting the IAM's HTML login form, the
// code exchanged with PKCE, and the ID token verified. The session is
// remembered so WaitConverged can refresh it when the strategy needs fresh
// tokens.
func (s *System) Login(ctx context.Context, username, password string) (*Session, error) {
	p, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	se, err := p.Login(ctx, username, password)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, se)
	s.mu.Unlock()
	return se, nil
}

// FirstLogin is Login for an account an organization service created
// with an initial password (given or generated; someone else's choice):
// the IAM asks for a new password after it, and password is entered
// there as the employee would (apiclient.Provider.LoginChangingPassword).
// From then on the account logs in with password.
func (s *System) FirstLogin(ctx context.Context, username, initial, password string) (*Session, error) {
	p, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	se, err := p.LoginChangingPassword(ctx, username, initial, password)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, se)
	s.mu.Unlock()
	return se, nil
}

// MustFirstLogin is FirstLogin that fails the test on error.
func (s *System) MustFirstLogin(username, initial, password string) *Session {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := s.FirstLogin(ctx, username, initial, password)
	if err != nil {
		s.tb.Fatal(err)
	}
	return se
}

// MustLogin is Login that fails the test on error.
func (s *System) MustLogin(username, password string) *Session {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := s.Login(ctx, username, password)
	if err != nil {
		s.tb.Fatal(err)
	}
	return se
}
