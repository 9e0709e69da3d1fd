package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// OpenID Connect Back-Channel Logout 1.0, the OpenID Provider's side: when
// a session ends at the IAM (end_session with a valid ID token, an
// administrator's disable, "log out everywhere", a password change, which
// names each earlier session by its sid), every client that
// registered a back-channel logout URI (ClientConfig.BackchannelLogoutURI)
// gets a signed logout token by a direct POST, so that it ends its own
// sessions at once rather than at its next refresh.
//
// Delivery never holds the IAM's answer for long: the first attempt to
// every client runs in parallel and is waited for at most
// backchannelFirstWait; whatever has not succeeded by then goes on in the
// background, retried after each delay of backchannelRetries (a fresh
// token, so a new jti, each time: the client refuses a jti it has seen),
// and every failure is logged and counted.

// BackchannelLogoutEvent is the member of a logout token's events claim
// (Back-Channel Logout §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenType is the typ header of a logout token (§2.4, explicit
// typing so that no other JWT of the IAM can be taken for one).
const LogoutTokenType = "logout+jwt"

// logoutTokenLifetime is how long a logout token may be presented: long
// enough for clock skew and one slow delivery, short enough that a stolen
// token is useless soon. Each retry gets its own.
const logoutTokenLifetime = 2 * time.Minute

// backchannelAttemptTimeout bounds one delivery.
const backchannelAttemptTimeout = 5 * time.Second

// backchannelFirstWait is the longest an IAM answer (end_session, a
// disable) waits for the first delivery attempts.
const backchannelFirstWait = 2 * time.Second

// backchannelRetries are the delays before each further attempt after a
// failed one: four attempts in all within about half a minute.
var backchannelRetries = []time.Duration{time.Second, 5 * time.Second, 25 * time.Second}

// backchannel delivers logout tokens; it lives as long as the Service.
type backchannel struct {
	s       *Service
	client  *http.Client
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	results *prometheus.CounterVec
}

func newBackchannel(s *Service) *backchannel {
	ctx, cancel := context.WithCancel(context.Background())
	b := &backchannel{
		s: s,
		client: &http.Client{
			Timeout: backchannelAttemptTimeout,
			// A logout endpoint answers 200; a redirect is a
			// misconfiguration, and following it would send the token
			// somewhere unregistered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx: ctx, cancel: cancel,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_iam_backchannel_logouts_total",
			Help: "Back-channel logout token deliveries, by result (ok, retry, refused, failed).",
		}, []string{"result"}),
	}
	for _, r := range []string{"ok", "retry", "refused", "failed"} {
		b.results.WithLabelValues(r)
	}
	s.registry.MustRegister(b.results)
	return b
}

// close stops the background retries and waits for them.
func (b *backchannel) close() {
	if b == nil {
		return
	}
	b.cancel()
	b.wg.Wait()
}

// logoutTarget is one client to notify about one session.
type logoutTarget struct {
	client *client
	// subject is the user; sid, when set, names the one session (refresh
	// family) that ended, otherwise every session of the user ended.
	subject, sid string
}

// logout notifies the clients of an ended session: only clientID when it
// is set, otherwise every client with a back-channel logout URI. sid names
// the session, or is empty when every session of the user ended. It
// returns once every first attempt has answered or backchannelFirstWait
// has passed.
func (b *backchannel) logout(ctx context.Context, subject, clientID, sid string) {
	if b == nil {
		return
	}
	var targets []logoutTarget
	for id, c := range b.s.clients {
		if c.cfg.BackchannelLogoutURI == "" || (clientID != "" && id != clientID) {
			continue
		}
		targets = append(targets, logoutTarget{client: c, subject: subject, sid: sid})
	}
	b.send(ctx, targets)
}

// logoutSessions notifies the clients that the given sessions of subject
// ended: one token per session, naming its sid, to the session's client
// when it has a back-channel logout URI. A password change uses it rather
// than a token for the whole user: a retry of such a token, arriving after
// the login that changed the password has started its own session at the
// client, would end that new session too, whereas a token naming a session
// that existed before the change can never end one begun after it.
func (b *backchannel) logoutSessions(ctx context.Context, subject string, sessions []userSession) {
	if b == nil {
		return
	}
	var targets []logoutTarget
	for _, us := range sessions {
		c := b.s.clients[us.ClientID]
		if c == nil || c.cfg.BackchannelLogoutURI == "" {
			continue
		}
		targets = append(targets, logoutTarget{client: c, subject: subject, sid: us.FamilyID})
	}
	b.send(ctx, targets)
}

// send delivers a token to every target, each with its retries in the
// background, and returns once every first attempt has answered or
// backchannelFirstWait has passed.
func (b *backchannel) send(ctx context.Context, targets []logoutTarget) {
	if len(targets) == 0 || b.ctx.Err() != nil {
		return
	}
	log := httpx.LoggerFrom(ctx)
	first := make(chan struct{}, len(targets))
	for _, t := range targets {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.deliverWithRetries(log, t, first)
		}()
	}
	timer := time.NewTimer(backchannelFirstWait)
	defer timer.Stop()
	for range targets {
		select {
		case <-first:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// deliverWithRetries posts a fresh logout token to t until it is taken,
// refused, or the retries are used up, signalling first after the first
// attempt.
func (b *backchannel) deliverWithRetries(log *slog.Logger, t logoutTarget, first chan<- struct{}) {
	for attempt := 0; ; attempt++ {
		retry, err := b.deliver(t)
		done := true
		switch {
		case err == nil:
			b.results.WithLabelValues("ok").Inc()
		case !retry:
			b.results.WithLabelValues("refused").Inc()
			log.ErrorContext(b.ctx, "back-channel logout refused by the client; its sessions end at their next refresh",
				"client", t.client.GetID(), "err", err)
		case attempt >= len(backchannelRetries):
			b.results.WithLabelValues("failed").Inc()
			log.ErrorContext(b.ctx, "back-channel logout failed after retries; the client's sessions end at their next refresh",
				"client", t.client.GetID(), "attempts", attempt+1, "err", err)
		default:
			done = false
			b.results.WithLabelValues("retry").Inc()
			log.WarnContext(b.ctx, "back-channel logout failed; will retry", "client", t.client.GetID(), "attempt", attempt+1, "err", err)
		}
		if attempt == 0 {
			first <- struct{}{}
		}
		if done {
			return
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(backchannelRetries[attempt]):
		}
	}
}

// deliver makes one attempt. It reports whether a failure is worth
// retrying: a network error or a 5xx is, a 4xx (the client refused the
// token) is not.
func (b *backchannel) deliver(t logoutTarget) (retry bool, err error) {
	token, err := b.s.logoutToken(t.client.GetID(), t.subject, t.sid)
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, backchannelAttemptTimeout)
	defer cancel()
	form := url.Values{"logout_token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.client.cfg.BackchannelLogoutURI, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("answered %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("answered %d", resp.StatusCode)
	}
}

// logoutToken signs a logout token for clientID (Back-Channel Logout
// §2.4): iss, aud, iat, exp, a fresh jti, the events claim, sub and, for
// one session, sid; never a nonce. It is typed logout+jwt and signed with
// the key that signs every other token, so the client checks it against
// the IAM's JWKS.
func (s *Service) logoutToken(clientID, subject, sid string) (string, error) {
	k, err := s.keys.current()
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.private, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"}},
		(&jose.SignerOptions{}).WithType(LogoutTokenType),
	)
	if err != nil {
		return "", err
	}
	now := s.now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     s.cfg.Issuer,
		Subject:    subject,
		Audience:   oidc.Audience{clientID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(logoutTokenLifetime)),
		JWTID:      uuid.NewString(),
		Events:     map[string]any{BackchannelLogoutEvent: map[string]any{}},
		SessionID:  sid,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// logoutEverywhere ends every session of user userID: its refresh tokens
// are revoked, its IAM browser sessions deleted, and every client with a
// back-channel logout URI is told to end its sessions of the user.
func (s *Service) logoutEverywhere(ctx context.Context, userID string) error {
	if err := s.store.revokeUser(ctx, userID); err != nil {
		return err
	}
	s.backchannel.logout(ctx, userID, "", "")
	return nil
}

// userSession is one session of a user at the IAM: a refresh family (the
// sid of its ID tokens) and the client it was issued to.
type userSession struct {
	FamilyID, ClientID string
}

// userSessions lists every session of user userID that the IAM still
// knows, revoked ones included: an administrator's reset or replayed
// password revokes the refresh tokens first, and the clients' sessions of
// those families must still end when the user then changes the password.
// Families pruned after expiry are gone, but so are their sessions, which
// could not refresh.
func (s *store) userSessions(ctx context.Context, q sqldb.Querier, userID string) ([]userSession, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT family_id, client_id FROM iam_refresh_tokens WHERE user_id = ? ORDER BY family_id, client_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []userSession
	for rows.Next() {
		var us userSession
		if err := rows.Scan(&us.FamilyID, &us.ClientID); err != nil {
			return nil, err
		}
		out = append(out, us)
	}
	return out, rows.Err()
}

// revokeUser revokes every refresh token and deletes every browser
// session of a user.
func (s *store) revokeUser(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM iam_browser_sessions WHERE user_id = ?`, userID)
	return err
}

// logoutAll is POST /api/users/{id}/logout: "log out everywhere" for a
// user, by an administrator, or by a service for a user it created (the
// same confinement as disable). The account stays enabled.
func (a *usersAPI) logoutAll(w http.ResponseWriter, r *http.Request) {
	u, ok := a.load(w, r)
	if !ok {
		return
	}
	if err := a.s.logoutEverywhere(r.Context(), u.ID); err != nil {
		httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNoBackchannelURI is returned by validateBackchannelURI for a URI
// that cannot be one.
var errNoBackchannelURI = errors.New("must be an absolute http(s) URL without fragment")

// validateBackchannelURI checks a back-channel logout URI (§2.2: absolute,
// no fragment; a query is allowed).
func validateBackchannelURI(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") || p.Fragment != "" || p.User != nil {
		return errNoBackchannelURI
	}
	return nil
}
