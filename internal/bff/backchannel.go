package bff

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// OpenID Connect Back-Channel Logout 1.0, the relying party's side. The
// IAM POSTs a logout token here when a session ends there (end_session,
// "log out everywhere", an administrator's disable); the BFF checks it
// strictly and deletes every matching session from the shared store, so
// every copy of every matching cookie gets 401 at once on every instance.

// BackchannelLogoutPath is where the BFF takes logout tokens; the IAM's
// BFF client registers PublicURL + BackchannelLogoutPath as its
// back-channel logout URI.
const BackchannelLogoutPath = "/backchannel-logout"

// The logout token's fixed parts (Back-Channel Logout §2.4).
const (
	logoutEvent     = "http://schemas.openid.net/event/backchannel-logout"
	logoutTokenType = "logout+jwt"
)

// maxLogoutTokenBytes bounds what is parsed: a logout token is a few
// hundred bytes.
const maxLogoutTokenBytes = 8 << 10

// logoutLeeway is the clock skew tolerated on iat and exp.
const logoutLeeway = 30 * time.Second

// maxLogoutTokenAge refuses a token issued longer ago than this, whatever
// its exp says: the IAM gives each delivery a fresh, short-lived token.
const maxLogoutTokenAge = 10 * time.Minute

// logoutClaims are the claims a logout token must and may carry.
type logoutClaims struct {
	Issuer   string         `json:"iss"`
	Subject  *string        `json:"sub"`
	Audience any            `json:"aud"`
	IssuedAt *float64       `json:"iat"`
	Expiry   *float64       `json:"exp"`
	JTI      *string        `json:"jti"`
	Events   map[string]any `json:"events"`
	SID      *string        `json:"sid"`
	Nonce    any            `json:"nonce"`
}

// handleBackchannelLogout is POST /backchannel-logout. It answers 200 once
// the matching sessions are gone, 400 for a token it refuses (the reason
// is logged, not told), and 503 when the store cannot be asked, so that
// the IAM retries.
func (s *Service) handleBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxLogoutTokenBytes)
	if err := r.ParseForm(); err != nil {
		httpx.WriteError(w, r, apperr.New(apperr.Malformed, "the request is not a form"))
		return
	}
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		httpx.WriteError(w, r, apperr.New(apperr.Malformed, "exactly one logout_token is required"))
		return
	}
	claims, err := s.verifyLogoutToken(r.Context(), raw[0])
	if err != nil {
		if apperr.Is(err, apperr.Unavailable) {
			httpx.WriteError(w, r, err)
			return
		}
		s.log.WarnContext(r.Context(), "back-channel logout token refused", "err", err)
		httpx.WriteError(w, r, apperr.New(apperr.Malformed, "the logout token is not valid"))
		return
	}
	now := s.now()
	first, err := s.store.recordLogoutToken(r.Context(), claims.Issuer, *claims.JTI, time.Unix(int64(*claims.Expiry), 0).Add(logoutLeeway), now)
	if err != nil {
		httpx.WriteError(w, r, s.storeError(r.Context(), "record a logout token", err))
		return
	}
	if !first {
		s.log.WarnContext(r.Context(), "back-channel logout token replayed", "jti", *claims.JTI)
		httpx.WriteError(w, r, apperr.New(apperr.Malformed, "the logout token is not valid"))
		return
	}
	sub, sid := deref(claims.Subject), deref(claims.SID)
	n, err := s.store.deleteLoggedOut(r.Context(), sub, sid)
	if err != nil {
		httpx.WriteError(w, r, s.storeError(r.Context(), "end sessions at back-channel logout", err))
		return
	}
	s.log.InfoContext(r.Context(), "back-channel logout", "sub", sub, "by_sid", sid != "", "sessions", n)
	w.WriteHeader(http.StatusOK)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// verifyLogoutToken checks raw as a logout token of the IAM for this BFF
// (§2.6): one compact JWS in canonical base64url, header and claims valid
// UTF-8 JSON without duplicate members, typ logout+jwt, alg RS256, no
// crit, jku, x5u, jwk or x5c, a kid of the IAM's JWKS and a valid
// signature, iss the IAM, aud this client, exp not past, iat present and
// neither in the future nor too old, a jti, the back-channel logout event
// as a JSON object, sub or sid, and no nonce. The error says why, for the
// log only; an Unavailable error means the token could not be judged.
func (s *Service) verifyLogoutToken(ctx context.Context, raw string) (*logoutClaims, error) {
	if len(raw) > maxLogoutTokenBytes {
		return nil, errors.New("too large")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var segs [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || len(b) == 0 {
			return nil, errors.New("not canonical base64url")
		}
		segs[i] = b
	}
	var header map[string]any
	if err := jsonv2.Unmarshal(segs[0], &header); err != nil || header == nil {
		return nil, errors.New("header is not a JSON object")
	}
	if typ, _ := header["typ"].(string); !strings.EqualFold(typ, logoutTokenType) && !strings.EqualFold(typ, "application/"+logoutTokenType) {
		return nil, errors.New("typ is not logout+jwt")
	}
	if alg, _ := header["alg"].(string); alg != string(jose.RS256) {
		return nil, errors.New("alg is not RS256")
	}
	for _, h := range []string{"crit", "b64", "jku", "x5u", "jwk", "x5c"} {
		if _, ok := header[h]; ok {
			return nil, errors.New("header " + h + " not accepted")
		}
	}
	kid, _ := header["kid"].(string)
	if kid == "" {
		return nil, errors.New("no kid")
	}
	var claims logoutClaims
	if err := jsonv2.Unmarshal(segs[1], &claims); err != nil {
		return nil, errors.New("claims are not a valid JSON object")
	}
	d, err := s.iam.get(ctx)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, errors.New("not a JWS")
	}
	if _, err := s.logoutSignature(ctx, d, jws, kid); err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case claims.Issuer != s.cfg.Issuer:
		return nil, errors.New("wrong issuer")
	case !auth.AudienceContains(claims.Audience, s.cfg.ClientID):
		return nil, errors.New("wrong audience")
	case claims.IssuedAt == nil:
		return nil, errors.New("no iat")
	case time.Unix(int64(*claims.IssuedAt), 0).After(now.Add(logoutLeeway)):
		return nil, errors.New("iat in the future")
	case time.Unix(int64(*claims.IssuedAt), 0).Before(now.Add(-maxLogoutTokenAge)):
		return nil, errors.New("iat too old")
	case claims.Expiry == nil || !time.Unix(int64(*claims.Expiry), 0).Add(logoutLeeway).After(now):
		return nil, errors.New("expired")
	case claims.JTI == nil || *claims.JTI == "" || len(*claims.JTI) > 256:
		return nil, errors.New("no jti")
	case claims.Nonce != nil:
		return nil, errors.New("a logout token has no nonce")
	case deref(claims.Subject) == "" && deref(claims.SID) == "":
		return nil, errors.New("neither sub nor sid")
	}
	if ev, ok := claims.Events[logoutEvent].(map[string]any); !ok || ev == nil {
		return nil, errors.New("no back-channel logout event")
	}
	return &claims, nil
}

// logoutKeys caches the IAM's JWKS for logout tokens. It is read again
// only for a key id it does not hold, and at most once per
// logoutKeysInterval: a forged token with a known kid fails without a
// fetch, and a flood of unknown kids cannot turn the BFF into an
// amplifier against the IAM.
type logoutKeys struct {
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetched time.Time
}

// logoutKeysInterval is the least time between two JWKS reads. The IAM
// publishes a key ten minutes before it signs with it, so one read finds
// it.
const logoutKeysInterval = time.Second

// maxJWKSBytes bounds the JWKS document read.
const maxJWKSBytes = 1 << 20

// logoutSignature verifies jws under the IAM's key kid (RSA, RS256) and
// returns its payload. A kid the cache lacks makes one JWKS read, unless
// one happened within logoutKeysInterval: that is Unavailable, which the
// IAM retries.
func (s *Service) logoutSignature(ctx context.Context, d *discovered, jws *jose.JSONWebSignature, kid string) ([]byte, error) {
	lk := &s.logoutKeys
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if keys := lk.set.Key(kid); len(keys) > 0 {
		return verifyUnder(jws, keys)
	}
	if !lk.fetched.IsZero() && time.Since(lk.fetched) < logoutKeysInterval {
		return nil, apperr.New(apperr.Unavailable, "a logout token names an unknown key; try again in a moment")
	}
	lk.fetched = time.Now()
	set, err := s.fetchJWKS(ctx, d.jwksURI)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "the identity service's keys are not reachable; try again in a moment")
	}
	lk.set = set
	keys := lk.set.Key(kid)
	if len(keys) == 0 {
		return nil, errors.New("unknown kid")
	}
	return verifyUnder(jws, keys)
}

// verifyUnder verifies jws under the first RSA key of keys that is for
// signatures with RS256.
func verifyUnder(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, error) {
	for _, k := range keys {
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || (k.Algorithm != "" && k.Algorithm != string(jose.RS256)) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		return jws.Verify(pub)
	}
	return nil, errors.New("no RS256 key under the kid")
}

// fetchJWKS reads the IAM's key set.
func (s *Service) fetchJWKS(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if uri == "" {
		return set, errors.New("the discovery document names no jwks_uri")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.IAMTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return set, err
	}
	resp, err := s.iam.http.Do(req)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("JWKS answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return set, err
	}
	err = json.Unmarshal(body, &set)
	return set, err
}

// recordLogoutToken remembers the jti of a logout token of issuer until
// expires; false means it was seen before (a replay). The table is shared
// by every BFF instance, so a token replayed at another instance is
// refused too.
func (st sessionStore) recordLogoutToken(ctx context.Context, issuer, jti string, expires, now time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(issuer + "\x00" + jti))
	res, err := st.db.ExecContext(ctx, `INSERT INTO bff_logout_tokens (jti_hash, expires_at) VALUES (?, ?) ON CONFLICT (jti_hash) DO NOTHING`,
		hex.EncodeToString(sum[:]), sqldb.Micros(expires))
	if err != nil {
		return false, err
	}
	return oneRow(res, err)
}

// deleteLoggedOut ends the sessions a logout token names: the one IAM
// session sid (of sub, when sub is given), or every session of sub.
//
// A session of sub that records no sid (started before the BFF kept
// iam_sid, or from an ID token without one) cannot be told apart from the
// session that ended, so a token naming sub and sid ends it too: ending
// one session too many only asks for a login, keeping a session the IAM
// ended would leave a live session nobody can end but its expiry.
func (st sessionStore) deleteLoggedOut(ctx context.Context, sub, sid string) (int64, error) {
	var q string
	var args []any
	switch {
	case sid != "" && sub != "":
		q, args = `DELETE FROM bff_sessions WHERE subject = ? AND (iam_sid = ? OR iam_sid = '')`, []any{sub, sid}
	case sid != "":
		q, args = `DELETE FROM bff_sessions WHERE iam_sid = ?`, []any{sid}
	default:
		return st.deleteSubject(ctx, sub)
	}
	res, err := st.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// pruneLogoutTokens forgets the jtis of logout tokens that have expired:
// such a token is refused for its exp anyway.
func (st sessionStore) pruneLogoutTokens(ctx context.Context, now time.Time) error {
	_, err := st.db.ExecContext(ctx, `DELETE FROM bff_logout_tokens WHERE expires_at < ?`, sqldb.Micros(now))
	return err
}
