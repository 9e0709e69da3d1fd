package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// Live state: the BFF listens to the Security System Service's events as
// plain NATS messages (its identity may only subscribe to that stream's
// subjects, see system.NATSGrants) and tells each open page, over
// Server-Sent Events, the current state of the systems that changed. An
// event only says "system X changed"; what a browser receives is the
// Security System Service's own answer to GET /securitysystems/{id} asked
// with that user's token, so a user hears only of systems they may view,
// with the actions they may take now, and the BFF decides nothing itself.
//
// Core NATS delivers at most once: a message lost while the BFF was
// disconnected is not replayed. The browser therefore reloads the page's
// state whenever its stream (re)connects, which covers every gap.

const (
	// liveMaxWatch bounds the ids one stream may watch: two dashboard
	// pages' worth.
	liveMaxWatch = 2 * dashboardPageSize
	// liveMaxPending bounds the changed systems a stream has not yet
	// looked up; past it the stream asks the page to reload instead.
	liveMaxPending = 256
	// liveHeartbeat is how often an idle stream sends a comment, so that
	// proxies keep it open and a vanished browser is noticed.
	liveHeartbeat = 20 * time.Second
	// liveMaxAge ends a stream after this long even with a valid token;
	// the browser reconnects at once, with a fresh look at its session.
	liveMaxAge = 15 * time.Minute
	// liveLookups bounds the concurrent look-ups of all streams, so a
	// burst of events cannot flood the Security System Service.
	liveLookups = 16
	// liveLookupTimeout bounds one look-up.
	liveLookupTimeout = 5 * time.Second
)

// liveHub fans the Security System Service's events out to the open
// streams.
type liveHub struct {
	prefix string
	mu     sync.Mutex
	subs   map[*liveSub]struct{}
	sem    chan struct{}
	// done is closed when the BFF stops, ending every stream, so that a
	// graceful shutdown does not wait for them.
	done     chan struct{}
	stopOnce sync.Once

	streams   prometheus.Gauge
	delivered *prometheus.CounterVec
}

// liveSub is one open stream: the systems it watches (all it may view when
// watch is empty) and those that changed since it last looked.
type liveSub struct {
	watch   map[string]bool
	mu      sync.Mutex
	pending map[string]struct{}
	overrun bool
	wake    chan struct{}
}

// securitySystemEvent is the part of the Security System Service's events
// (docs/events.md) the hub reads.
type securitySystemEvent struct {
	Type     string `json:"type"`
	Producer string `json:"producer"`
	Payload  struct {
		SecuritySystemID string `json:"securitySystemId"`
	} `json:"payload"`
}

// liveTypes are the event types that change what a page shows.
var liveTypes = map[string]bool{
	"securitysystem.created":  true,
	"securitysystem.armed":    true,
	"securitysystem.disarmed": true,
}

func newLiveHub(prefix string, reg *prometheus.Registry) *liveHub {
	if prefix == "" {
		prefix = events.DefaultPrefix
	}
	h := &liveHub{
		prefix: prefix,
		subs:   map[*liveSub]struct{}{},
		sem:    make(chan struct{}, liveLookups),
		done:   make(chan struct{}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "realguardio_bff_live_streams",
			Help: "Open Server-Sent Events streams of live security system state.",
		}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_bff_live_updates_total",
			Help: "Security system changes looked up for a live stream, by outcome: sent, hidden (the user may not view the system), failed.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(h.streams, h.delivered)
	return h
}

// subject is what the hub subscribes to: every event of the Security
// System Service's stream.
func (h *liveHub) subject() string { return h.prefix + "." + events.ProducerSecuritySystem + ".>" }

// listen subscribes nc; the subscription lasts until the returned
// subscription is unsubscribed (Service.Close).
func (h *liveHub) listen(nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(h.subject(), h.onMessage)
	if err != nil {
		return nil, fmt.Errorf("bff: subscribe to %s: %w", h.subject(), err)
	}
	return sub, nil
}

// onMessage takes an event apart and queues its system on every stream
// that watches it. A message that cannot be attributed to the Security
// System Service (wrong producer, or a subject that is not its type's) is
// ignored, as the services' consumers do: it would only make pages look
// up a system, never show anything the user may not see, but it is not an
// event.
func (h *liveHub) onMessage(m *nats.Msg) {
	var ev securitySystemEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	if ev.Producer != events.ProducerSecuritySystem || !liveTypes[ev.Type] || m.Subject != h.prefix+"."+ev.Type || !validID(ev.Payload.SecuritySystemID) {
		return
	}
	h.publish(strings.ToLower(ev.Payload.SecuritySystemID))
}

// publish queues id on every stream that watches it.
func (h *liveHub) publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		sub.offer(id)
	}
}

// stop ends every stream.
func (h *liveHub) stop() { h.stopOnce.Do(func() { close(h.done) }) }

func (h *liveHub) add(sub *liveSub) {
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	h.streams.Inc()
}

func (h *liveHub) remove(sub *liveSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
	h.streams.Dec()
}

// offer queues id unless the stream watches other systems. Repeated
// changes of one system before the stream looks coalesce into one look-up,
// which answers the latest state anyway.
func (sub *liveSub) offer(id string) {
	if len(sub.watch) > 0 && !sub.watch[id] {
		return
	}
	sub.mu.Lock()
	if len(sub.pending) >= liveMaxPending {
		sub.overrun = true
	} else {
		sub.pending[id] = struct{}{}
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// take returns and clears what is pending.
func (sub *liveSub) take() (ids []string, overrun bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for id := range sub.pending {
		ids = append(ids, id)
	}
	clear(sub.pending)
	overrun, sub.overrun = sub.overrun, false
	return ids, overrun
}

// validID accepts the ids the services issue (UUIDs) and nothing that
// could change the path of a look-up.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// parseWatch reads the ids a stream watches from ?ids=a,b,c.
func parseWatch(raw string) (map[string]bool, error) {
	watch := map[string]bool{}
	if raw == "" {
		return watch, nil
	}
	for _, id := range strings.Split(raw, ",") {
		if !validID(id) {
			return nil, apperr.InvalidField("ids", "must be security system ids separated by commas")
		}
		watch[strings.ToLower(id)] = true
	}
	if len(watch) > liveMaxWatch {
		return nil, apperr.InvalidField("ids", "may name at most %d systems", liveMaxWatch)
	}
	return watch, nil
}

// handleLiveSystems is GET /events/securitysystems: a Server-Sent Events
// stream of "system" events, each the JSON of GET /securitysystems/{id} as
// the signed-in user sees it, for the watched systems (?ids=, comma
// separated) or, without ids, every system the user may view. A "reload"
// event asks the page to load everything again (more changed at once than
// the stream could look up). The stream ends when the session ends, when
// its access token is about to expire (the browser reconnects at once, and
// that request refreshes the token and the cookie) or after liveMaxAge.
func (s *Service) handleLiveSystems(w http.ResponseWriter, r *http.Request) {
	if s.live == nil {
		httpx.WriteError(w, r, apperr.New(apperr.Unavailable, "live updates are off: the BFF is not connected to the event bus"))
		return
	}
	sess, err := s.currentSession(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	watch, err := parseWatch(r.URL.Query().Get("ids"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary answers; a stream lives
	// until one of the ends above.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	// Listening starts before the browser hears that the stream is open,
	// so nothing that happens after its "open" is missed.
	sub := &liveSub{watch: watch, pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	s.live.add(sub)
	defer s.live.remove(sub)
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if _, err := fmt.Fprint(w, "retry: 1000\n: live\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}

	ctx := r.Context()
	end := time.NewTimer(min(liveMaxAge, s.streamLife(sess)))
	defer end.Stop()
	beat := time.NewTicker(liveHeartbeat)
	defer beat.Stop()
	send := func(event string, data []byte) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.live.done:
			return // the BFF is stopping; the browser reconnects elsewhere
		case <-end.C:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": beat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-sub.wake:
			ids, overrun := sub.take()
			if overrun {
				if !send("reload", []byte("{}")) {
					return
				}
				continue
			}
			// The session is read again for every batch: a logout ends the
			// stream, and a token refreshed by another request is used.
			cur, err := s.loadSession(ctx, sess.ID)
			if err != nil {
				if errors.Is(err, errNoSession) {
					send("ended", []byte("{}"))
				}
				return
			}
			if s.now().Unix() >= cur.Expiry {
				return // the browser reconnects and refreshes
			}
			for _, id := range ids {
				data, ok := s.lookUpLive(ctx, cur, id)
				if ok && !send("system", data) {
					return
				}
			}
		}
	}
}

// streamLife is how long a stream may use sess's access token: until just
// before it would be refreshed, or until it expires when it cannot be.
func (s *Service) streamLife(sess *session) time.Duration {
	end := time.Unix(sess.Expiry, 0)
	if sess.Refresh != "" {
		end = end.Add(-s.leeway(sess))
	}
	return max(time.Until(end), time.Second)
}

// liveUpdate is what a "system" event carries: the system as the user
// sees it, and why they can do nothing with it now, when that is so.
type liveUpdate struct {
	securitySystem
	Why string `json:"why,omitempty"`
}

// lookUpLive asks the Security System Service, as the stream's user, for
// system id. It answers the JSON to send and whether to send it: never
// when the service refuses or cannot answer, so a user hears only of what
// they may view.
func (s *Service) lookUpLive(ctx context.Context, sess *session, id string) ([]byte, bool) {
	select {
	case s.live.sem <- struct{}{}:
		defer func() { <-s.live.sem }()
	case <-ctx.Done():
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, liveLookupTimeout)
	defer cancel()
	update, status, err := s.systemView(ctx, sess, id)
	switch {
	case err == nil:
		data, err := json.Marshal(update)
		if err != nil {
			s.live.delivered.WithLabelValues("failed").Inc()
			return nil, false
		}
		s.live.delivered.WithLabelValues("sent").Inc()
		return data, true
	case status == http.StatusForbidden || status == http.StatusNotFound:
		s.live.delivered.WithLabelValues("hidden").Inc()
	default:
		s.live.delivered.WithLabelValues("failed").Inc()
		httpx.LoggerFrom(ctx).DebugContext(ctx, "live look-up failed", "securitySystemId", id, "err", err)
	}
	return nil, false
}

// systemView is system id as the session's user sees it, with why they
// can do nothing with it now when that is so; status is the Security
// System Service's answer when it refused.
func (s *Service) systemView(ctx context.Context, sess *session, id string) (liveUpdate, int, error) {
	var sys securitySystem
	status, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id), &sys)
	if err != nil {
		return liveUpdate{}, status, err
	}
	update := liveUpdate{securitySystem: sys}
	if len(usefulActions(sys.Actions, sys.State)) == 0 {
		if slices.Contains(sess.Roles, roleAdmin) && len(sys.Actions) == 0 {
			update.Why = explainAccess(sys, nil, true, nil)
		} else {
			var rev accessReview
			if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id)+"/access?userId=me", &rev); err == nil {
				update.Why = explainAccess(sys, rev.Users, slices.Contains(sess.Roles, roleAdmin), nil)
			}
		}
	}
	return update, status, nil
}

// handleSystemView is GET /ui/securitysystems/{id}: what a page shows of
// one system (its JSON as GET /api/securitysystems/{id} answers, with
// "why" when the user can do nothing with it now). The pages read it
// after a click, so that a refused action leaves the row explained.
func (s *Service) handleSystemView(w http.ResponseWriter, r *http.Request) {
	sess, err := s.currentSession(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !validID(id) {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "there is no security system %q", id))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	update, status, err := s.systemView(ctx, sess, id)
	if err != nil {
		if bp, ok := err.(*backendProblem); ok && status > 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(bp.Problem)
			return
		}
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, update)
}
