package iam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// opStorage is the op.Storage zitadel's provider runs on. The token
// creating methods are never reached: every grant is handled by server
// (server.go), which issues RFC 9068 access tokens itself.
type opStorage struct{ s *Service }

var (
	_ op.Storage                   = opStorage{}
	_ op.ClientCredentialsStorage  = opStorage{}
	_ op.CanSetUserinfoFromRequest = opStorage{}
)

// hashSecret is how codes and refresh tokens are stored: a leaked database
// does not yield usable tokens.
func hashSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

var errTokensIssuedElsewhere = errors.New("tokens are issued by the IAM server, not by zitadel's storage path")

func (o opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	now := o.s.now()
	a := &authRequest{
		ID:                  uuid.NewString(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              req.Scopes,
		ResponseType:        req.ResponseType,
		ResponseMode:        req.ResponseMode,
		CreatedAt:           now,
		ExpiresAt:           now.Add(o.s.cfg.LoginTimeout),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Prompt:              strings.Fields(strings.Join(req.Prompt, " ")),
		MaxAge:              -1,
	}
	if req.MaxAge != nil {
		a.MaxAge = int64(*req.MaxAge)
	}
	if err := o.s.store.insertAuthRequest(ctx, a); err != nil {
		return nil, o.storeError(ctx, "save authorization request", err)
	}
	return a, nil
}

// The errors opStorage hands to zitadel carry fixed descriptions and no
// parent: zitadel shows an error's description (and, where it renders
// err.Error(), its parent too) to the browser or the client, and a store
// error's text is internal detail (SQL, driver, "not found"). The cause is
// logged instead. Each call returns a new error because zitadel sets
// fields (state) on the one it gets.

// errAuthRequestUnknown is the answer for an authorization request that
// does not exist (any more) or is not in the state the step needs.
func errAuthRequestUnknown() *oidc.Error {
	return oidc.ErrInvalidRequest().WithDescription("the authorization request is unknown or has expired; start again")
}

// storeError logs a store failure and returns the fixed server_error the
// protocol layer may show.
func (o opStorage) storeError(ctx context.Context, what string, err error) error {
	httpx.LoggerFrom(ctx).ErrorContext(ctx, "iam store: "+what, "err", err)
	return oidc.ErrServerError().WithDescription("the request could not be completed; try again later")
}

func (o opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := o.s.store.authRequestByID(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, errAuthRequestUnknown()
	}
	if err != nil {
		return nil, o.storeError(ctx, "load authorization request", err)
	}
	if !o.s.now().Before(a.ExpiresAt) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the authorization request has expired")
	}
	return a, nil
}

func (o opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := o.s.store.authRequestByCodeHash(ctx, o.s.db, hashSecret(code))
	if errors.Is(err, errNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if err != nil {
		return nil, o.storeError(ctx, "load authorization request by code", err)
	}
	return a, nil
}

func (o opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	err := o.s.store.saveCode(ctx, id, hashSecret(code), o.s.now())
	if errors.Is(err, errNotFound) {
		// Not completed, or it already has its code (a replayed callback).
		return errAuthRequestUnknown()
	}
	if err != nil {
		return o.storeError(ctx, "save authorization code", err)
	}
	return nil
}

func (o opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	return o.s.store.deleteAuthRequest(ctx, id)
}

func (o opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, oidc.ErrServerError().WithParent(errTokensIssuedElsewhere)
}

func (o opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrServerError().WithParent(errTokensIssuedElsewhere)
}

func (o opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, oidc.ErrServerError().WithParent(errTokensIssuedElsewhere)
}

// TerminateSession ends a user's session at one client (RP-initiated
// logout): every refresh token the user holds there is revoked. The IAM
// keeps no browser session of its own, so there is nothing else to end.
func (o opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if userID == "" || clientID == "" {
		return nil
	}
	if err := o.s.store.revokeUserClient(ctx, userID, clientID); err != nil {
		return o.storeError(ctx, "revoke refresh tokens at logout", err)
	}
	return nil
}

func (o opStorage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	t, err := o.s.store.refreshTokenByHash(ctx, o.s.db, hashSecret(tokenOrID))
	if err != nil || t.ClientID != clientID {
		return nil
	}
	if err := o.s.store.revokeFamily(ctx, o.s.db, t.FamilyID); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (o opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := o.s.store.refreshTokenByHash(ctx, o.s.db, hashSecret(token))
	if err != nil || t.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.UserID, token, nil
}

func (o opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	k, err := o.s.keys.current()
	if err != nil {
		return nil, err
	}
	return opSigningKey{k}, nil
}

func (o opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (o opStorage) KeySet(context.Context) ([]op.Key, error) { return o.s.keys.opKeys(), nil }

// errUnknownClient is deliberately not an *oidc.Error: zitadel turns it
// into invalid_client at the token endpoint and refuses to redirect at the
// authorization endpoint.
var errUnknownClient = errors.New("unknown client")

func (o opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := o.s.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client").WithParent(errUnknownClient)
	}
	return c, nil
}

func (o opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := o.s.clients[id]
	if !ok || !c.checkSecret(secret) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

func (o opStorage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c, ok := o.s.clients[id]
	if !ok || !c.checkSecret(secret) {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return c, nil
}

func (o opStorage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return nil, oidc.ErrServerError().WithParent(errTokensIssuedElsewhere)
}

func (o opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims, and its sid
// (OpenID Connect Front-/Back-Channel Logout) when the token belongs to a
// session with refresh tokens.
func (o opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := o.s.fillUserinfo(ctx, info, req.GetSubject(), scopes); err != nil {
		return err
	}
	if s, ok := req.(interface{ sessionID() string }); ok && s.sessionID() != "" {
		info.AppendClaims("sid", s.sessionID())
	}
	return nil
}

func (o opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	return o.s.fillUserinfo(ctx, info, subject, []string{oidc.ScopeOpenID, oidc.ScopeProfile})
}

func (o opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (o opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (o opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (o opStorage) Health(ctx context.Context) error { return o.s.db.Ping(ctx) }

func (s *Service) fillUserinfo(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := s.store.userByID(ctx, s.db, userID)
	if err != nil {
		return err
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		if sc == oidc.ScopeProfile {
			info.PreferredUsername = u.Username
		}
	}
	return nil
}
