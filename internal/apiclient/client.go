// Package apiclient is a Go client of RealGuardIO's public HTTP API
// (API.md), for command-line tools, scripts, the demo loader, benchmarks
// and the system tests: it logs users in through the IAM Service's OpenID
// Connect flow with the public realguardio-cli client, keeps their tokens
// fresh, and calls every service straight with a Bearer token (not through
// the BFF), returning typed results.
//
// A call that the service refuses returns an *Error carrying the status and
// the RFC 9457 problem; errors.As / apperr.Is see through it to an
// *apperr.Error with the matching code, so callers can test for
// apperr.Forbidden or apperr.NotFound as the services themselves do.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// Service names one of RealGuardIO's HTTP services. The values are the
// service names of `realguardio serve`, so a map of URLs by those names
// converts directly.
type Service string

// The services a Client talks to.
const (
	ServiceIAM            Service = "iam"
	ServiceCustomer       Service = "customer"
	ServiceDealer         Service = "dealer"
	ServiceMonitoring     Service = "monitoring"
	ServiceSecuritySystem Service = "securitysystem"
)

// Endpoints are the base URLs of the services, without a trailing slash.
// A Client needs only those of the services it calls.
type Endpoints struct {
	IAM, Customer, Dealer, Monitoring, SecuritySystem string
}

// EndpointsFrom builds Endpoints from URLs keyed by service name, the form
// internal/system reports them in.
func EndpointsFrom(urls map[string]string) Endpoints {
	return Endpoints{
		IAM:            urls[string(ServiceIAM)],
		Customer:       urls[string(ServiceCustomer)],
		Dealer:         urls[string(ServiceDealer)],
		Monitoring:     urls[string(ServiceMonitoring)],
		SecuritySystem: urls[string(ServiceSecuritySystem)],
	}
}

// URL returns the base URL of service s ("" when not configured).
func (e Endpoints) URL(s Service) string {
	var u string
	switch s {
	case ServiceIAM:
		u = e.IAM
	case ServiceCustomer:
		u = e.Customer
	case ServiceDealer:
		u = e.Dealer
	case ServiceMonitoring:
		u = e.Monitoring
	case ServiceSecuritySystem:
		u = e.SecuritySystem
	}
	return strings.TrimRight(u, "/")
}

// TokenSource supplies the access token sent with each call. *Session
// implements it (refreshing when the token is about to expire), as does
// StaticToken.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource that always returns the same token; ""
// sends no Authorization header at all, for calls that need none and for
// tests of token handling.
type StaticToken string

// AccessToken returns the token itself.
func (t StaticToken) AccessToken(context.Context) (string, error) { return string(t), nil }

// DefaultHTTPClient is used when New is given no client: a bound on every
// call, so a hung service cannot hang a script.
var DefaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// Client calls the services' public APIs as one user. It is safe for
// concurrent use.
type Client struct {
	endpoints Endpoints
	tokens    TokenSource
	hc        *http.Client
}

// New returns a client reaching the services at endpoints, authenticating
// with tokens (nil: no Authorization header) over hc (nil:
// DefaultHTTPClient).
func New(endpoints Endpoints, tokens TokenSource, hc *http.Client) *Client {
	if hc == nil {
		hc = DefaultHTTPClient
	}
	return &Client{endpoints: endpoints, tokens: tokens, hc: hc}
}

// Endpoints returns the base URLs the client uses.
func (c *Client) Endpoints() Endpoints { return c.endpoints }

// Tokens returns the token source the client authenticates with.
func (c *Client) Tokens() TokenSource { return c.tokens }

// Problem is an RFC 9457 problem body as API.md describes it. Reason is set
// on authorization denials (no_role, outside_schedule, ...); Field names
// the offending input of a 400 or 422.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Reason string `json:"reason,omitempty"`
	Field  string `json:"field,omitempty"`
}

// Response is one exchange as it happened: the status, headers and raw
// body, and the decoded problem of an application/problem+json answer.
// Status is 0 when no answer arrived.
type Response struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
	Problem     *Problem
}

// String describes the exchange for messages, with the body shortened.
func (r *Response) String() string {
	if r.Status == 0 {
		return fmt.Sprintf("%s %s: no answer", r.Method, r.URL)
	}
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, Snippet(r.Body))
}

// UnknownReference reports whether the service refused the request because
// an entity it references is not known (yet): a 422 whose detail says
// "... is known" (for example "no dealer ... is known"). A service learns
// the entities of other services from their events, so such a reference
// is briefly unknown right after the entity was created; any other 422 is
// a real mistake.
func (r *Response) UnknownReference() bool {
	return r.Status == http.StatusUnprocessableEntity && r.Problem != nil && strings.Contains(r.Problem.Detail, " is known")
}

// Error is a call the service answered with a status other than 2xx.
type Error struct {
	// Response is the whole exchange.
	Response *Response
}

// Status returns the HTTP status.
func (e *Error) Status() int { return e.Response.Status }

// Problem returns the problem body, nil when the answer was not
// application/problem+json.
func (e *Error) Problem() *Problem { return e.Response.Problem }

// Reason returns the problem's denial reason, "" when there is none.
func (e *Error) Reason() string {
	if p := e.Response.Problem; p != nil {
		return p.Reason
	}
	return ""
}

// Error describes the refusal: method, URL, status and the problem's
// detail, reason and field (or a snippet of a body that is not a problem).
func (e *Error) Error() string {
	r := e.Response
	s := fmt.Sprintf("%s %s: %d %s", r.Method, r.URL, r.Status, http.StatusText(r.Status))
	if p := r.Problem; p != nil {
		if p.Detail != "" {
			s += ": " + p.Detail
		}
		if p.Reason != "" {
			s += " (reason " + p.Reason + ")"
		}
		if p.Field != "" && !strings.Contains(p.Detail, p.Field) {
			s += " (field " + p.Field + ")"
		}
	} else if b := Snippet(r.Body); b != "" {
		s += ": " + b
	}
	return s
}

// Unwrap returns the refusal as the *apperr.Error the service's code maps
// back to, so apperr.Is(err, apperr.Forbidden) works on a client error as
// on a server one. The mapping is the inverse of httpx's.
func (e *Error) Unwrap() error {
	ae := &apperr.Error{Code: codeOf(e.Response.Status), Message: http.StatusText(e.Response.Status)}
	if p := e.Response.Problem; p != nil {
		ae.Message, ae.Field, ae.Reason = p.Detail, p.Field, p.Reason
	}
	return ae
}

func codeOf(status int) apperr.Code {
	switch status {
	case http.StatusBadRequest:
		return apperr.Malformed
	case http.StatusUnprocessableEntity:
		return apperr.Invalid
	case http.StatusUnauthorized:
		return apperr.Unauthenticated
	case http.StatusForbidden:
		return apperr.Forbidden
	case http.StatusNotFound:
		return apperr.NotFound
	case http.StatusConflict:
		return apperr.Conflict
	case http.StatusTooManyRequests:
		return apperr.TooManyRequests
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return apperr.Unavailable
	case http.StatusRequestEntityTooLarge:
		return apperr.TooLarge
	}
	return apperr.Internal
}

// StatusOf returns the HTTP status of a refused call, 0 for any other
// error (no answer, undecodable answer) and for nil.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status()
	}
	return 0
}

// IsUnknownReference reports whether err is a refusal because a referenced
// entity is not known yet (Response.UnknownReference).
func IsUnknownReference(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Response.UnknownReference()
}

// DefaultRetryBound bounds RetryUnknownReference: events propagate in
// milliseconds, so half a minute means something is wrong.
const DefaultRetryBound = 30 * time.Second

// RetryUnknownReference calls call until it returns something other than
// an unknown-reference refusal (IsUnknownReference), ctx ends, or
// DefaultRetryBound passes, and returns its last result. It is how a
// client creates an entity that names one just created in another service
// (a location naming a new dealer, a dealer naming a new monitoring
// provider, a security system at a new location) without waiting for
// convergence first.
func RetryUnknownReference(ctx context.Context, call func(ctx context.Context) error) error {
	return RetryUnknownReferenceWithin(ctx, DefaultRetryBound, call)
}

// RetryUnknownReferenceWithin is RetryUnknownReference with its own bound,
// for a caller that knows the events it waits for take longer than usual
// to propagate: a bulk import naming thousands of locations created a
// moment earlier, applied one event at a time by the consumers of a busy
// machine.
func RetryUnknownReferenceWithin(ctx context.Context, bound time.Duration, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var err error
	_ = Poll(ctx, func() bool {
		err = call(ctx)
		return !IsUnknownReference(err)
	})
	return err
}

// Poll calls cond with a short, growing interval (10 ms, up to 250 ms)
// until it returns true, and then returns nil, or until ctx ends, and then
// returns ctx's error. It is the one bounded wait of the clients that
// drive a system (the system tests, the benchmark): something that
// propagates by events is waited for, never slept for.
func Poll(ctx context.Context, cond func() bool) error {
	return poll(ctx, 10*time.Millisecond, 250*time.Millisecond, cond)
}

// PollEvery is Poll with a fixed interval, for a caller that measures how
// long something takes to be seen and so wants the same granularity all
// along (the benchmark's revocation trials).
func PollEvery(ctx context.Context, interval time.Duration, cond func() bool) error {
	return poll(ctx, interval, interval, cond)
}

// poll calls cond every interval, which grows by half up to longest.
func poll(ctx context.Context, interval, longest time.Duration, cond func() bool) error {
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*3/2, longest)
	}
}

type exchangeKey struct{}

// WithExchange returns a context under which every call made with it
// reports its raw exchange to f once it ends (a transport failure too,
// with Status 0), the way net/http/httptrace hooks into one request. The
// typed methods return only results and errors; a caller that must also
// see the exact status, headers or body of a success (a conformance test)
// uses this.
func WithExchange(ctx context.Context, f func(*Response)) context.Context {
	return context.WithValue(ctx, exchangeKey{}, f)
}

// maxBody bounds how much of an answer is read: the largest list the
// services return is far below it.
const maxBody = 8 << 20

// Do sends one request to a service and, when the status is 2xx and out
// is non-nil, decodes the JSON answer into out. It returns the exchange
// whenever an answer arrived; the error is an *Error when the status is
// not 2xx, and another error when no answer arrived or it could not be
// decoded.
func (c *Client) Do(ctx context.Context, service Service, method, path string, in, out any) (*Response, error) {
	r := &Response{Method: method, URL: c.endpoints.URL(service) + path}
	err := c.do(ctx, r, in, out)
	if f, ok := ctx.Value(exchangeKey{}).(func(*Response)); ok {
		f(r)
	}
	return r, err
}

func (c *Client) do(ctx context.Context, r *Response, in, out any) error {
	if strings.HasPrefix(r.URL, "/") {
		return fmt.Errorf("%s %s: the service's URL is not configured", r.Method, r.URL)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode the request: %w", r.Method, r.URL, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.tokens != nil {
		tok, err := c.tokens.AccessToken(ctx)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Method, r.URL, err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // *url.Error already names the method and URL
	}
	defer resp.Body.Close()
	r.Status, r.Header = resp.StatusCode, resp.Header
	if r.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody)); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", r.Method, r.URL, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		var p Problem
		if json.Unmarshal(r.Body, &p) == nil {
			r.Problem = &p
		}
	}
	if r.Status < 200 || r.Status > 299 {
		return &Error{Response: r}
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", r.Method, r.URL, err)
		}
	}
	return nil
}

// Snippet returns b with runs of white space folded, cut to 600
// characters, for messages.
func Snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
