// Package auth is the resource-server side of RealGuardIO's authentication:
// it validates the IAM Service's JWT access tokens and puts the
// authenticated principal.Caller in the request's context for handlers.
// The caller and the role vocabulary are in platform/principal, which has
// no transport dependency; this package adds the validator (JWKS cache,
// metrics) and the HTTP middleware.
package auth
