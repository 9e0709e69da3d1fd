package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// verifyLeeway tolerates clock differences, as resource servers do.
const verifyLeeway = 30 * time.Second

// tokenClaims are the verified claims of one of the IAM's access tokens.
type tokenClaims struct {
	Subject  string
	ClientID string
	Scopes   []string
	Roles    []string
	All      map[string]any
}

func (c *tokenClaims) isService() bool { return c.ClientID != "" && c.ClientID == c.Subject }

var errInvalidToken = errors.New("invalid access token")

// verifyAccessToken checks one of the IAM's own access tokens the way a
// resource server must (RS256 only, typ at+jwt, a published kid, iss, aud
// containing realguardio-iam, exp and nbf), against the keys in memory: the
// IAM is its own issuer, so it needs no JWKS round trip. The shared
// validator in internal/platform/auth does the same for the other services
// over HTTP.
func (s *Service) verifyAccessToken(raw string) (*tokenClaims, error) {
	if raw == "" || len(raw) > 16<<10 {
		return nil, errInvalidToken
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errInvalidToken
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errInvalidToken
	}
	k := s.keys.byID(h.KeyID)
	if k == nil {
		return nil, errInvalidToken
	}
	payload, err := jws.Verify(&k.private.PublicKey)
	if err != nil {
		return nil, errInvalidToken
	}
	var all map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&all); err != nil {
		return nil, errInvalidToken
	}
	if iss, _ := all["iss"].(string); iss != s.cfg.Issuer {
		return nil, errInvalidToken
	}
	if !slices.Contains(stringsOf(all["aud"]), AudienceIAM) {
		return nil, errInvalidToken
	}
	now := s.now()
	exp, ok := all["exp"].(float64)
	if !ok || !now.Before(time.Unix(int64(exp), 0).Add(verifyLeeway)) {
		return nil, errInvalidToken
	}
	if nbf, ok := all["nbf"].(float64); ok && now.Add(verifyLeeway).Before(time.Unix(int64(nbf), 0)) {
		return nil, errInvalidToken
	}
	sub, _ := all["sub"].(string)
	if sub == "" {
		return nil, errInvalidToken
	}
	c := &tokenClaims{Subject: sub, All: all, Roles: stringsOf(all["roles"])}
	c.ClientID, _ = all["client_id"].(string)
	if sc, ok := all["scope"].(string); ok {
		c.Scopes = strings.Fields(sc)
	}
	return c, nil
}

func stringsOf(v any) []string {
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

// requireUserAdmin authenticates the bearer token and admits a
// client-credentials token with scope users:write or a user token with
// REALGUARDIO_ADMIN; the caller is put in the context for the handler.
// Admission is not the whole check: the handlers confine a service to the
// users it provisions (see usersAPI).
func (s *Service) requireUserAdmin(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		raw, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok {
			raw, ok = strings.CutPrefix(authz, "bearer ")
		}
		if !ok || raw == "" {
			httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "an access token is required"))
			return
		}
		claims, err := s.verifyAccessToken(strings.TrimSpace(raw))
		if err != nil {
			httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "the access token is invalid or expired"))
			return
		}
		caller := &auth.Caller{
			Subject: claims.Subject, ClientID: claims.ClientID, Roles: claims.Roles, Scopes: claims.Scopes,
			IsService: claims.isService(), Claims: claims.All, Token: raw,
		}
		allowed := (caller.IsService && caller.HasScope(ScopeUsersWrite)) || caller.HasRole(auth.RoleAdmin)
		if !allowed {
			httpx.WriteError(w, r, apperr.Denied("no_role", "managing users needs scope %s or role %s", ScopeUsersWrite, auth.RoleAdmin))
			return
		}
		next(w, r.WithContext(auth.WithCaller(r.Context(), caller)))
	})
}
