package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// Defaults and limits of Options. The leeway is capped because a larger
// tolerance would silently extend the lifetime of every stolen token.
const (
	// DefaultMaxTokenBytes is the default of Options.MaxTokenBytes: far
	// above a real access token, far below what could hurt parsing.
	DefaultMaxTokenBytes = 16 << 10
	// DefaultLeeway is the default clock-skew tolerance.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest clock-skew tolerance NewValidator accepts.
	MaxLeeway = 30 * time.Second
	// DefaultJWKSMinRefreshInterval is the default least time between two
	// JWKS fetches caused by unknown key ids.
	DefaultJWKSMinRefreshInterval = 10 * time.Second
	// DefaultJWKSMaxAge is the default age after which the cached JWKS is
	// refreshed in the background.
	DefaultJWKSMaxAge = 5 * time.Minute
	// DefaultJWKSHardMaxAge is the default age after which a cached JWKS
	// that could not be refreshed is no longer trusted at all.
	DefaultJWKSHardMaxAge = time.Hour
	// DefaultFetchTimeout is the default bound on one discovery plus JWKS
	// fetch.
	DefaultFetchTimeout = 5 * time.Second
)

// coldRetryInterval bounds how often discovery is retried while no key has
// ever been obtained, so a service recovers soon after the IAM Service
// starts without hammering an issuer that is down.
const coldRetryInterval = time.Second

// maxMetadataBytes bounds the discovery document and the JWKS we read, so a
// misbehaving issuer cannot make us buffer unbounded bodies.
const maxMetadataBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted for a signing key
// (NIST SP 800-57: 1024-bit RSA is no longer acceptable).
const minRSABits = 2048

// Options configures a Validator. Only Issuer and Audience are required;
// zero values of the other fields select the documented defaults.
type Options struct {
	// Issuer is the exact issuer identifier of the IAM Service, for example
	// "http://localhost:9000". Discovery is read from
	// Issuer + "/.well-known/openid-configuration" and tokens must carry it
	// verbatim in "iss".
	Issuer string
	// Audience is this service's audience, for example
	// "realguardio-customer"; a token must list it in "aud".
	Audience string
	// HTTPClient fetches discovery and the JWKS; nil means a client with
	// FetchTimeout as its timeout.
	HTTPClient *http.Client
	// MaxTokenBytes refuses longer tokens before any parsing; 0 means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Leeway tolerates clock skew when checking exp, nbf and iat; 0 means
	// DefaultLeeway, more than MaxLeeway is an error.
	Leeway time.Duration
	// JWKSMinRefreshInterval is the least time between two JWKS fetches
	// triggered by unknown key ids, so a flood of forged kids cannot turn
	// the service into an amplifier against the issuer; 0 means
	// DefaultJWKSMinRefreshInterval.
	JWKSMinRefreshInterval time.Duration
	// JWKSMaxAge is the age after which a cached JWKS is refreshed in the
	// background, so keys withdrawn by the issuer stop being accepted; 0
	// means DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// JWKSHardMaxAge is the age after which a cached JWKS is no longer
	// used: a token then validates only if a refresh succeeds, otherwise
	// it is refused as Unavailable (503). Without this bound an issuer
	// that stays unreachable would leave a withdrawn (possibly
	// compromised) key trusted forever. 0 means DefaultJWKSHardMaxAge; it
	// must not be shorter than JWKSMaxAge.
	JWKSHardMaxAge time.Duration
	// FetchTimeout bounds one discovery plus JWKS fetch; 0 means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Clock returns the current time; nil means time.Now. Tests inject a
	// fake clock to exercise expiry and refresh rate limits.
	Clock func() time.Time
	// Logger receives key-fetch problems; nil means slog.Default(). Tokens
	// are never logged.
	Logger *slog.Logger
	// Registry, when not nil, receives the counter
	// realguardio_auth_token_rejections_total{reason}.
	Registry *prometheus.Registry
}

// Validator validates the IAM Service's JWT access tokens (RFC 9068) for
// one resource server. It is safe for concurrent use; create one per
// service and share it.
type Validator struct {
	issuer       string
	audience     string
	client       *http.Client
	maxBytes     int
	leeway       float64 // seconds, compared with NumericDate claims
	minRefresh   time.Duration
	maxAge       time.Duration
	hardMaxAge   time.Duration
	fetchTimeout time.Duration
	now          func() time.Time
	logger       *slog.Logger
	rejections   map[string]prometheus.Counter
	audMessage   string

	// keys is the current key set; readers never lock.
	keys atomic.Pointer[keySet]
	// headers maps protected-header segments that passed every check to
	// their kid (see rememberHeader); cachedHeaders counts its entries.
	headers       sync.Map
	cachedHeaders atomic.Int32

	// mu guards the fields below, which single-flight and rate-limit
	// fetches.
	mu          sync.Mutex
	flight      *fetchFlight
	lastAttempt time.Time
	lastErr     error
	jwksURI     string
}

// keySet is an immutable snapshot of the issuer's usable signing keys.
type keySet struct {
	keys map[string]*rsa.PublicKey
	// unusable names kids the JWKS lists but we refuse (too small, wrong
	// type or use), so the rejection says why instead of "unknown key".
	unusable  map[string]string
	fetchedAt time.Time
}

// fetchFlight is one in-progress fetch that concurrent callers wait on.
type fetchFlight struct {
	done chan struct{}
	err  error
}

// NewValidator checks opts and returns a Validator. It does not contact
// the issuer: discovery happens on first use, because services may start
// before the IAM Service.
func NewValidator(opts Options) (*Validator, error) {
	var problems []string
	u, err := url.Parse(opts.Issuer)
	if opts.Issuer == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, "Issuer must be an absolute http(s) URL")
	}
	if opts.Audience == "" {
		problems = append(problems, "Audience is required")
	}
	if opts.MaxTokenBytes < 0 {
		problems = append(problems, "MaxTokenBytes must not be negative")
	}
	if opts.Leeway < 0 || opts.Leeway > MaxLeeway {
		problems = append(problems, fmt.Sprintf("Leeway must be between 0 and %s", MaxLeeway))
	}
	if opts.JWKSMinRefreshInterval < 0 || opts.JWKSMaxAge < 0 || opts.JWKSHardMaxAge < 0 || opts.FetchTimeout < 0 {
		problems = append(problems, "durations must not be negative")
	} else if orDefault(opts.JWKSHardMaxAge, DefaultJWKSHardMaxAge) < orDefault(opts.JWKSMaxAge, DefaultJWKSMaxAge) {
		problems = append(problems, "JWKSHardMaxAge must not be shorter than JWKSMaxAge")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("auth: invalid validator options: %s", strings.Join(problems, "; "))
	}
	v := &Validator{
		issuer:       opts.Issuer,
		audience:     opts.Audience,
		client:       opts.HTTPClient,
		maxBytes:     orDefault(opts.MaxTokenBytes, DefaultMaxTokenBytes),
		leeway:       orDefault(opts.Leeway, DefaultLeeway).Seconds(),
		minRefresh:   orDefault(opts.JWKSMinRefreshInterval, DefaultJWKSMinRefreshInterval),
		maxAge:       orDefault(opts.JWKSMaxAge, DefaultJWKSMaxAge),
		hardMaxAge:   orDefault(opts.JWKSHardMaxAge, DefaultJWKSHardMaxAge),
		fetchTimeout: orDefault(opts.FetchTimeout, DefaultFetchTimeout),
		now:          opts.Clock,
		logger:       opts.Logger,
		audMessage:   "token audience does not include " + opts.Audience,
	}
	if v.client == nil {
		v.client = telemetry.Client(v.fetchTimeout)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.logger == nil {
		v.logger = slog.Default()
	}
	if opts.Registry != nil {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_auth_token_rejections_total",
			Help: "Access tokens refused by the resource-server validator, by reason.",
		}, []string{"reason"})
		if err := opts.Registry.Register(vec); err != nil {
			return nil, fmt.Errorf("auth: register metrics: %w", err)
		}
		// Resolve every label once so a rejection costs no map hashing in
		// the client library and every reason is exported from the start.
		v.rejections = make(map[string]prometheus.Counter, len(allReasons))
		for _, r := range allReasons {
			v.rejections[r] = vec.WithLabelValues(r)
		}
	}
	return v, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Rejection reasons: a closed set so the metric's cardinality is bounded.
const (
	reasonMissing     = "missing"
	reasonTooLarge    = "too_large"
	reasonMalformed   = "malformed"
	reasonAlgorithm   = "algorithm"
	reasonType        = "type"
	reasonCritical    = "critical"
	reasonUnknownKey  = "unknown_key"
	reasonBadKey      = "unusable_key"
	reasonSignature   = "signature"
	reasonExpired     = "expired"
	reasonNotYetValid = "not_yet_valid"
	reasonIssuer      = "issuer"
	reasonAudience    = "audience"
	reasonClaims      = "claims"
	reasonUnavailable = "unavailable"
)

var allReasons = []string{
	reasonMissing, reasonTooLarge, reasonMalformed, reasonAlgorithm, reasonType,
	reasonCritical, reasonUnknownKey, reasonBadKey, reasonSignature, reasonExpired,
	reasonNotYetValid, reasonIssuer, reasonAudience, reasonClaims, reasonUnavailable,
}

// reject counts a rejection and returns the client-safe error for it.
func (v *Validator) reject(reason, msg string, cause error) *apperr.Error {
	v.count(reason)
	return &apperr.Error{Code: apperr.Unauthenticated, Message: msg, Cause: cause}
}

func (v *Validator) count(reason string) {
	if c := v.rejections[reason]; c != nil {
		c.Inc()
	}
}

// allowedAlgs is the only algorithm accepted: the IAM Service signs RS256,
// and an allowlist of one rules out "none" and HMAC key confusion.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256}

// Validate checks raw as an access token of the configured issuer for the
// configured audience and returns its caller. An invalid token yields an
// apperr Unauthenticated error with a short client-safe message; when no
// key can be obtained because the issuer is unreachable it yields
// Unavailable, so the service fails closed.
func (v *Validator) Validate(ctx context.Context, raw string) (*Caller, error) {
	// Size first: nothing below should ever spend work on a huge input.
	if len(raw) > v.maxBytes {
		return nil, v.reject(reasonTooLarge, "token too large", nil)
	}
	if raw == "" {
		return nil, v.reject(reasonMissing, "an access token is required", nil)
	}
	if !isCompactJWS(raw) {
		return nil, v.reject(reasonMalformed, "token is not a compact JWS", nil)
	}
	headerSeg, rest, _ := strings.Cut(raw, ".")
	payloadSeg, sigSeg, _ := strings.Cut(rest, ".")
	var kid string
	var payload, sig []byte
	if cached, ok := v.headers.Load(headerSeg); ok {
		// This exact header already passed every check below and preceded
		// a good signature: its parse result cannot differ, so skip it.
		kid = cached.(string)
		var err1, err2 error
		payload, err1 = base64.RawURLEncoding.DecodeString(payloadSeg)
		sig, err2 = base64.RawURLEncoding.DecodeString(sigSeg)
		if err1 != nil || err2 != nil {
			return nil, v.reject(reasonMalformed, "token is malformed", errors.Join(err1, err2))
		}
	} else {
		jws, err := v.parseHeader(raw)
		if err != nil {
			return nil, err
		}
		kid = jws.Signatures[0].Protected.KeyID
		payload, sig = jws.UnsafePayloadWithoutVerification(), jws.Signatures[0].Signature
	}
	key, err := v.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	// Verify the signature over the signing input exactly as received
	// (RFC 7515 §5.2). go-jose's Verify would re-decode the header and
	// re-encode the payload to rebuild the same bytes, which costs a third
	// of the validation time; isCompactJWS guaranteed one canonical
	// spelling, so the received bytes are the signed bytes. The algorithm
	// is fixed here, whatever the header said.
	signingInput := raw[:len(headerSeg)+1+len(payloadSeg)]
	digest := sha256.Sum256([]byte(signingInput))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return nil, v.reject(reasonSignature, "token signature is invalid", nil)
	}
	v.rememberHeader(headerSeg, kid)
	return v.caller(raw, payload)
}

// maxCachedHeaders bounds the header cache. An issuer has a handful of
// keys and so a handful of distinct headers; only headers followed by a
// valid issuer signature are cached, so an attacker cannot fill it.
const maxCachedHeaders = 64

// rememberHeader caches the kid of a header that passed every check and
// preceded a valid signature, so later tokens with the same header skip
// go-jose's (comparatively slow) header parsing.
func (v *Validator) rememberHeader(headerSeg, kid string) {
	if v.cachedHeaders.Load() >= maxCachedHeaders {
		return
	}
	if _, loaded := v.headers.LoadOrStore(headerSeg, kid); !loaded {
		v.cachedHeaders.Add(1)
	}
}

// parseHeader parses raw with go-jose and checks its protected header:
// alg RS256 only, typ at+jwt, no crit, a kid.
func (v *Validator) parseHeader(raw string) (*jose.JSONWebSignature, error) {
	// go-jose decodes the header with encoding/json, which replaces
	// invalid UTF-8 with U+FFFD and keeps the last of duplicate members:
	// the header it checks would then differ from the bytes that were
	// signed. json v2 refuses both, as for the claims.
	headerSeg, _, _ := strings.Cut(raw, ".")
	headerJSON, err := base64.RawURLEncoding.DecodeString(headerSeg)
	var header map[string]any
	if err != nil || jsonv2.Unmarshal(headerJSON, &header) != nil || header == nil {
		return nil, v.reject(reasonMalformed, "token header is not a valid JSON object", err)
	}
	jws, err := jose.ParseSignedCompact(raw, allowedAlgs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, v.reject(reasonAlgorithm, "token algorithm not allowed", nil)
		}
		return nil, v.reject(reasonMalformed, "token is malformed", err)
	}
	// ParseSignedCompact yields exactly one signature whose header is the
	// protected header; check it defensively anyway.
	if len(jws.Signatures) != 1 {
		return nil, v.reject(reasonMalformed, "token is malformed", nil)
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != string(jose.RS256) {
		return nil, v.reject(reasonAlgorithm, "token algorithm not allowed", nil)
	}
	if !isAccessTokenType(h.ExtraHeaders[jose.HeaderType]) {
		return nil, v.reject(reasonType, "token is not an access token (typ must be at+jwt)", nil)
	}
	// We understand no critical extension. go-jose would accept "b64", an
	// unencoded payload that has no place in a JWT, so refuse any crit and
	// any b64 outright.
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, v.reject(reasonCritical, "token has unsupported critical header", nil)
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, v.reject(reasonCritical, "token has unsupported header", nil)
	}
	// The key is chosen only by kid in the issuer's own JWKS. jku, x5u,
	// jwk and x5c are attacker-controlled pointers to keys and are never
	// consulted.
	if h.KeyID == "" {
		return nil, v.reject(reasonUnknownKey, "token has no key id", nil)
	}
	return jws, nil
}

// isAccessTokenType accepts the RFC 9068 type, compared case-insensitively
// as media types are (RFC 9068 §4).
func isAccessTokenType(typ any) bool {
	s, ok := typ.(string)
	return ok && (strings.EqualFold(s, "at+jwt") || strings.EqualFold(s, "application/at+jwt"))
}

// isCompactJWS reports whether raw is three canonical unpadded base64url
// segments. Besides refusing JWE and JSON serialization early, requiring
// canonical encoding (zero padding bits) means one signed token has one
// spelling, so tokens are not malleable for caches or replay checks.
func isCompactJWS(raw string) bool {
	dots := 0
	start := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '.' {
			if b64Value[raw[i]] == 0xff {
				return false
			}
			continue
		}
		if i < len(raw) {
			dots++
			if dots > 2 {
				return false
			}
		}
		if !canonicalSegment(raw[start:i]) {
			return false
		}
		start = i + 1
	}
	return dots == 2
}

// canonicalSegment reports whether seg (already known to hold only
// base64url characters) is non-empty and has zero trailing bits.
func canonicalSegment(seg string) bool {
	switch len(seg) % 4 {
	case 0:
		return len(seg) > 0
	case 1:
		return false
	case 2:
		return b64Value[seg[len(seg)-1]]&0x0f == 0
	default:
		return b64Value[seg[len(seg)-1]]&0x03 == 0
	}
}

// b64Value maps base64url characters to their value and anything else to
// 0xff.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// caller checks the verified claims and builds the Caller. The payload is
// decoded exactly once, into the map handed to the Caller.
func (v *Validator) caller(raw string, payload []byte) (*Caller, error) {
	// json v2 (the proposed encoding/json/v2) rejects duplicate member
	// names and invalid UTF-8, closing the parser-differential trick of a
	// second "sub" or "aud" that another JSON parser would read
	// differently; it also decodes about twice as fast as encoding/json.
	var claims map[string]any
	if err := jsonv2.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, v.reject(reasonMalformed, "token claims are not a valid JSON object", err)
	}
	if iss, _ := claims["iss"].(string); iss != v.issuer {
		return nil, v.reject(reasonIssuer, "token issuer is not trusted", nil)
	}
	if !AudienceContains(claims["aud"], v.audience) {
		return nil, v.reject(reasonAudience, v.audMessage, nil)
	}
	now := float64(v.now().UnixNano()) / 1e9
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return nil, v.reject(reasonClaims, "token has no valid exp", nil)
	}
	if now >= exp+v.leeway {
		return nil, v.reject(reasonExpired, "token expired", nil)
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, v.reject(reasonClaims, "token has an invalid nbf", nil)
		}
		if nbf > now+v.leeway {
			return nil, v.reject(reasonNotYetValid, "token not yet valid", nil)
		}
	}
	if raw, present := claims["iat"]; present {
		iat, ok := numericDate(raw)
		if !ok {
			return nil, v.reject(reasonClaims, "token has an invalid iat", nil)
		}
		if iat > now+v.leeway {
			return nil, v.reject(reasonNotYetValid, "token issued in the future", nil)
		}
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, v.reject(reasonClaims, "token has no subject", nil)
	}
	c := &Caller{Subject: sub, Claims: claims, Token: raw}
	if cid, present := claims["client_id"]; present {
		s, ok := cid.(string)
		if !ok {
			return nil, v.reject(reasonClaims, "token has an invalid client_id", nil)
		}
		c.ClientID = s
	}
	c.IsService = c.ClientID != "" && c.ClientID == sub
	if c.Roles, ok = stringList(claims["roles"]); !ok {
		return nil, v.reject(reasonClaims, "token has an invalid roles claim", nil)
	}
	if s, present := claims["scope"]; present {
		str, ok := s.(string)
		if !ok {
			return nil, v.reject(reasonClaims, "token has an invalid scope claim", nil)
		}
		c.Scopes = strings.Fields(str)
	} else if s, present := claims["scp"]; present {
		if str, ok := s.(string); ok {
			c.Scopes = strings.Fields(str)
		} else if c.Scopes, ok = stringList(s); !ok {
			return nil, v.reject(reasonClaims, "token has an invalid scp claim", nil)
		}
	}
	return c, nil
}

// AudienceContains reports whether aud, a JWT "aud" claim as decoded by
// encoding/json (a string or an array of strings, RFC 7519 §4.1.3),
// contains want. Other JWTs than access tokens (the BFF's logout tokens)
// check their audience with it too.
func AudienceContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// numericDate reads an RFC 7519 NumericDate as decoded by encoding/json.
func numericDate(v any) (float64, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// stringList reads an optional array of strings; absent is an empty list,
// anything else is not acceptable.
func stringList(v any) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// key returns the verification key for kid, refetching the JWKS (rate
// limited, single-flight) when kid is unknown or the cached set is past its
// hard maximum age.
func (v *Validator) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	ks := v.keys.Load()
	if ks != nil && v.expired(ks) {
		// The cached keys are too old to trust: one of them may have been
		// withdrawn long ago. Only a successful refresh lets tokens through
		// again; until then fail closed (503), exactly as before the first
		// fetch. The retry rate is that of a cold start, so service resumes
		// soon after the issuer returns.
		fetchErr := v.refresh(ctx, min(coldRetryInterval, v.minRefresh))
		if ks = v.keys.Load(); v.expired(ks) {
			if fetchErr == nil {
				fetchErr = errors.New("cached JWKS is past its hard maximum age")
			}
			v.count(reasonUnavailable)
			return nil, apperr.Wrap(fetchErr, apperr.Unavailable, "the token issuer's keys are unavailable")
		}
	}
	if ks != nil {
		if k := ks.keys[kid]; k != nil {
			if v.now().Sub(ks.fetchedAt) > v.maxAge {
				// Stale-while-revalidate: keep serving, refresh in the
				// background so withdrawn keys disappear.
				v.refreshAsync()
			}
			return k, nil
		}
		if why, bad := ks.unusable[kid]; bad {
			return nil, v.reject(reasonBadKey, "token signing key is not acceptable", errors.New(why))
		}
	}
	interval := v.minRefresh
	if ks == nil {
		interval = min(coldRetryInterval, v.minRefresh)
	}
	fetchErr := v.refresh(ctx, interval)
	if ks2 := v.keys.Load(); ks2 != nil {
		if k := ks2.keys[kid]; k != nil {
			return k, nil
		}
		if why, bad := ks2.unusable[kid]; bad {
			return nil, v.reject(reasonBadKey, "token signing key is not acceptable", errors.New(why))
		}
	}
	if fetchErr != nil {
		// We cannot tell a forged kid from a freshly rotated one while the
		// issuer is unreachable: fail closed with 503, never accept.
		v.count(reasonUnavailable)
		return nil, apperr.Wrap(fetchErr, apperr.Unavailable, "the token issuer's keys are unavailable")
	}
	return nil, v.reject(reasonUnknownKey, "token signing key is unknown", nil)
}

// expired reports whether ks is past the hard maximum age and so must not
// be used any more.
func (v *Validator) expired(ks *keySet) bool {
	return v.now().Sub(ks.fetchedAt) > v.hardMaxAge
}

// refresh fetches the JWKS unless another fetch is in flight (then it
// waits for that one) or the last attempt is more recent than interval
// (then it returns that attempt's error). The fetch runs detached from
// ctx so one impatient caller cannot fail it for everyone waiting.
func (v *Validator) refresh(ctx context.Context, interval time.Duration) error {
	v.mu.Lock()
	f := v.flight
	if f == nil {
		if !v.lastAttempt.IsZero() && v.now().Sub(v.lastAttempt) < interval {
			err := v.lastErr
			v.mu.Unlock()
			return err
		}
		f = &fetchFlight{done: make(chan struct{})}
		v.flight = f
		v.lastAttempt = v.now()
		go v.runFetch(f)
	}
	v.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshAsync starts a fetch when none is running and the rate limit
// allows one, without waiting for it.
func (v *Validator) refreshAsync() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.flight != nil || v.now().Sub(v.lastAttempt) < v.minRefresh {
		return
	}
	v.flight = &fetchFlight{done: make(chan struct{})}
	v.lastAttempt = v.now()
	go v.runFetch(v.flight)
}

func (v *Validator) runFetch(f *fetchFlight) {
	ctx, cancel := context.WithTimeout(context.Background(), v.fetchTimeout)
	defer cancel()
	ks, err := v.fetch(ctx)
	if err != nil {
		v.logger.Warn("auth: cannot obtain the issuer's signing keys", "issuer", v.issuer, "err", err)
	} else {
		v.keys.Store(ks)
	}
	v.mu.Lock()
	v.lastErr = err
	v.flight = nil
	v.mu.Unlock()
	f.err = err
	close(f.done)
}

// fetch discovers the JWKS URI (once) and reads the key set.
func (v *Validator) fetch(ctx context.Context) (*keySet, error) {
	v.mu.Lock()
	jwksURI := v.jwksURI
	v.mu.Unlock()
	if jwksURI == "" {
		var err error
		if jwksURI, err = v.discover(ctx); err != nil {
			return nil, err
		}
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, jwksURI, &doc); err != nil {
		// Rediscover next time: the issuer may have moved its JWKS.
		v.mu.Lock()
		v.jwksURI = ""
		v.mu.Unlock()
		return nil, fmt.Errorf("jwks: %w", err)
	}
	v.mu.Lock()
	v.jwksURI = jwksURI
	v.mu.Unlock()
	ks := &keySet{keys: map[string]*rsa.PublicKey{}, unusable: map[string]string{}, fetchedAt: v.now()}
	seen := map[string]int{}
	for _, rawKey := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rawKey); err != nil {
			// A key of a type we do not know must not hide the others.
			v.logger.Warn("auth: skipping unparsable JWKS entry", "issuer", v.issuer, "err", err)
			continue
		}
		if jwk.KeyID == "" {
			continue
		}
		seen[jwk.KeyID]++
		if why := unusableKey(&jwk); why != "" {
			// Remembered so a token under this kid is refused with the
			// reason and without refetching; logged because it is an issuer
			// misconfiguration someone must fix.
			v.logger.Warn("auth: refusing a JWKS key", "issuer", v.issuer, "kid", jwk.KeyID, "reason", why)
			ks.unusable[jwk.KeyID] = why
			continue
		}
		ks.keys[jwk.KeyID] = jwk.Key.(*rsa.PublicKey)
	}
	for kid, n := range seen {
		if n > 1 {
			// Two keys under one kid: we cannot know which one is meant.
			delete(ks.keys, kid)
			ks.unusable[kid] = "duplicate kid in JWKS"
		}
	}
	return ks, nil
}

// unusableKey says why jwk cannot verify our tokens, or "" when it can.
func unusableKey(jwk *jose.JSONWebKey) string {
	pub, ok := jwk.Key.(*rsa.PublicKey)
	if !ok {
		return "not an RSA public key"
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return "key use is not sig"
	}
	if jwk.Algorithm != "" && jwk.Algorithm != string(jose.RS256) {
		return "key algorithm is not RS256"
	}
	if pub.N == nil || pub.N.BitLen() < minRSABits {
		return "RSA key smaller than 2048 bits"
	}
	return ""
}

// discover reads the issuer's OpenID configuration and returns jwks_uri.
func (v *Validator) discover(ctx context.Context) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, strings.TrimSuffix(v.issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	// OpenID Connect Discovery §4.3: the issuer must match exactly, or the
	// document belongs to someone else.
	if doc.Issuer != v.issuer {
		return "", fmt.Errorf("discovery: issuer %q does not match the configured %q", doc.Issuer, v.issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("discovery: invalid jwks_uri %q", doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

func (v *Validator) getJSON(ctx context.Context, uri string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxMetadataBytes))
		return fmt.Errorf("GET %s: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxMetadataBytes {
		return fmt.Errorf("GET %s: body larger than %d bytes", uri, maxMetadataBytes)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", uri, err)
	}
	return nil
}

// Ready reports whether tokens can be validated: it succeeds while a key
// set younger than the hard maximum age is cached, and otherwise tries to
// obtain one. Use it as a /readyz check.
func (v *Validator) Ready(ctx context.Context) error {
	if ks := v.keys.Load(); ks != nil && !v.expired(ks) {
		return nil
	}
	if err := v.refresh(ctx, min(coldRetryInterval, v.minRefresh)); err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "the token issuer's keys are unavailable")
	}
	if ks := v.keys.Load(); ks == nil || v.expired(ks) {
		return apperr.New(apperr.Unavailable, "the token issuer's keys are unavailable")
	}
	return nil
}
