// Package iamaccounts is the Go client other RealGuardIO services use to manage
// accounts in the IAM Service: the organization services (customer, dealer,
// monitoring provider) create a user when they create an employee and disable
// it when the employee leaves.
//
// The client authenticates with the OAuth client-credentials grant (scope
// "users:write"), finding the token endpoint through the IAM's discovery
// document, and maps every failure to an *apperr.Error so callers can answer
// their own clients without knowing HTTP details of the IAM.
package iamaccounts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/breaker"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/svcauth"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// ScopeUsersWrite is the scope a client-credentials token needs to manage
// IAM users.
const ScopeUsersWrite = principal.ScopeUsersWrite

// CreateUserRequest describes a user to create. ID is optional; when given
// it makes the call idempotent: repeating it with the same ID and Username
// returns the existing user (with Password and Roles replaced) instead of a
// conflict, so a caller can safely retry a half-finished creation.
type CreateUserRequest struct {
	ID       string   `json:"id,omitempty"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	// PasswordChangeRequired makes the user replace Password at the first
	// login, before any code is issued: the caller chose it.
	PasswordChangeRequired bool `json:"passwordChangeRequired,omitempty"`
}

// PasswordReset is a one-time password reset code the IAM issued: the
// user redeems it at ResetURL (which carries the code) before ExpiresAt
// to choose a new password. Hand it to the user only; it is never a
// password.
type PasswordReset struct {
	UserID    string    `json:"userId"`
	Code      string    `json:"code"`
	ResetURL  string    `json:"resetUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// User is an IAM account as the IAM Service returns it.
type User struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	Enabled  bool     `json:"enabled"`
}

// Client calls the IAM Service's user API. It is safe for concurrent use.
type Client struct {
	issuer  string
	http    *http.Client // carries the service's client-credentials token
	breaker *breaker.Breaker
}

// New returns a client for the IAM Service at issuerURL authenticating as
// clientID with clientSecret. httpClient carries the transport and timeout
// (nil means a client with a 10 s timeout). Nothing is fetched until the
// first call, so a service can start while the IAM Service is still down.
func New(issuerURL, clientID, clientSecret string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	tokens := svcauth.TokenSource(svcauth.Config{
		Issuer:       issuerURL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       []string{ScopeUsersWrite},
	}, httpClient)
	// The breaker covers the token request too (made inside the
	// transport): an IAM that is down fails the next calls at once. Only
	// an unreachable IAM trips it; a refusal (conflict, invalid, unknown
	// id) is an answer. New cannot fail without a registerer.
	b, _ := breaker.New("iam_users", breaker.Policy{}, breaker.Options{
		Display: "the IAM Service",
		Trips:   func(err error) bool { return apperr.Is(err, apperr.Unavailable) },
	})
	return &Client{
		issuer: strings.TrimRight(issuerURL, "/"),
		http: &http.Client{
			Timeout:   httpClient.Timeout,
			Transport: &oauth2.Transport{Source: tokens, Base: telemetry.Transport(transportOf(httpClient))},
		},
		breaker: b,
	}
}

// CreateUser creates an IAM account and returns it. A username that already
// exists is an apperr.Conflict; invalid input an apperr.Invalid naming the
// field; an unreachable or failing IAM an apperr.Unavailable. Roles must be
// among the roles the IAM lets this client provision (its own employee
// role, see iam.ClientConfig.ProvisionableRoles); any other is refused,
// reported as apperr.Unavailable.
//
// DisableUser, EnableUser and GetUser act only on accounts this client
// created; any other answers as an unknown id.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	if req.Roles == nil {
		req.Roles = []string{}
	}
	var u User
	err := c.do(ctx, http.MethodPost, "/api/users", req, &u)
	return u, err
}

// DisableUser disables the account id so that it can no longer log in or
// refresh its tokens. Disabling a disabled account succeeds. An account
// this client did not create is an apperr.NotFound.
func (c *Client) DisableUser(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/users/"+url.PathEscape(id)+"/disable", nil, nil)
}

// ResetPassword issues a one-time password reset code for the account
// id, voiding earlier ones; redeeming it also removes the account's second
// factor and ends its sessions. An account this client did not create is
// an apperr.NotFound; a disabled one an apperr.Conflict.
func (c *Client) ResetPassword(ctx context.Context, id string) (PasswordReset, error) {
	var r PasswordReset
	err := c.do(ctx, http.MethodPost, "/api/users/"+url.PathEscape(id)+"/password-reset", nil, &r)
	return r, err
}

// EnableUser enables the account id again.
func (c *Client) EnableUser(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/users/"+url.PathEscape(id)+"/enable", nil, nil)
}

// GetUser returns the account id; an unknown id is an apperr.NotFound. The
// IAM shows a service only the accounts that service created: any other is
// a NotFound too.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodGet, "/api/users/"+url.PathEscape(id), nil, &u)
	return u, err
}

// SetRoles replaces the application roles of the account id. Only a
// REALGUARDIO_ADMIN user may change roles, so the IAM refuses it for the
// client-credentials token this client uses (reported, like every refusal
// of the service's credentials, as apperr.Unavailable).
func (c *Client) SetRoles(ctx context.Context, id string, roles []string) (User, error) {
	if roles == nil {
		roles = []string{}
	}
	var u User
	err := c.do(ctx, http.MethodPut, "/api/users/"+url.PathEscape(id)+"/roles", map[string]any{"roles": roles}, &u)
	return u, err
}

func transportOf(h *http.Client) http.RoundTripper {
	if h.Transport != nil {
		return h.Transport
	}
	return http.DefaultTransport
}

// problem is the subset of an RFC 9457 body the client reads.
type problem struct {
	Detail string `json:"detail"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// do makes one call through the IAM's breaker.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.breaker.Do(ctx, func(ctx context.Context) error { return c.send(ctx, method, path, in, out) })
}

func (c *Client) send(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "encode IAM request")
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.issuer+path, body)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "build IAM request")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// A failure to get the service's token is already mapped by
		// svcauth (a refused credential or an IAM that cannot be reached).
		if ae := apperr.As(err); ae != nil {
			return ae
		}
		return apperr.Wrap(err, apperr.Unavailable, "the IAM Service is unreachable")
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return apperr.Wrap(err, apperr.Unavailable, "the IAM Service sent an unreadable answer")
			}
		}
		return nil
	}
	var p problem
	_ = json.Unmarshal(raw, &p)
	cause := fmt.Errorf("IAM %s %s answered %s", method, path, resp.Status)
	detail := p.Detail
	if detail == "" {
		detail = "the IAM Service refused the request"
	}
	switch {
	case resp.StatusCode == http.StatusConflict:
		return &apperr.Error{Code: apperr.Conflict, Message: detail, Cause: cause}
	case resp.StatusCode == http.StatusUnprocessableEntity || resp.StatusCode == http.StatusBadRequest:
		return &apperr.Error{Code: apperr.Invalid, Message: detail, Field: p.Field, Cause: cause}
	case resp.StatusCode == http.StatusNotFound:
		return &apperr.Error{Code: apperr.NotFound, Message: detail, Cause: cause}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Our own service's credentials are wrong or lack the scope: the
		// caller's request is fine, the IAM just cannot be used by us now.
		return apperr.Wrap(cause, apperr.Unavailable, "the IAM Service refused this service's credentials")
	case resp.StatusCode == http.StatusTooManyRequests:
		return apperr.Wrap(cause, apperr.TooManyRequests, "the IAM Service is rate limiting")
	default:
		return apperr.Wrap(cause, apperr.Unavailable, "the IAM Service is unavailable")
	}
}
