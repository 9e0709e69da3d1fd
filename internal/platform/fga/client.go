// Package fga connects RealGuardIO to OpenFGA, the authorization server of
// the delegate strategy (AUTHZ.md, docs/delegate.md): an embedded server
// for `up` (StartEmbedded) and a Client for the documented HTTP API of any
// OpenFGA server, embedded or a separate deployment.
//
// The Client speaks plain HTTP and JSON; the request and response bodies
// are the API's protobuf messages (github.com/openfga/api) encoded with
// protojson, so the tuples and Check requests built by
// internal/policy/openfga go over the wire unchanged. Every call has a
// timeout and goes through one circuit breaker, and any failure to reach
// the server is an apperr.Unavailable: the callers fail closed.
package fga

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/realguardio/realguardio/internal/platform/metrics"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/breaker"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

// DefaultStoreName is the name of RealGuardIO's store in OpenFGA.
const DefaultStoreName = "realguardio"

// pooledConnsPerHost is how many idle connections to the server the client
// keeps when the caller gives it no transport: a list page's parallel
// Reads times the service's concurrent requests, with room to spare.
const pooledConnsPerHost = 64

// Limits of a default OpenFGA server (OPENFGA_MAX_TUPLES_PER_WRITE,
// OPENFGA_MAX_CHECKS_PER_BATCH_CHECK); larger calls are split.
const (
	MaxTuplesPerWrite      = 100
	MaxChecksPerBatchCheck = 50
)

// EmbeddedMaxTuplesPerWrite is the embedded server's limit on the tuples
// of one Write (OpenFGA's default is MaxTuplesPerWrite). A batch of the
// authorization sync (500 events, a few tuples each) then goes to OpenFGA
// in one or two calls instead of ten or more, and each call is one SQLite
// transaction instead of one per hundred tuples. 1 000 keeps every
// statement OpenFGA builds for a Write (about ten bound values per tuple)
// far below SQLite's 32 766 bound values.
const EmbeddedMaxTuplesPerWrite = 1000

// Config configures a Client.
type Config struct {
	// URL is the base URL of the OpenFGA HTTP API, for example
	// "http://127.0.0.1:3005" (the embedded server of `up`) or the URL of
	// a separate deployment.
	URL string
	// StoreName is the store to find or create (DefaultStoreName when
	// empty).
	StoreName string
	// APIToken, when set, is sent as a bearer token: OpenFGA's
	// pre-shared-key authentication. It is never logged.
	APIToken string
	// Timeout bounds every call (2s when zero).
	Timeout time.Duration
	// BreakerFailures consecutive failures open the circuit breaker (5
	// when zero), for BreakerOpen (5s when zero); while it is open calls
	// fail at once instead of waiting for the timeout.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// BatchConcurrency bounds the BatchCheck calls made in parallel for one
	// large batch (4 when zero).
	BatchConcurrency int
	// MaxTuplesPerWrite is the server's limit on the tuples (writes and
	// deletes together) of one Write: OPENFGA_MAX_TUPLES_PER_WRITE of a
	// separate server, EmbeddedMaxTuplesPerWrite for the embedded one
	// (MaxTuplesPerWrite, OpenFGA's default, when zero). Larger Writes are
	// split into calls of at most this many tuples.
	MaxTuplesPerWrite int
}

// Client talks to an OpenFGA server over its HTTP API. It bootstraps the
// store and the model on first use (or explicitly with Bootstrap) and pins
// the model id it found or wrote, so every decision of one process is made
// under one model. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	hc      *http.Client
	breaker *breaker.Breaker
	calls   *prometheus.CounterVec

	mu      sync.Mutex
	storeID string
	modelID string
}

// New validates cfg and returns a client; it makes no call yet. httpClient
// carries the transport (nil means a default client); reg, when not nil,
// receives the call counters and the breaker state.
func New(cfg Config, httpClient *http.Client, reg prometheus.Registerer) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, apperr.InvalidField("openfga-url", "the OpenFGA URL must be an absolute http(s) URL")
	}
	if cfg.StoreName == "" {
		cfg.StoreName = DefaultStoreName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerOpen <= 0 {
		cfg.BreakerOpen = 5 * time.Second
	}
	if cfg.BatchConcurrency <= 0 {
		cfg.BatchConcurrency = 4
	}
	if cfg.MaxTuplesPerWrite <= 0 {
		cfg.MaxTuplesPerWrite = MaxTuplesPerWrite
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	if httpClient.Transport == nil {
		// A list page sends several Reads and a Check at once: keep
		// their connections open for the next request.
		httpClient.Transport = httpx.PooledTransport(pooledConnsPerHost)
	}
	// Checks made inside a request carry its trace to OpenFGA.
	httpClient = &http.Client{Transport: telemetry.Transport(httpClient.Transport), Timeout: httpClient.Timeout, Jar: httpClient.Jar, CheckRedirect: httpClient.CheckRedirect}
	c := &Client{cfg: cfg, base: u, hc: httpClient}
	c.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_openfga_calls_total",
		Help: "Calls to the OpenFGA HTTP API by operation and outcome (ok, error, unavailable).",
	}, []string{"op", "outcome"})
	// Only an unreachable or failing server counts: a 4xx answer proves
	// the server is up.
	if c.breaker, err = breaker.New("openfga", breaker.Policy{Failures: cfg.BreakerFailures, OpenFor: cfg.BreakerOpen}, breaker.Options{
		Display:    "the authorization server",
		Trips:      isUnavailable,
		Registerer: reg,
	}); err != nil {
		return nil, err
	}
	breakerState := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "realguardio_openfga_breaker_open",
		Help: "1 while the circuit breaker in front of OpenFGA is open or half-open, else 0 (realguardio_breaker_state{breaker=\"openfga\"} tells which).",
	}, func() float64 {
		if c.breaker.State() == breaker.Closed {
			return 0
		}
		return 1
	})
	if reg != nil {
		for _, col := range []prometheus.Collector{c.calls, breakerState} {
			if err := metrics.Replace(reg, col); err != nil {
				return nil, fmt.Errorf("fga: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// URL returns the configured base URL.
func (c *Client) URL() string { return c.base.String() }

// StoreID returns the store id Bootstrap found or created ("" before).
func (c *Client) StoreID() string { c.mu.Lock(); defer c.mu.Unlock(); return c.storeID }

// ModelID returns the pinned authorization model id ("" before Bootstrap).
func (c *Client) ModelID() string { c.mu.Lock(); defer c.mu.Unlock(); return c.modelID }

// Bootstrap makes the store and the model ready, idempotently: it finds
// the store by name or creates it, and writes the model of
// internal/policy/openfga unless the store's latest model is already the
// same. Several processes bootstrapping at once may each create a model
// version (OpenFGA keeps them all; equal versions decide alike), but a
// second store is avoided by looking it up again after creating. Calls
// after a success return at once.
func (c *Client) Bootstrap(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.modelID != "" {
		return nil
	}
	storeID, err := c.findStore(ctx)
	if err != nil {
		return err
	}
	if storeID == "" {
		var created openfgav1.CreateStoreResponse
		if err := c.call(ctx, "create_store", http.MethodPost, "/stores", &openfgav1.CreateStoreRequest{Name: c.cfg.StoreName}, &created); err != nil {
			return err
		}
		// Another process may have created one at the same time: the
		// oldest store of the name wins, so all of them agree.
		if storeID, err = c.findStore(ctx); err != nil {
			return err
		}
	}
	want, err := openfga.Model()
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "the authorization model does not compile")
	}
	var models openfgav1.ReadAuthorizationModelsResponse
	if err := c.call(ctx, "read_models", http.MethodGet, "/stores/"+storeID+"/authorization-models?page_size=1", nil, &models); err != nil {
		return err
	}
	modelID := ""
	if ms := models.GetAuthorizationModels(); len(ms) > 0 && sameModel(ms[0], want) {
		modelID = ms[0].GetId()
	} else {
		req, err := openfga.WriteModelRequest(storeID)
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "the authorization model does not compile")
		}
		var written openfgav1.WriteAuthorizationModelResponse
		if err := c.call(ctx, "write_model", http.MethodPost, "/stores/"+storeID+"/authorization-models", req, &written); err != nil {
			return err
		}
		modelID = written.GetAuthorizationModelId()
	}
	c.storeID, c.modelID = storeID, modelID
	return nil
}

// sameModel compares the parts of a model that decide: its schema, types
// and conditions (not the id).
func sameModel(a, b *openfgav1.AuthorizationModel) bool {
	x := &openfgav1.AuthorizationModel{SchemaVersion: a.GetSchemaVersion(), TypeDefinitions: a.GetTypeDefinitions(), Conditions: a.GetConditions()}
	y := &openfgav1.AuthorizationModel{SchemaVersion: b.GetSchemaVersion(), TypeDefinitions: b.GetTypeDefinitions(), Conditions: b.GetConditions()}
	return proto.Equal(x, y)
}

// findStore returns the id of the oldest store named StoreName, "" when
// there is none. The API lists stores oldest first.
func (c *Client) findStore(ctx context.Context) (string, error) {
	token := ""
	for {
		q := url.Values{"name": {c.cfg.StoreName}, "page_size": {"100"}}
		if token != "" {
			q.Set("continuation_token", token)
		}
		var resp openfgav1.ListStoresResponse
		if err := c.call(ctx, "list_stores", http.MethodGet, "/stores?"+q.Encode(), nil, &resp); err != nil {
			return "", err
		}
		for _, s := range resp.GetStores() {
			// The name filter is recent; older servers return every store.
			if s.GetName() == c.cfg.StoreName {
				return s.GetId(), nil
			}
		}
		if token = resp.GetContinuationToken(); token == "" {
			return "", nil
		}
	}
}

// ids bootstraps when needed and returns the store and model ids.
func (c *Client) ids(ctx context.Context) (string, string, error) {
	if err := c.Bootstrap(ctx); err != nil {
		return "", "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.storeID, c.modelID, nil
}

// Ready reports whether the store and model are bootstrapped and the
// server answers; it is a /readyz check.
func (c *Client) Ready(ctx context.Context) error {
	storeID, _, err := c.ids(ctx)
	if err != nil {
		return err
	}
	var resp openfgav1.GetStoreResponse
	return c.call(ctx, "get_store", http.MethodGet, "/stores/"+storeID, nil, &resp)
}

// Check asks whether req's user has req's relation on req's object. The
// store and model ids are filled in; req is not modified.
func (c *Client) Check(ctx context.Context, req *openfgav1.CheckRequest) (bool, error) {
	storeID, modelID, err := c.ids(ctx)
	if err != nil {
		return false, err
	}
	r := proto.Clone(req).(*openfgav1.CheckRequest)
	r.StoreId, r.AuthorizationModelId = "", modelID
	var resp openfgav1.CheckResponse
	if err := c.call(ctx, "check", http.MethodPost, "/stores/"+storeID+"/check", r, &resp); err != nil {
		return false, err
	}
	return resp.GetAllowed(), nil
}

// BatchCheck answers many checks with as few round trips as the server's
// limit allows (MaxChecksPerBatchCheck per call, up to BatchConcurrency
// calls in parallel); the result is in the order of reqs. A check the
// server could not evaluate fails the whole batch as Unavailable, since a
// partial answer cannot be used to decide.
func (c *Client) BatchCheck(ctx context.Context, reqs []*openfgav1.CheckRequest) ([]bool, error) {
	out := make([]bool, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	storeID, modelID, err := c.ids(ctx)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.BatchConcurrency)
	for start := 0; start < len(reqs); start += MaxChecksPerBatchCheck {
		part := reqs[start:min(start+MaxChecksPerBatchCheck, len(reqs))]
		g.Go(func() error {
			body := &openfgav1.BatchCheckRequest{AuthorizationModelId: modelID}
			for i, r := range part {
				body.Checks = append(body.Checks, &openfgav1.BatchCheckItem{
					TupleKey: r.GetTupleKey(), ContextualTuples: r.GetContextualTuples(),
					Context: r.GetContext(), CorrelationId: strconv.Itoa(start + i),
				})
			}
			var resp openfgav1.BatchCheckResponse
			if err := c.call(gctx, "batch_check", http.MethodPost, "/stores/"+storeID+"/batch-check", body, &resp); err != nil {
				return err
			}
			for i := range part {
				id := strconv.Itoa(start + i)
				res, ok := resp.GetResult()[id]
				if !ok || res.GetError() != nil {
					return apperr.New(apperr.Unavailable, "the authorization server could not evaluate a check")
				}
				out[start+i] = res.GetAllowed()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// ListObjects returns the objects ("type:id") of req's type on which req's
// user has req's relation, under req's context (for example
// current_time). OpenFGA caps the answer (1000 objects by default), so it suits small
// result sets; the delegate strategy's list uses BatchCheck instead.
func (c *Client) ListObjects(ctx context.Context, req *openfgav1.ListObjectsRequest) ([]string, error) {
	storeID, modelID, err := c.ids(ctx)
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*openfgav1.ListObjectsRequest)
	r.StoreId, r.AuthorizationModelId = "", modelID
	var resp openfgav1.ListObjectsResponse
	if err := c.call(ctx, "list_objects", http.MethodPost, "/stores/"+storeID+"/list-objects", r, &resp); err != nil {
		return nil, err
	}
	return resp.GetObjects(), nil
}

// Write writes and deletes tuples idempotently: writing a tuple that
// exists with the same condition and deleting one that does not exist are
// no-ops (the API's on_duplicate and on_missing "ignore"), so a replayed
// event changes nothing. Writing a tuple that exists with another
// condition fails: replace it by deleting and writing its key. Each call
// to OpenFGA carries up to Config.MaxTuplesPerWrite tuples, deletes first,
// so the common case is one call, which OpenFGA applies atomically; a
// larger set is split, a failure may then leave a prefix applied, and a
// retry of the same Write completes it. OpenFGA refuses a call naming a
// key twice, so when a key is both deleted and written (a replaced
// condition) the deletes go in calls of their own before the writes.
func (c *Client) Write(ctx context.Context, writes []*openfgav1.TupleKey, deletes []*openfgav1.TupleKeyWithoutCondition) error {
	storeID, modelID, err := c.ids(ctx)
	if err != nil {
		return err
	}
	if len(deletes) > 0 && len(writes) > 0 && replacesAKey(writes, deletes) {
		if err := c.Write(ctx, nil, deletes); err != nil {
			return err
		}
		deletes = nil
	}
	limit := c.cfg.MaxTuplesPerWrite
	for len(deletes)+len(writes) > 0 {
		body := &openfgav1.WriteRequest{AuthorizationModelId: modelID}
		n := min(len(deletes), limit)
		if n > 0 {
			body.Deletes = &openfgav1.WriteRequestDeletes{TupleKeys: deletes[:n], OnMissing: "ignore"}
			deletes = deletes[n:]
		}
		if m := min(len(writes), limit-n); m > 0 {
			body.Writes = &openfgav1.WriteRequestWrites{TupleKeys: writes[:m], OnDuplicate: "ignore"}
			writes = writes[m:]
		}
		var resp openfgav1.WriteResponse
		if err := c.call(ctx, "write", http.MethodPost, "/stores/"+storeID+"/write", body, &resp); err != nil {
			return err
		}
	}
	return nil
}

// replacesAKey reports whether a key of deletes is also written.
func replacesAKey(writes []*openfgav1.TupleKey, deletes []*openfgav1.TupleKeyWithoutCondition) bool {
	type key struct{ object, relation, user string }
	deleted := make(map[key]bool, len(deletes))
	for _, d := range deletes {
		deleted[key{d.GetObject(), d.GetRelation(), d.GetUser()}] = true
	}
	for _, w := range writes {
		if deleted[key{w.GetObject(), w.GetRelation(), w.GetUser()}] {
			return true
		}
	}
	return false
}

// WriteLimit returns how many tuples one call to OpenFGA's Write carries
// (Config.MaxTuplesPerWrite).
func (c *Client) WriteLimit() int { return c.cfg.MaxTuplesPerWrite }

// Read returns every stored tuple matching key (see the API's Read: the
// object may be "type:" to match every object of a type when the user is
// set), following continuation tokens.
func (c *Client) Read(ctx context.Context, key *openfgav1.ReadRequestTupleKey) ([]*openfgav1.Tuple, error) {
	var out []*openfgav1.Tuple
	err := c.ReadEach(ctx, key, func(t *openfgav1.Tuple) { out = append(out, t) })
	return out, err
}

// readPageSize is the largest page OpenFGA's Read serves (its default is
// 50): a million tuples are ten thousand calls.
const readPageSize = 100

// ReadEach calls fn with every stored tuple matching key, as Read, one
// page at a time, so a caller comparing a whole store never holds it.
func (c *Client) ReadEach(ctx context.Context, key *openfgav1.ReadRequestTupleKey, fn func(*openfgav1.Tuple)) error {
	storeID, _, err := c.ids(ctx)
	if err != nil {
		return err
	}
	token := ""
	for {
		body := &openfgav1.ReadRequest{TupleKey: key, ContinuationToken: token, PageSize: wrapperspb.Int32(readPageSize)}
		var resp openfgav1.ReadResponse
		if err := c.call(ctx, "read", http.MethodPost, "/stores/"+storeID+"/read", body, &resp); err != nil {
			return err
		}
		for _, t := range resp.GetTuples() {
			fn(t)
		}
		if token = resp.GetContinuationToken(); token == "" {
			return nil
		}
	}
}

var (
	marshal   = protojson.MarshalOptions{UseProtoNames: true}
	unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// unavailableError marks failures that mean "the server cannot answer
// now": transport errors, timeouts, 5xx, 429 and an open breaker. They
// trip the breaker and become apperr.Unavailable.
type unavailableError struct{ error }

func (e unavailableError) Unwrap() error { return e.error }

func isUnavailable(err error) bool {
	var u unavailableError
	return errors.As(err, &u)
}

// apiError is the body of an OpenFGA error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("OpenFGA answered %d %s: %s", e.status, e.code, e.message)
}

// call sends one request through the breaker with the timeout and decodes
// the answer into out. Errors are *apperr.Error: Unavailable when the
// server could not answer, Internal when it refused the request (a bug on
// our side, logged with the server's message as the cause).
func (c *Client) call(ctx context.Context, op, method, path string, in proto.Message, out proto.Message) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = marshal.Marshal(in); err != nil {
			return apperr.Wrap(err, apperr.Internal, "encode an OpenFGA request")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var resp *http.Response
	err := c.breaker.Do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.send(ctx, method, path, body)
		return err
	})
	if err != nil {
		outcome := "error"
		if isUnavailable(err) || breaker.IsRefused(err) {
			outcome = "unavailable"
		}
		c.calls.WithLabelValues(op, outcome).Inc()
		if outcome == "unavailable" {
			return apperr.Wrap(fmt.Errorf("openfga %s: %w", op, err), apperr.Unavailable, "the authorization server is unavailable")
		}
		return apperr.Wrap(fmt.Errorf("openfga %s: %w", op, err), apperr.Internal, "the authorization server refused a request")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		c.calls.WithLabelValues(op, "unavailable").Inc()
		return apperr.Wrap(fmt.Errorf("openfga %s: read answer: %w", op, err), apperr.Unavailable, "the authorization server is unavailable")
	}
	if err := unmarshal.Unmarshal(b, out); err != nil {
		c.calls.WithLabelValues(op, "error").Inc()
		return apperr.Wrap(fmt.Errorf("openfga %s: decode answer: %w", op, err), apperr.Internal, "the authorization server sent an unexpected answer")
	}
	c.calls.WithLabelValues(op, "ok").Inc()
	return nil
}

// send makes one HTTP request; a failure the server is responsible for is
// an unavailableError.
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base.String(), "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIToken)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unavailableError{err}
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := &apiError{status: resp.StatusCode, message: strings.TrimSpace(string(b))}
		var decoded struct{ Code, Message string }
		if jerr := json.Unmarshal(b, &decoded); jerr == nil && decoded.Code != "" {
			ae.code, ae.message = decoded.Code, decoded.Message
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, unavailableError{ae}
		}
		return nil, ae
	}
	return resp, nil
}

// IsConflict reports whether err is OpenFGA refusing a write because a
// tuple of the same key exists with another condition (or another write
// conflict): the caller replaces the tuple by a delete and a write.
func IsConflict(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.status == http.StatusConflict || ae.code == "write_failed_due_to_invalid_input" ||
		strings.Contains(ae.message, "already exists") || strings.Contains(ae.message, "condition")
}
