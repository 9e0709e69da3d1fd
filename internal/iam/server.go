package iam

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// The endpoints of the OpenID Provider, relative to the issuer.
var endpoints = op.Endpoints{
	Authorization: op.NewEndpoint("authorize"),
	Token:         op.NewEndpoint("oauth/token"),
	Userinfo:      op.NewEndpoint("userinfo"),
	Revocation:    op.NewEndpoint("oauth/revoke"),
	EndSession:    op.NewEndpoint("end_session"),
	JwksURI:       op.NewEndpoint("keys"),
	// Introspection is RFC 7662, for confidential clients (introspect.go).
	Introspection: op.NewEndpoint("oauth/introspect"),
}

// server is zitadel's LegacyServer with the grants RealGuardIO needs done
// its own way: every access token is an RFC 9068 JWT (typ at+jwt) built by
// the ClaimsBuilder, refresh tokens rotate with reuse detection, codes are
// single-use with replay revocation, and PKCE S256 is mandatory.
type server struct {
	*op.LegacyServer
	s *Service
}

func (s *Service) buildProvider(insecure bool) error {
	var cryptoKey [32]byte
	// The provider's AES key only protects values zitadel encrypts for
	// itself (the authorization code's text); codes are looked up by their
	// hash in the database, so a per-process key works across instances.
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return err
	}
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: s.cfg.Issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess, ScopeUsersWrite, ScopeAuthzRead},
	}
	opts := []op.Option{op.WithCORSOptions(corsPolicy())}
	if insecure {
		// zitadel refuses http issuers; Config.Validate admits them only
		// for loopback hosts (local development and tests).
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(opCfg, opStorage{s}, op.StaticIssuer(s.cfg.Issuer), opts...)
	if err != nil {
		return fmt.Errorf("openid provider: %w", err)
	}
	s.provider = p
	s.server = &server{LegacyServer: op.NewLegacyServer(p, endpoints), s: s}
	return nil
}

// corsPolicy is the IAM's CORS policy. zitadel's default admits every
// origin with credentials. No browser page calls the IAM's endpoints
// cross-origin (the BFF talks to it server to server, and the login form
// is same-origin), so every cross-origin request is refused: no response
// carries Access-Control-Allow-Origin.
func corsPolicy() *cors.Options {
	return &cors.Options{AllowOriginFunc: func(string) bool { return false }}
}

// opHandler serves zitadel's endpoints. The CORS policy must be given to
// the server too: the provider's (op.WithCORSOptions) only applies to
// op.NewProvider's own router, and the legacy server's router otherwise
// applies zitadel's allow-all default.
func (s *Service) opHandler() http.Handler {
	return op.RegisterLegacyServer(s.server, func(w http.ResponseWriter, r *http.Request) {
		op.AuthorizeCallback(w, r, s.provider)
	}, op.WithServerCORSOptions(corsPolicy()))
}

// authCallbackURL is where the login page sends the browser once the user
// is authenticated; zitadel's callback handler issues the code there.
func (s *Service) authCallbackURL(authRequestID string) string {
	return s.cfg.Issuer + endpoints.Authorization.Relative() + "/callback?id=" + authRequestID
}

// Discovery advertises only what the IAM really supports (zitadel's
// defaults include the implicit grant and plain PKCE).
func (sv *server) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := sv.LegacyServer.Discovery(ctx, r)
	if err != nil {
		return nil, err
	}
	if d, ok := resp.Data.(*oidc.DiscoveryConfiguration); ok {
		d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
		d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
		d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
		d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
		d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
		d.RevocationEndpointAuthMethodsSupported = d.TokenEndpointAuthMethodsSupported
		// Introspection takes a client secret only (introspect.go).
		d.IntrospectionEndpointAuthMethodsSupported = introspectionAuthMethods
		d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
		// Back-channel logout tokens carry sid and sub (backchannel.go).
		d.BackChannelLogoutSupported = true
		d.BackChannelLogoutSessionSupported = true
		d.RequestParameterSupported = false
		d.RequestURIParameterSupported = false
		d.ClaimsSupported = []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "at_hash", "c_hash", "azp", "sid", "preferred_username", "roles", "scope", "client_id"}
		resp.Data = discovery{DiscoveryConfiguration: d, AuthorizationResponseISS: true}
	}
	return resp, nil
}

// discovery is the discovery document with the members zitadel's type
// lacks.
type discovery struct {
	*oidc.DiscoveryConfiguration
	// AuthorizationResponseISS says that every authorization response
	// carries iss (RFC 9207), so a client can tell which issuer answered.
	AuthorizationResponseISS bool `json:"authorization_response_iss_parameter_supported"`
}

// VerifyAuthRequest checks the redirect_uri against the client's own
// matching (client.redirectAllowed) before zitadel's, which accepts any
// loopback host and scheme for a native client. The refusal is rendered
// here, never redirected to the URI in question.
func (sv *server) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	cr, err := sv.LegacyServer.VerifyAuthRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	if uri := cr.Data.RedirectURI; uri != "" {
		if c, ok := cr.Client.(*client); !ok || !c.redirectAllowed(uri) {
			return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("the redirect_uri is not registered for this client")
		}
	}
	return cr, nil
}

// EndSession is zitadel's RP-initiated logout with the client's own
// post_logout_redirect_uri matching (client.postLogoutAllowed), for the
// same reason as VerifyAuthRequest. An access token is no id_token_hint.
// Only a valid, unexpired ID token ends its session's refresh tokens (the
// family named by its sid): an expired one is only a hint (RP-Initiated
// Logout §2) and anyone who ever saw it could otherwise log the user out;
// the client revokes its own refresh token at /oauth/revoke in any case.
func (sv *server) EndSession(ctx context.Context, r *op.Request[oidc.EndSessionRequest]) (*op.Redirect, error) {
	hint := r.Data.IdTokenHint
	if hint != "" && isAccessToken(hint) {
		return nil, oidc.ErrInvalidRequest().WithDescription("id_token_hint invalid: an access token is not an ID token")
	}
	session, err := op.ValidateEndSessionRequest(ctx, r.Data, sv.s.provider)
	if err != nil {
		return nil, err
	}
	if uri := r.Data.PostLogoutRedirectURI; uri != "" && session.ClientID != "" {
		if c := sv.s.clients[session.ClientID]; c == nil || !c.postLogoutAllowed(uri) {
			return nil, oidc.ErrInvalidRequest().WithDescription("post_logout_redirect_uri invalid")
		}
	}
	// The browser's IAM session ends with any accepted logout request;
	// protocolHeaders clears its cookie.
	sv.s.endSession(ctx, r.Header)
	if hint != "" {
		claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, sv.s.provider.IDTokenHintVerifier(ctx))
		if err == nil && claims.SessionID != "" {
			if err := sv.s.store.revokeSession(ctx, claims.SessionID, claims.Subject, session.ClientID); err != nil {
				return nil, (opStorage{sv.s}).storeError(ctx, "revoke the session at logout", err)
			}
			sv.s.backchannel.logout(ctx, claims.Subject, session.ClientID, claims.SessionID)
		}
	}
	return op.NewRedirect(session.RedirectURI), nil
}

// Authorize enforces what zitadel leaves optional: the code flow only,
// PKCE with S256 for every client, and only the scopes the client is
// configured for. Its errors are redirected to the (already validated)
// redirect URI.
func (sv *server) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	req := r.Data
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("only response_type=code is supported")
	}
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	if req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("only code_challenge_method=S256 is supported")
	}
	if !pkceValue(req.CodeChallenge) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636)")
	}
	if r.Form.Get("request_uri") != "" {
		return nil, errRequestURINotSupported()
	}
	if req.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported().WithDescription("request objects are not supported")
	}
	if prompt := strings.Fields(strings.Join(req.Prompt, " ")); slices.Contains(prompt, oidc.PromptNone) {
		// Only a browser session that may answer without the form lets a
		// prompt=none request through; the login page then completes it.
		if len(prompt) > 1 {
			return nil, oidc.ErrInvalidRequest().WithDescription("prompt=none cannot be combined with other values")
		}
		maxAge := int64(-1)
		if req.MaxAge != nil {
			maxAge = int64(*req.MaxAge)
		}
		if b, _ := sv.s.currentSession(ctx, r.Header); b == nil || !sv.s.sessionAnswers(prompt, maxAge, b) || !sv.s.sessionMaySkipLogin(ctx, b) {
			return nil, oidc.ErrLoginRequired()
		}
	}
	c := r.Client.(*client)
	scopes := slices.DeleteFunc(slices.Clone(req.Scopes), func(sc string) bool { return !c.IsScopeAllowed(sc) })
	if len(scopes) == 0 {
		return nil, oidc.ErrInvalidScope().WithDescription("none of the requested scopes is allowed for this client")
	}
	req.Scopes = scopes
	return sv.LegacyServer.Authorize(ctx, r)
}

var (
	errCodeReplayed    = errors.New("authorization code replayed")
	errRefreshReplayed = errors.New("refresh token replayed")
)

// CodeExchange redeems an authorization code. A code is single-use: a
// second presentation fails and revokes the refresh tokens issued for the
// first (RFC 6749 §4.1.2), since one of the two presenters is an attacker.
func (sv *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	s := sv.s
	c := r.Client.(*client)
	a, err := s.store.authRequestByCodeHash(ctx, s.db, hashSecret(r.Data.Code))
	if errors.Is(err, errNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if a.ClientID != c.GetID() {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if a.CodeUsed {
		if err := s.store.revokeFamily(ctx, s.db, a.FamilyID); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		if a.FamilyID != "" {
			s.backchannel.logout(ctx, a.UserID, a.ClientID, a.FamilyID)
		}
		s.metrics.replays.WithLabelValues("authorization_code").Inc()
		return nil, oidc.ErrInvalidGrant().WithDescription("code already used; the tokens issued for it are revoked")
	}
	if !s.now().Before(a.CodeCreatedAt.Add(s.cfg.AuthCodeLifetime)) {
		return nil, oidc.ErrInvalidGrant().WithDescription("code expired")
	}
	if r.Data.RedirectURI != a.RedirectURI {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	}
	if r.Data.CodeVerifier == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_verifier required")
	}
	if !pkceValue(r.Data.CodeVerifier) {
		return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636)")
	}
	if ch := a.GetCodeChallenge(); ch == nil || ch.Method != oidc.CodeChallengeMethodS256 || !oidc.VerifyCodeChallenge(ch, r.Data.CodeVerifier) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code_verifier")
	}
	u, err := s.store.userByID(ctx, s.db, a.UserID)
	if err != nil || !u.Enabled {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user may not log in")
	}
	now := s.now()
	withRefresh := slices.Contains(a.Scopes, oidc.ScopeOfflineAccess) && c.allowsGrant(oidc.GrantTypeRefreshToken)
	var familyID, refresh string
	if withRefresh {
		familyID, refresh = uuid.NewString(), randomToken(32)
	}
	claims, err := s.claims.Build(ctx, AccessTokenRequest{
		Subject: u.ID, UserID: u.ID, ClientID: c.GetID(), Audience: c.cfg.Audiences,
		Scopes: a.Scopes, Roles: u.Roles, IssuedAt: now, Lifetime: c.atLifetime, SessionID: familyID,
	})
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		ok, err := s.store.consumeCode(ctx, tx, a.ID, familyID)
		if err != nil {
			return err
		}
		if !ok {
			return errCodeReplayed
		}
		if withRefresh {
			return s.store.insertRefreshToken(ctx, tx, &refreshToken{
				Hash: hashSecret(refresh), ID: uuid.NewString(), FamilyID: familyID, ClientID: c.GetID(), UserID: u.ID,
				Scopes: a.Scopes, AuthTime: a.AuthTime, AMR: a.AMR, CreatedAt: now, FamilyCreatedAt: now,
				ExpiresAt: s.refreshExpiry(now, now),
			})
		}
		return nil
	})
	if errors.Is(err, errCodeReplayed) {
		// Lost a race with a concurrent exchange of the same code: that is
		// a replay too, so revoke what the winner got.
		if again, rerr := s.store.authRequestByCodeHash(ctx, s.db, hashSecret(r.Data.Code)); rerr == nil {
			_ = s.store.revokeFamily(ctx, s.db, again.FamilyID)
		}
		s.metrics.replays.WithLabelValues("authorization_code").Inc()
		return nil, oidc.ErrInvalidGrant().WithDescription("code already used; the tokens issued for it are revoked")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	// The ID token's sid names the session (the refresh family) that
	// end_session ends.
	a.FamilyID = familyID
	return sv.tokenResponse(ctx, "authorization_code", c, claims, a, r.Data.Code, refresh)
}

// tokenResponse signs the access token and, for openid requests, the ID
// token whose at_hash binds it to that access token.
func (sv *server) tokenResponse(ctx context.Context, grant string, c *client, claims map[string]any, idReq op.IDTokenRequest, code, refresh string) (*op.Response, error) {
	s := sv.s
	at, err := s.signAccessToken(claims)
	var tooLarge *tokenTooLargeError
	if errors.As(err, &tooLarge) {
		// Retrying cannot help, so this is not a 503: the user's
		// authorization data must shrink or the strategy change.
		s.log.WarnContext(ctx, "access token refused: too large", "client", c.GetID(), "sub", claims["sub"], "bytes", tooLarge.size, "max", tooLarge.max)
		return nil, oidc.ErrServerError().WithDescription("%s", tooLarge.Error())
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  at,
		TokenType:    oidc.BearerToken,
		RefreshToken: refresh,
		ExpiresIn:    uint64(c.atLifetime / time.Second),
		Scope:        strings.Fields(claims["scope"].(string)),
	}
	if idReq != nil && slices.Contains(idReq.GetScopes(), oidc.ScopeOpenID) {
		resp.IDToken, err = op.CreateIDToken(ctx, s.cfg.Issuer, idReq, c.IDTokenLifetime(), at, code, opStorage{s}, c)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
	}
	s.metrics.tokens.WithLabelValues(grant).Inc()
	return op.NewResponse(resp), nil
}

// refreshExpiry is the expiry of a refresh token issued at now in a
// family begun at familyStart: RefreshTokenLifetime, but never past the
// family's end, so the token does not outlive its session (and is pruned
// with it).
func (s *Service) refreshExpiry(now, familyStart time.Time) time.Time {
	exp := now.Add(s.cfg.RefreshTokenLifetime)
	if end := familyStart.Add(s.cfg.RefreshFamilyLifetime); end.Before(exp) {
		return end
	}
	return exp
}

// refreshIDRequest is the ID token request of a refresh.
type refreshIDRequest struct {
	t      *refreshToken
	scopes []string
}

func (r refreshIDRequest) GetAMR() []string       { return r.t.AMR }
func (r refreshIDRequest) GetAudience() []string  { return []string{r.t.ClientID} }
func (r refreshIDRequest) GetAuthTime() time.Time { return r.t.AuthTime }
func (r refreshIDRequest) GetClientID() string    { return r.t.ClientID }
func (r refreshIDRequest) GetScopes() []string    { return r.scopes }
func (r refreshIDRequest) GetSubject() string     { return r.t.UserID }

// sessionID is the ID token's sid: the refresh family.
func (r refreshIDRequest) sessionID() string { return r.t.FamilyID }

// RefreshToken rotates a refresh token. Presenting a token that was already
// rotated means it was copied: the whole family is revoked, so both the
// thief and the user must log in again; except within the reuse grace
// window, where the same successor is returned (refreshReused).
func (sv *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	s := sv.s
	c := r.Client.(*client)
	hash := hashSecret(r.Data.RefreshToken)
	t, err := sv.presentedRefresh(ctx, c, hash)
	if err != nil {
		return nil, err
	}
	if t.Used {
		return sv.refreshReused(ctx, r, t)
	}
	now := s.now()
	claims, scopes, err := sv.refreshClaims(ctx, r, t, now)
	if err != nil {
		return nil, err
	}
	next := s.successorToken(r.Data.RefreshToken)
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		ok, err := s.store.markRefreshUsed(ctx, tx, hash, now)
		if err != nil {
			return err
		}
		if !ok {
			return errRefreshReplayed
		}
		return s.store.insertRefreshToken(ctx, tx, &refreshToken{
			Hash: hashSecret(next), ID: uuid.NewString(), FamilyID: t.FamilyID, ClientID: t.ClientID, UserID: t.UserID,
			Scopes: t.Scopes, AuthTime: t.AuthTime, AMR: t.AMR, CreatedAt: now, FamilyCreatedAt: t.FamilyCreatedAt,
			ExpiresAt: s.refreshExpiry(now, t.FamilyCreatedAt),
		})
	})
	if errors.Is(err, errRefreshReplayed) {
		// Lost a race with a concurrent rotation (or revocation) of the
		// same token: judge it as the reuse it now is.
		again, err := sv.presentedRefresh(ctx, c, hash)
		if err != nil {
			return nil, err
		}
		return sv.refreshReused(ctx, r, again)
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return sv.tokenResponse(ctx, "refresh_token", c, claims, refreshIDRequest{t: t, scopes: scopes}, "", next)
}

// presentedRefresh looks up the presented refresh token of client c; an
// unknown, foreign or revoked token is invalid_grant.
func (sv *server) presentedRefresh(ctx context.Context, c *client, hash string) (*refreshToken, error) {
	t, err := sv.s.store.refreshTokenByHash(ctx, sv.s.db, hash)
	if errors.Is(err, errNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if t.ClientID != c.GetID() {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	if t.Revoked {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token revoked")
	}
	return t, nil
}

// refreshClaims checks that t may still be refreshed at now (its own and
// its family's lifetime, the user still enabled, the scopes granted) and
// builds the new access token's claims.
func (sv *server) refreshClaims(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest], t *refreshToken, now time.Time) (map[string]any, []string, error) {
	s := sv.s
	c := r.Client.(*client)
	if !now.Before(t.ExpiresAt) {
		return nil, nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	if !now.Before(t.FamilyCreatedAt.Add(s.cfg.RefreshFamilyLifetime)) {
		// Checked on its own, not only through ExpiresAt, so that tokens
		// issued before the family lifetime existed, or under a longer
		// one, end on time too.
		return nil, nil, oidc.ErrInvalidGrant().WithDescription("the session has reached its maximum lifetime; log in again")
	}
	u, err := s.store.userByID(ctx, s.db, t.UserID)
	if err != nil || !u.Enabled {
		return nil, nil, oidc.ErrInvalidGrant().WithDescription("the user may not log in")
	}
	scopes := t.Scopes
	if len(r.Data.Scopes) > 0 {
		for _, sc := range r.Data.Scopes {
			if !slices.Contains(t.Scopes, sc) {
				return nil, nil, oidc.ErrInvalidScope().WithDescription("scope %q was not granted", sc)
			}
		}
		scopes = r.Data.Scopes
	}
	claims, err := s.claims.Build(ctx, AccessTokenRequest{
		Subject: u.ID, UserID: u.ID, ClientID: c.GetID(), Audience: c.cfg.Audiences,
		Scopes: scopes, Roles: u.Roles, IssuedAt: now, Lifetime: c.atLifetime, SessionID: t.FamilyID,
	})
	if err != nil {
		return nil, nil, err
	}
	return claims, scopes, nil
}

// refreshReused answers a refresh token presented again after its
// rotation. Within RefreshReuseGrace of the rotation, while the successor
// is still unused, it is the same client racing itself (two BFF instances,
// a retry after a lost response): the answer is the same successor refresh
// token with a fresh access token. Otherwise the token was copied, and the
// whole family is revoked.
func (sv *server) refreshReused(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest], t *refreshToken) (*op.Response, error) {
	s := sv.s
	c := r.Client.(*client)
	now := s.now()
	if grace := s.cfg.RefreshReuseGrace; grace > 0 && !t.Revoked && t.Used && now.Sub(t.UsedAt) < grace {
		next := s.successorToken(r.Data.RefreshToken)
		succ, err := s.store.refreshTokenByHash(ctx, s.db, hashSecret(next))
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		if err == nil && !succ.Used && !succ.Revoked && succ.FamilyID == t.FamilyID {
			claims, scopes, err := sv.refreshClaims(ctx, r, succ, now)
			if err != nil {
				return nil, err
			}
			s.metrics.replays.WithLabelValues("refresh_token_within_grace").Inc()
			return sv.tokenResponse(ctx, "refresh_token", c, claims, refreshIDRequest{t: succ, scopes: scopes}, "", next)
		}
	}
	if err := s.store.revokeFamily(ctx, s.db, t.FamilyID); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	// The client's session of that family ends now, not at its next
	// refresh (backchannel.go).
	s.backchannel.logout(ctx, t.UserID, t.ClientID, t.FamilyID)
	s.metrics.replays.WithLabelValues("refresh_token").Inc()
	return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used; its session is revoked")
}

// successorToken is the refresh token that replaces token at its rotation:
// an HMAC of it under the IAM's rotation key. Deriving it, rather than
// drawing it at random, is what lets the grace window return the same
// successor again while the database keeps only hashes: only whoever
// presents the old token (and the IAM) can compute it, and the key alone
// (without a token) yields none.
func (s *Service) successorToken(token string) string {
	m := hmac.New(sha256.New, s.rotationKey)
	m.Write([]byte("realguardio-refresh-successor:"))
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ClientCredentialsExchange issues a service token: sub and client_id are
// the client, roles are empty. With no scope requested the client gets all
// of its configured scopes.
func (sv *server) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	s := sv.s
	c := r.Client.(*client)
	scopes := []string(r.Data.Scope)
	if len(scopes) == 0 {
		scopes = c.cfg.Scopes
	}
	for _, sc := range scopes {
		if !c.IsScopeAllowed(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed for this client", sc)
		}
	}
	claims, err := s.claims.Build(ctx, AccessTokenRequest{
		Subject: c.GetID(), ClientID: c.GetID(), Audience: c.cfg.Audiences,
		Scopes: scopes, IssuedAt: s.now(), Lifetime: c.atLifetime,
	})
	if err != nil {
		return nil, err
	}
	return sv.tokenResponse(ctx, "client_credentials", c, claims, nil, "", "")
}

// Revocation implements RFC 7009. Revoking a refresh token revokes its
// whole family. Access tokens are self-contained and short-lived; they
// cannot be recalled from resource servers that validate them locally, so
// revoking one is accepted and does nothing, as RFC 7009 §2 permits.
func (sv *server) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	s := sv.s
	t, err := s.store.refreshTokenByHash(ctx, s.db, hashSecret(r.Data.Token))
	if err == nil && t.ClientID == r.Client.GetID() {
		if err := s.store.revokeFamily(ctx, s.db, t.FamilyID); err != nil {
			return nil, op.RevocationError(oidc.ErrServerError().WithParent(err))
		}
	} else if err != nil && !errors.Is(err, errNotFound) {
		return nil, op.RevocationError(oidc.ErrServerError().WithParent(err))
	}
	return op.NewResponse(nil), nil
}

// UserInfo answers for a valid user access token, checked as strictly as
// any resource server checks it.
func (sv *server) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	s := sv.s
	if len(r.Header.Values("Authorization")) > 1 {
		// Ambiguous, as at every resource server: never guess which
		// credentials were meant.
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("more than one Authorization header"), http.StatusUnauthorized)
	}
	claims, err := s.verifyAccessToken(ctx, r.Data.AccessToken)
	if err != nil || claims.IsService {
		return nil, op.NewStatusError(oidc.ErrAccessDenied().WithDescription("access token invalid"), http.StatusUnauthorized)
	}
	u, err := s.store.userByID(ctx, s.db, claims.Subject)
	if err != nil || !u.Enabled {
		return nil, op.NewStatusError(oidc.ErrAccessDenied().WithDescription("access token invalid"), http.StatusUnauthorized)
	}
	info := &oidc.UserInfo{Subject: u.ID}
	if slices.Contains(claims.Scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.Username
	}
	return op.NewResponse(info), nil
}

// AccessTokenRequest describes an access token to build.
type AccessTokenRequest struct {
	// Subject is the sub: the user's id, or the client id for a service.
	Subject string
	// UserID is the user the token acts for; empty for service tokens.
	UserID string
	// ClientID is the client the token is issued to.
	ClientID string
	// Audience lists the services that accept the token.
	Audience []string
	// Scopes are the granted scopes.
	Scopes []string
	// Roles are the user's application roles.
	Roles []string
	// IssuedAt is the iat and nbf.
	IssuedAt time.Time
	// Lifetime is exp - iat.
	Lifetime time.Duration
	// SessionID is the sid: the refresh family (the login) a user token
	// belongs to, empty without one. Introspection reports the token
	// inactive once that session is revoked.
	SessionID string
}

// ClaimsBuilder is the one place access token claims are made. Its
// extension hook is Authorization: the provide strategy plugs in there to
// add the authorization claims of AUTHZ.md to user tokens.
type ClaimsBuilder struct {
	// Issuer is the iss claim.
	Issuer string
	// Authorization, when set, adds claims to user tokens.
	Authorization AuthorizationClaims
	// Tokens is handed to Authorization for its own calls.
	Tokens ServiceTokens
}

// reservedClaims may not be set by the Authorization hook: they carry the
// token's identity and would let a bug there widen a token.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "roles", "sid"}

// Build returns the claims of an access token. An Authorization failure is
// a server_error answered with 503, so the client retries instead of
// receiving a token that would deny wrongly.
func (b *ClaimsBuilder) Build(ctx context.Context, req AccessTokenRequest) (map[string]any, error) {
	roles := req.Roles
	if roles == nil || req.UserID == "" {
		roles = []string{}
	}
	claims := map[string]any{}
	if b.Authorization != nil && req.UserID != "" {
		extra, err := b.Authorization.Claims(ctx, AuthorizationRequest{UserID: req.UserID, Roles: slices.Clone(roles), Tokens: b.Tokens})
		if err != nil {
			return nil, op.NewStatusError(oidc.ErrServerError().
				WithDescription("authorization claims are unavailable; try again later").WithParent(err), http.StatusServiceUnavailable)
		}
		for k, v := range extra {
			if slices.Contains(reservedClaims, k) {
				return nil, oidc.ErrServerError().WithParent(fmt.Errorf("authorization claims may not set %q", k))
			}
			claims[k] = v
		}
	}
	claims["iss"] = b.Issuer
	claims["sub"] = req.Subject
	claims["aud"] = slices.Clone(req.Audience)
	claims["iat"] = req.IssuedAt.Unix()
	claims["nbf"] = req.IssuedAt.Unix()
	claims["exp"] = req.IssuedAt.Add(req.Lifetime).Unix()
	claims["jti"] = uuid.NewString()
	claims["client_id"] = req.ClientID
	claims["scope"] = strings.Join(req.Scopes, " ")
	claims["roles"] = slices.Clone(roles)
	if req.SessionID != "" {
		claims["sid"] = req.SessionID
	}
	return claims, nil
}

// tokenTooLargeError is a token over Config.MaxAccessTokenBytes.
type tokenTooLargeError struct{ size, max int }

func (e *tokenTooLargeError) Error() string {
	return fmt.Sprintf("the authorization data is too large for the provide strategy: the access token would be %d bytes, more than the %d allowed", e.size, e.max)
}

// ServiceToken mints an access token for the IAM itself (sub and client_id
// SelfClientID, no roles) through the same claims and signing path as the
// token endpoint. It implements ServiceTokens.
func (s *Service) ServiceToken(ctx context.Context, audience, scopes []string) (string, time.Time, error) {
	now := s.now()
	claims, err := s.claims.Build(ctx, AccessTokenRequest{
		Subject: SelfClientID, ClientID: SelfClientID, Audience: audience,
		Scopes: scopes, IssuedAt: now, Lifetime: s.cfg.AccessTokenLifetime,
	})
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := s.signAccessToken(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, now.Add(s.cfg.AccessTokenLifetime), nil
}

// signAccessToken signs claims with the current key as an RFC 9068 JWT,
// refusing a token over Config.MaxAccessTokenBytes.
func (s *Service) signAccessToken(claims map[string]any) (string, error) {
	k, err := s.keys.current()
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := k.atSigner.Sign(payload)
	if err != nil {
		return "", err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	if max := s.cfg.MaxAccessTokenBytes; max > 0 && len(tok) > max {
		return "", &tokenTooLargeError{size: len(tok), max: max}
	}
	return tok, nil
}
