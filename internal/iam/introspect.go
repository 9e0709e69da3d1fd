package iam

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/auth"
)

// Token introspection (RFC 7662) for the clients that cannot or would
// rather not validate the IAM's JWTs themselves, and for a client that
// wants to know whether its refresh token still lives.
//
// zitadel's op package parses the request (client credentials from Basic
// or the form, the token), insists on client credentials and writes the
// oidc.IntrospectionResponse; server.Introspect below decides. It does not
// use zitadel's own access-token verifier: the IAM's tokens are judged by
// internal/platform/auth, as at every resource server, so introspection
// never calls active a token a service would refuse.
//
// What the answer says:
//   - Only an authenticated confidential client gets an answer; anyone
//     else gets 401 invalid_client with a Basic challenge (RFC 7662 §2.3).
//   - An access token is active when it passes the strict validator for
//     the caller's own audience (so a token meant for another service is
//     inactive to this one), its user still exists and is enabled (or its
//     service client is still configured), and its session (sid, the
//     refresh family) has not been revoked. That last check is what a
//     local validation cannot do: after a logout, a revocation or a
//     disable, the remaining minutes of an access token are inactive here.
//   - A refresh token is active only to the client it was issued to,
//     while it is unrevoked, not yet rotated, within its own and its
//     family's lifetime, and its user enabled.
//   - Anything else (expired, revoked, foreign, malformed, unknown) is
//     {"active":false} and nothing more: the reason is not told.

// maxIntrospectedToken bounds the token a caller may send; nothing the IAM
// issues is longer than an access token at its size limit.
const maxIntrospectedToken = 64 << 10

// introspectionAuthMethods are the client authentication methods of the
// introspection endpoint, as discovery advertises them: a client secret,
// in the Basic header or in the form. A public client has no credentials
// and is refused.
var introspectionAuthMethods = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}

// introspectors are the strict access-token validators, one per audience
// (the introspecting client's id), created on first use. They read the
// IAM's discovery and JWKS in process, as the IAM's own validator does.
type introspectors struct {
	mu sync.Mutex
	by map[string]*auth.Validator
}

// introspectionValidator returns the validator for audience aud.
func (s *Service) introspectionValidator(aud string) (*auth.Validator, error) {
	s.introspect.mu.Lock()
	defer s.introspect.mu.Unlock()
	if v, ok := s.introspect.by[aud]; ok {
		return v, nil
	}
	v, err := auth.NewValidator(auth.Options{
		Issuer:                 s.cfg.Issuer,
		Audience:               aud,
		HTTPClient:             &http.Client{Transport: selfTransport{s.handler}, Timeout: 5 * time.Second},
		JWKSMinRefreshInterval: selfRefreshInterval,
		Clock:                  s.now,
		Logger:                 s.log,
	})
	if err != nil {
		return nil, err
	}
	if s.introspect.by == nil {
		s.introspect.by = map[string]*auth.Validator{}
	}
	s.introspect.by[aud] = v
	return v, nil
}

// errIntrospectionClient is the answer to a caller that is not an
// authenticated confidential client.
func errIntrospectionClient() error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
}

// refuseIntrospection answers what zitadel's handler would
// get wrong, and reports whether it answered: a request that is not a
// POST with the token in its form body (RFC 7662 §2.1; zitadel reads the
// query too, and a token in a URL ends up in logs) is invalid_request; one
// without any client credentials is 401 invalid_client, where zitadel
// would answer 400 (§2.3 wants 401 for a caller that did not
// authenticate).
func refuseIntrospection(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Query().Has("token") {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("send the token by POST in the form body"), nil)
		return true
	}
	if _, _, ok := r.BasicAuth(); ok {
		return false
	}
	if err := r.ParseForm(); err == nil && r.PostForm.Get("client_id") != "" && r.PostForm.Get("client_secret") != "" {
		return false
	}
	op.RequestError(w, r, oidc.ErrInvalidClient().WithDescription("client authentication is required"), nil)
	return true
}

// Introspect answers an RFC 7662 introspection request of an
// authenticated confidential client.
func (sv *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	s := sv.s
	cc := r.Data.ClientCredentials
	if cc == nil || cc.ClientAssertion != "" {
		return nil, errIntrospectionClient()
	}
	c, ok := s.clients[cc.ClientID]
	if !ok || c.cfg.Public || !c.checkSecret(cc.ClientSecret) {
		return nil, errIntrospectionClient()
	}
	token := ""
	if r.Data.IntrospectionRequest != nil {
		token = r.Data.Token
	}
	resp, err := s.introspectToken(ctx, c, token)
	if err != nil {
		// Inactive whatever the reason: the caller learns nothing about
		// why, and a store failure must not read as "active".
		if !errors.Is(err, errInactive) {
			(opStorage{s}).storeError(ctx, "introspect a token", err)
		}
		resp = &oidc.IntrospectionResponse{}
	}
	return op.NewResponse(resp), nil
}

// errInactive is every reason a token is not active.
var errInactive = errors.New("token inactive")

// introspectToken judges token for client c. The IAM's access tokens are
// JWTs and its refresh tokens opaque, so the form tells which is which;
// token_type_hint is not needed (RFC 7662 §2.1 lets the server ignore it).
func (s *Service) introspectToken(ctx context.Context, c *client, token string) (*oidc.IntrospectionResponse, error) {
	if token == "" || len(token) > maxIntrospectedToken {
		return nil, errInactive
	}
	if strings.Count(token, ".") == 2 {
		return s.introspectAccessToken(ctx, c, token)
	}
	return s.introspectRefreshToken(ctx, c, token)
}

func (s *Service) introspectAccessToken(ctx context.Context, c *client, token string) (*oidc.IntrospectionResponse, error) {
	v, err := s.introspectionValidator(c.GetID())
	if err != nil {
		return nil, err
	}
	caller, err := v.Validate(ctx, token)
	if err != nil {
		return nil, errInactive
	}
	claims := caller.Claims
	resp := &oidc.IntrospectionResponse{
		Scope:     caller.Scopes,
		ClientID:  caller.ClientID,
		TokenType: oidc.BearerToken,
		Subject:   caller.Subject,
		Audience:  stringsOfClaim(claims["aud"]),
		Issuer:    s.cfg.Issuer,
	}
	resp.JWTID, _ = claims["jti"].(string)
	resp.Expiration = numericClaim(claims["exp"])
	resp.IssuedAt = numericClaim(claims["iat"])
	resp.NotBefore = numericClaim(claims["nbf"])
	if sid, _ := claims["sid"].(string); sid != "" {
		live, err := s.store.familyLive(ctx, sid, caller.Subject)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, errInactive
		}
	}
	if err := (opStorage{s}).SetIntrospectionFromToken(ctx, resp, resp.JWTID, caller.Subject, c.GetID()); err != nil {
		return nil, err
	}
	resp.Claims = map[string]any{"roles": caller.Roles}
	resp.Active = true
	return resp, nil
}

func (s *Service) introspectRefreshToken(ctx context.Context, c *client, token string) (*oidc.IntrospectionResponse, error) {
	t, err := s.store.refreshTokenByHash(ctx, s.db, hashSecret(token))
	if errors.Is(err, errNotFound) {
		return nil, errInactive
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if t.ClientID != c.GetID() || t.Revoked || t.Used || !now.Before(t.ExpiresAt) ||
		!now.Before(t.FamilyCreatedAt.Add(s.cfg.RefreshFamilyLifetime)) {
		return nil, errInactive
	}
	resp := &oidc.IntrospectionResponse{
		Scope:      t.Scopes,
		ClientID:   t.ClientID,
		Subject:    t.UserID,
		Issuer:     s.cfg.Issuer,
		Expiration: oidc.FromTime(t.ExpiresAt),
		IssuedAt:   oidc.FromTime(t.CreatedAt),
		AuthTime:   oidc.FromTime(t.AuthTime),
	}
	if err := (opStorage{s}).SetIntrospectionFromToken(ctx, resp, t.ID, t.UserID, c.GetID()); err != nil {
		return nil, err
	}
	resp.Claims = map[string]any{"sid": t.FamilyID}
	resp.Active = true
	return resp, nil
}

// SetIntrospectionFromToken fills what the IAM knows about the subject of
// an introspected token, and refuses (errInactive) a subject that may no
// longer act: a user deleted or disabled, a service client no longer
// configured. It is zitadel's op.Storage hook; server.Introspect calls it
// once the token itself is judged.
func (o opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, _, subject, _ string) error {
	if c, ok := o.s.clients[subject]; ok && resp.ClientID == subject {
		// A client-credentials token: sub is the client.
		resp.Username = c.GetID()
		return nil
	}
	u, err := o.s.store.userByID(ctx, o.s.db, subject)
	if errors.Is(err, errNotFound) {
		return errInactive
	}
	if err != nil {
		return err
	}
	if !u.Enabled {
		return errInactive
	}
	resp.Subject = u.ID
	resp.Username = u.Username
	return nil
}

// stringsOfClaim reads aud: a string or an array of strings.
func stringsOfClaim(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numericClaim reads a NumericDate the validator already checked.
func numericClaim(v any) oidc.Time {
	if f, ok := v.(float64); ok {
		return oidc.FromTime(time.Unix(int64(f), 0))
	}
	return 0
}

// familyLive reports whether the session (refresh family) familyID of
// userID still has an unrevoked token: a logout, a revocation, a replay
// or a disable revokes every token of the family at once.
func (s *store) familyLive(ctx context.Context, familyID, userID string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM iam_refresh_tokens WHERE family_id = ? AND user_id = ? AND revoked = 0 LIMIT 1`, familyID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
