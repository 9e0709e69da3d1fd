package auth

import (
	"net/http"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// Realm is the realm of the Bearer challenge sent when no token was
// presented.
const Realm = "realguardio"

// noTokenChallenge is the challenge for a request without credentials.
// RFC 6750 §3.1 suggests no error code here, but RealGuardIO's public
// contract (API.md) promises `Bearer error="invalid_token"` for a missing
// token as for an invalid one, and clients rely on the contract: a missing
// token is treated as an invalid one.
const noTokenChallenge = `Bearer realm="` + Realm + `", error="invalid_token", error_description="an access token is required"`

// Middleware authenticates every request with its Bearer access token and
// puts the Caller in the request context (see CallerFrom). A request
// without a token or with an invalid one gets 401 with error="invalid_token";
// an unreachable issuer gets 503.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, present := bearerToken(r)
		if !present {
			v.count(reasonMissing)
			w.Header().Set("WWW-Authenticate", noTokenChallenge)
			httpx.WriteError(w, r, apperr.New(apperr.Unauthenticated, "an access token is required"))
			return
		}
		if raw == "" {
			httpx.WriteError(w, r, v.reject(reasonMalformed, "malformed Authorization header", nil))
			return
		}
		c, err := v.Validate(r.Context(), raw)
		if err != nil {
			// WriteError adds the invalid_token challenge for 401s.
			httpx.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// bearerToken extracts the token of an "Authorization: Bearer" header. It
// reports present=false only when the request carries no Bearer
// credentials at all (no header, or another scheme), which RFC 6750 answers
// without an error code. A malformed Bearer header is returned as an empty
// token so that validation rejects it as invalid.
func bearerToken(r *http.Request) (token string, present bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", false
	}
	if len(values) > 1 {
		// Ambiguous: never guess which credentials were meant.
		return "", true
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	// RFC 6750 §2.1: exactly one token of b64token characters; surrounding
	// spaces are tolerated, inner ones make it malformed.
	tok := strings.Trim(rest, " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true
	}
	return tok, true
}
