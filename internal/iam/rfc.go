package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authServerMetadataPath is the RFC 8414 metadata document, served with
// the same content as OpenID discovery.
const authServerMetadataPath = "/.well-known/oauth-authorization-server"

// clientRealm is the realm of the Basic challenge of a failed client
// authentication.
const clientRealm = "realguardio"

// protocolHeaders adds what zitadel's handlers leave out and the RFCs
// require: token responses are never cached (RFC 6749 §5.1), a failed
// client authentication is a 401 with a Basic challenge (§5.2), an invalid
// access token at /userinfo a 401 with a Bearer challenge (RFC 6750 §3),
// and authorization responses name the issuer (RFC 9207).
func (s *Service) protocolHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch path {
		case endpoints.Token.Relative(), endpoints.Userinfo.Relative(), endpoints.Revocation.Relative(), endpoints.Introspection.Relative():
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
		}
		pw := &protocolWriter{ResponseWriter: w, path: path, issuer: s.cfg.Issuer, s: s}
		if path == endpoints.Introspection.Relative() && refuseIntrospection(pw, r) {
			return
		}
		next.ServeHTTP(pw, r)
	})
}

// protocolWriter adjusts the status line's headers of one response.
type protocolWriter struct {
	http.ResponseWriter
	path, issuer string
	wrote        bool
	s            *Service
}

func (p *protocolWriter) WriteHeader(status int) {
	if p.wrote {
		p.ResponseWriter.WriteHeader(status)
		return
	}
	p.wrote = true
	h := p.Header()
	switch {
	case status == http.StatusUnauthorized && p.path == endpoints.Userinfo.Relative():
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer realm="`+clientRealm+`", error="invalid_token"`)
		}
	case status == http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Basic realm="`+clientRealm+`"`)
		}
	case status == http.StatusFound || status == http.StatusSeeOther:
		if p.path == endpoints.EndSession.Relative() {
			p.s.clearSessionCookie(h)
		}
		if loc := h.Get("Location"); loc != "" {
			h.Set("Location", withIssuer(loc, p.issuer))
		}
	}
	p.ResponseWriter.WriteHeader(status)
}

func (p *protocolWriter) Write(b []byte) (int, error) {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (p *protocolWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// withIssuer adds iss to an authorization response (a redirect to a
// client carrying code or error, RFC 9207); any other location is left
// as it is.
func withIssuer(loc, issuer string) string {
	if strings.HasPrefix(loc, issuer+"/") || strings.HasPrefix(loc, "/") {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	if (q.Get("code") == "" && q.Get("error") == "") || q.Has("iss") {
		return loc
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// VerifyClient is zitadel's client authentication, answering a failed one
// with 401 (RFC 6749 §5.2) instead of zitadel's 400; protocolHeaders adds
// the challenge.
func (sv *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, err := sv.LegacyServer.VerifyClient(ctx, r)
	var oe *oidc.Error
	if err != nil && errors.As(err, &oe) && oe.ErrorType == oidc.InvalidClient {
		return nil, op.NewStatusError(oe, http.StatusUnauthorized)
	}
	return c, err
}

// pkceValue reports whether v is a PKCE code verifier or challenge as RFC
// 7636 §4.1 and §4.2 define them: 43 to 128 unreserved characters.
func pkceValue(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// errRequestURINotSupported is the answer to a pushed or referenced
// request object (OpenID Connect Core §6.2, RFC 9101): the IAM does not
// fetch request_uri, and silently ignoring it would run a request other
// than the one the client meant.
func errRequestURINotSupported() *oidc.Error {
	return &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported; send the parameters in the query"}
}

// isAccessToken reports whether raw is a JWT whose header says it is an
// access token (typ at+jwt): it must not stand in for an ID token.
func isAccessToken(raw string) bool {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	return strings.EqualFold(h.Typ, "at+jwt") || strings.EqualFold(h.Typ, "application/at+jwt")
}

// hsts sets Strict-Transport-Security on every response of an https
// issuer, so a browser that once reached the IAM never again sends a
// login form or a code over plain http.
func (s *Service) hsts(next http.Handler) http.Handler {
	if !strings.HasPrefix(s.cfg.Issuer, "https://") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		next.ServeHTTP(w, r)
	})
}
