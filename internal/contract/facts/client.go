// Package facts is the client of the authorization facts endpoints the
// organization services answer (docs/fetch-api.md): a user's subject facts,
// a location's and a dealer's resource facts, the id lists behind
// organization-role grants and the role holders of the access review.
//
// Two services call them: the Security System Service's fetch strategy at
// every decision, and the IAM Service when it builds the provide strategy's
// claims. Both use this one client (the same timeouts, circuit breakers,
// answer parsing and consistency check), and neither imports the other: the
// contract lives here, beside the owners' handlers that implement it.
package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/breaker"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// ScopeRead is the scope of the client-credentials token a caller presents
// to the organization services' facts endpoints.
const ScopeRead = principal.ScopeAuthzRead

// Dependency names, used for circuit breakers, metrics and messages.
const (
	depCustomer   = "customer"
	depDealer     = "dealer"
	depMonitoring = "monitoring"
	depIAM        = "iam"
)

// errNotFound is what a 404 from a facts endpoint becomes: an answer, not a
// failure, so it never trips a breaker.
var errNotFound = errors.New("not found")

// statusError is a non-2xx answer other than 404.
type statusError struct{ status int }

func (e statusError) Error() string { return fmt.Sprintf("answered HTTP %d", e.status) }

// remote calls the facts endpoints of the organization services with the
// service's own token, one circuit breaker per dependency (the shared
// policy of internal/platform/breaker). Client wraps it with the typed
// calls.
type remote struct {
	http     *http.Client
	timeout  time.Duration
	base     map[string]string
	breakers map[string]*breaker.Breaker
	tokens   oauth2.TokenSource
	requests *prometheus.CounterVec
}

// newBreaker returns dependency dep's breaker: a 404 is an answer and
// never trips it.
func newBreaker(dep string, p breaker.Policy, reg prometheus.Registerer) (*breaker.Breaker, error) {
	return breaker.New("fetch_"+dep, p, breaker.Options{
		Display:    "the " + serviceName(dep),
		Trips:      func(err error) bool { return !errors.Is(err, errNotFound) },
		Registerer: reg,
	})
}

// call runs one JSON request against dependency dep, inside that
// dependency's breaker and under the per-call timeout. out may be nil. Any
// failure is an Unavailable apperr except errNotFound, which is returned
// as is. The token is fetched first, through the IAM's breaker, so an IAM
// outage never counts against an owner.
func (c *remote) call(ctx context.Context, dep, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.token(ctx)
	if err != nil {
		c.requests.WithLabelValues(dep, "error").Inc()
		return err
	}
	err = c.breakers[dep].Do(ctx, func(ctx context.Context) error {
		return c.do(ctx, tok, dep, method, path, in, out)
	})
	switch {
	case err == nil:
		c.requests.WithLabelValues(dep, "ok").Inc()
		return nil
	case errors.Is(err, errNotFound):
		c.requests.WithLabelValues(dep, "not_found").Inc()
		return errNotFound
	case breaker.IsRefused(err):
		c.requests.WithLabelValues(dep, "breaker_open").Inc()
		return err
	default:
		c.requests.WithLabelValues(dep, "error").Inc()
		if apperr.Is(err, apperr.Unavailable) {
			return err
		}
		return apperr.Wrap(err, apperr.Unavailable, "the %s is unavailable", serviceName(dep))
	}
}

func serviceName(dep string) string {
	switch dep {
	case depCustomer:
		return "Customer Service"
	case depDealer:
		return "Security System Dealer Service"
	case depMonitoring:
		return "Monitoring Provider Service"
	case depIAM:
		return "IAM Service"
	}
	return dep
}

func (c *remote) do(ctx context.Context, tok *oauth2.Token, dep, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base[dep]+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok.SetAuthHeader(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return errNotFound
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// 401/403 mean our own credentials are wrong and 5xx that the
		// dependency is broken: either way no decision can be made.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return statusError{resp.StatusCode}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// token returns the cached client-credentials token, fetching a new one
// through the IAM breaker when it is missing or about to expire. The token
// source takes no context; its own HTTP client's timeout bounds it.
func (c *remote) token(ctx context.Context) (*oauth2.Token, error) {
	var tok *oauth2.Token
	err := c.breakers[depIAM].Do(ctx, func(context.Context) error {
		var err error
		tok, err = c.tokens.Token()
		return err
	})
	if err != nil {
		if breaker.IsRefused(err) {
			return nil, err
		}
		return nil, apperr.Wrap(err, apperr.Unavailable, "the IAM Service is unavailable (no token for the authorization facts)")
	}
	return tok, nil
}
