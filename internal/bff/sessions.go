package bff

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// purposeSessionData seals the session's tokens and data in its store row;
// the cookie (purposeSession) holds only a sessionRef.
const purposeSessionData = "session-data"

// sessionRef is all the session cookie holds: which session, and which
// generation of it the cookie was written for. A refresh bumps the
// generation and writes a new cookie, so a copy of an older cookie names a
// generation the store no longer has and opens nothing.
type sessionRef struct {
	ID  string `json:"sid"`
	Gen int64  `json:"gen"`
}

// refreshPoll is how often a request waiting for another instance's refresh
// of its session looks at the store again.
const refreshPoll = 20 * time.Millisecond

// errStaleSession means the cookie names an older generation of a live
// session: a copy taken before a refresh, or a request that left the browser
// just before the refreshed cookie arrived there. It is a 401 that leaves
// the cookies alone, since the browser may already hold the new ones.
var errStaleSession = errors.New("stale session generation")

// sessionEnd is the absolute end of sess.
func (s *Service) sessionEnd(sess *session) time.Time {
	return time.Unix(sess.Created, 0).Add(s.cfg.SessionTTL)
}

// sealData seals what the store keeps of sess, valid until the session ends.
func (s *Service) sealData(sess *session) (string, error) {
	remaining := s.sessionEnd(sess).Sub(s.now())
	if remaining <= 0 {
		return "", apperr.New(apperr.Unauthenticated, "the session has ended; please sign in again")
	}
	data, err := s.codec.seal(purposeSessionData, sess, remaining)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "seal session")
	}
	return data, nil
}

// startSession stores a new session (generation 1) and sets its cookie.
func (s *Service) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *session) error {
	sess.Gen = 1
	data, err := s.sealData(sess)
	if err != nil {
		return err
	}
	row := &sessionRow{
		IDHash: hashID(sess.ID), Subject: sess.Subject, IAMSID: sess.IAMSID, Generation: sess.Gen, Data: data,
		AccessExpiry: time.Unix(sess.Expiry, 0), ExpiresAt: s.sessionEnd(sess),
	}
	if err := s.store.insert(ctx, row, s.now()); err != nil {
		return s.storeError(ctx, "store a new session", err)
	}
	return s.writeCookie(w, r, sess)
}

// writeCookie seals the reference to sess's current generation into the
// session cookie.
func (s *Service) writeCookie(w http.ResponseWriter, r *http.Request, sess *session) error {
	remaining := s.sessionEnd(sess).Sub(s.now())
	if remaining <= 0 {
		return apperr.New(apperr.Unauthenticated, "the session has ended; please sign in again")
	}
	value, err := s.codec.seal(purposeSession, sessionRef{ID: sess.ID, Gen: sess.Gen}, remaining)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "seal session")
	}
	s.jar.writeChunks(w, r, value, int(remaining/time.Second))
	return nil
}

// storeError logs a failure of the session store and reports it as 503:
// without the store no session can be checked, so nothing is served.
func (s *Service) storeError(ctx context.Context, what string, err error) error {
	s.log.ErrorContext(ctx, "session store failed", "op", what, "err", err)
	return apperr.Wrap(err, apperr.Unavailable, "the session store is not reachable; try again in a moment")
}

// readSession returns the request's session as the store has it. It is
// errNoSession when the request has no cookie, the cookie does not open (a
// tampered, foreign or expired cookie is simply no session) or its session
// has ended (logout, refused refresh, back-channel logout); errStaleSession
// when the cookie names an older generation; Unavailable when the store
// cannot be asked.
func (s *Service) readSession(r *http.Request) (*session, error) {
	value := s.jar.readChunks(r)
	if value == "" {
		return nil, errNoSession
	}
	var ref sessionRef
	if err := s.codec.open(purposeSession, value, &ref); err != nil || ref.ID == "" || ref.Gen <= 0 {
		return nil, errNoSession
	}
	sess, err := s.loadSession(r.Context(), ref.ID)
	if err != nil {
		return nil, err
	}
	if sess.Gen != ref.Gen {
		return nil, errStaleSession
	}
	return sess, nil
}

// loadSession reads session id from the store and opens its sealed data.
func (s *Service) loadSession(ctx context.Context, id string) (*session, error) {
	row, err := s.store.get(ctx, hashID(id), s.now())
	if errors.Is(err, errSessionGone) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, s.storeError(ctx, "read a session", err)
	}
	var sess session
	// The sealed data names its session, so a row's data copied into
	// another row opens nothing.
	if err := s.codec.open(purposeSessionData, row.Data, &sess); err != nil || sess.ID != id || sess.Access == "" {
		return nil, errNoSession
	}
	sess.Gen = row.Generation
	return &sess, nil
}

// currentSession returns the request's session with an access token that is
// good for at least RefreshLeeway, refreshing it (and rewriting the cookie on
// w) when needed. A session that has ended, or whose refresh the IAM
// refuses, is Unauthenticated and its cookies are cleared; a stale copy of
// the cookie is Unauthenticated too.
func (s *Service) currentSession(w http.ResponseWriter, r *http.Request) (*session, error) {
	sess, err := s.readSession(r)
	if hook := s.afterRead.Load(); hook != nil {
		(*hook)()
	}
	switch {
	case errors.Is(err, errStaleSession):
		return nil, apperr.Wrap(err, apperr.Unauthenticated, "this copy of the session has been superseded; please sign in again")
	case errors.Is(err, errNoSession):
		if s.jar.readChunks(r) != "" {
			s.jar.clearSession(w, r)
		}
		return nil, apperr.Wrap(err, apperr.Unauthenticated, "not signed in")
	case err != nil:
		return nil, err
	}
	now := s.now()
	if now.Add(s.leeway(sess)).Unix() < sess.Expiry {
		return sess, nil
	}
	if sess.Refresh == "" {
		if now.Unix() < sess.Expiry {
			return sess, nil
		}
		s.endSession(r.Context(), sess)
		s.jar.clearSession(w, r)
		return nil, apperr.New(apperr.Unauthenticated, "the session has expired; please sign in again")
	}
	next, err := s.refresh(r.Context(), sess)
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			s.jar.clearSession(w, r)
			return nil, err
		}
		// The IAM or the store is down: keep the session, and keep using
		// the old access token while it is still valid.
		if now.Unix() < sess.Expiry {
			return sess, nil
		}
		return nil, err
	}
	if err := s.writeCookie(w, r, next); err != nil {
		s.jar.clearSession(w, r)
		return nil, err
	}
	return next, nil
}

// leeway is how long before its expiry sess's access token is refreshed:
// RefreshLeeway, but at most a third of the token's lifetime, so that short
// tokens (the IAM allows 10 s) are not refreshed at every request, which
// would bump the session's generation every time.
func (s *Service) leeway(sess *session) time.Duration {
	l := s.cfg.RefreshLeeway
	if sess.Issued > 0 && sess.Expiry > sess.Issued {
		l = min(l, time.Duration(sess.Expiry-sess.Issued)*time.Second/3)
	}
	return l
}

// endSession deletes sess from the store; a failure is logged, and the
// session then still ends at its refresh or its expiry.
func (s *Service) endSession(ctx context.Context, sess *session) {
	if err := s.store.delete(context.WithoutCancel(ctx), hashID(sess.ID)); err != nil {
		s.log.ErrorContext(ctx, "session store failed", "op", "end a session", "err", err)
	}
}

// refresh returns generation sess.Gen+1 (or later) of the session, with
// fresh tokens, refreshing at the IAM at most once per generation however
// many requests on however many BFF instances need it at the same time.
// Requests on this instance share one attempt (singleflight); across
// instances, the one that takes the store's lease on the generation
// refreshes and the others wait for the new generation to appear in the
// store. Presenting the rotated refresh token a second time would make the
// IAM treat it as stolen and revoke the whole token family.
func (s *Service) refresh(ctx context.Context, sess *session) (*session, error) {
	v, err, _ := s.refreshGroup.Do(sess.ID+"\x00"+strconv.FormatInt(sess.Gen, 10), func() (any, error) {
		// The refresh must complete even if the request that started it
		// is cancelled: other requests wait for it, and an abandoned
		// rotation would lose the new refresh token.
		return s.refreshShared(context.WithoutCancel(ctx), sess)
	})
	if err != nil {
		return nil, err
	}
	return v.(*session), nil
}

// refreshShared takes the lease or waits for whoever holds it. A lease
// outlives its holder by at most leaseTTL, so an instance that dies
// mid-refresh delays the others by that much; the one that then takes over
// presents the same refresh token, which the IAM's reuse grace window
// answers with the same successor.
func (s *Service) refreshShared(ctx context.Context, sess *session) (*session, error) {
	idHash := hashID(sess.ID)
	leaseTTL := s.cfg.IAMTimeout + time.Second
	giveUp := time.Now().Add(leaseTTL + s.cfg.IAMTimeout)
	owner := s.instance + "." + randomToken(6)
	for {
		now := s.now()
		ok, err := s.store.tryLease(ctx, idHash, sess.Gen, owner, now, now.Add(leaseTTL))
		if err != nil {
			return nil, s.storeError(ctx, "take the refresh lease", err)
		}
		if ok {
			return s.refreshLeased(ctx, sess, owner)
		}
		next, err := s.loadSession(ctx, sess.ID)
		if errors.Is(err, errNoSession) {
			// Ended meanwhile: logged out, or the holder's refresh was
			// refused.
			return nil, apperr.New(apperr.Unauthenticated, "the session has ended; please sign in again")
		}
		if err != nil {
			return nil, err
		}
		if next.Gen > sess.Gen {
			s.metrics.refreshes.WithLabelValues("shared").Inc()
			return next, nil
		}
		if time.Now().After(giveUp) {
			return nil, apperr.New(apperr.Unavailable, "the session is being refreshed elsewhere and it takes too long; try again in a moment")
		}
		time.Sleep(refreshPoll)
	}
}

// refreshLeased refreshes at the IAM while owner holds the lease on
// generation sess.Gen, and stores the result as the next generation.
func (s *Service) refreshLeased(ctx context.Context, sess *session, owner string) (*session, error) {
	idHash := hashID(sess.ID)
	tok, err := s.refreshAtIAM(ctx, sess.Refresh)
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			// Refused: revoked at the IAM, reused, or past its lifetime.
			// Every copy of the cookie ends with the row.
			s.endSession(ctx, sess)
			return nil, err
		}
		if rerr := s.store.releaseLease(ctx, idHash, owner); rerr != nil {
			s.log.ErrorContext(ctx, "session store failed", "op", "release the refresh lease", "err", rerr)
		}
		return nil, err
	}
	next := *sess
	next.Roles = append([]string(nil), sess.Roles...)
	applyTokens(&next, tok, s.now)
	next.Gen = sess.Gen + 1
	data, err := s.sealData(&next)
	if err != nil {
		return nil, err
	}
	ok, err := s.store.commitRefresh(ctx, idHash, sess.Gen, owner, data, time.Unix(next.Expiry, 0), s.now())
	if err != nil {
		return nil, s.storeError(ctx, "store a refreshed session", err)
	}
	if !ok {
		// The lease expired and another instance took over, or the
		// session ended meanwhile: the store's version wins.
		cur, err := s.loadSession(ctx, sess.ID)
		if errors.Is(err, errNoSession) {
			return nil, apperr.New(apperr.Unauthenticated, "the session has ended; please sign in again")
		}
		if err != nil {
			return nil, err
		}
		if cur.Gen > sess.Gen {
			return cur, nil
		}
		return nil, apperr.New(apperr.Unavailable, "the session could not be refreshed; try again in a moment")
	}
	return &next, nil
}

// refreshAtIAM redeems refresh at the IAM's token endpoint.
func (s *Service) refreshAtIAM(ctx context.Context, refresh string) (*oauth2.Token, error) {
	d, err := s.iam.get(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.IAMTimeout)
	defer cancel()
	src := d.oauth.TokenSource(s.iam.ctx(rctx), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		err = tokenError(err, "the session has ended; please sign in again")
		if apperr.Is(err, apperr.Unauthenticated) {
			s.metrics.refreshes.WithLabelValues("refused").Inc()
		} else {
			s.metrics.refreshes.WithLabelValues("failed").Inc()
		}
		return nil, err
	}
	s.metrics.refreshes.WithLabelValues("ok").Inc()
	return tok, nil
}
