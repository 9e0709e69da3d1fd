package systemtest

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/system"
)

// tracedSystem starts a system whose every service exports to one
// in-memory exporter, loads the fixed world and returns it with a tracer
// of the test's own "client" service on the same exporter.
func tracedSystem(t *testing.T, strategy string) (*Loaded, *tracetest.InMemoryExporter, trace.Tracer) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	s := Start(t, Options{Strategy: strategy, SpanExporter: exp})
	l, err := LoadWorld(context.Background(), s, policytest.FixedWorld(), LoadOptions{BootstrapAdmin: true})
	must(t, err)
	s.MustConverge()
	client := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("systemtest-client"))))
	t.Cleanup(func() { _ = client.Shutdown(context.Background()) })
	return l, exp, client.Tracer("systemtest")
}

// spansOf returns the exported spans of trace id.
func spansOf(exp *tracetest.InMemoryExporter, id trace.TraceID) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// waitSpan waits (bounded) until a span of trace id matches ok.
func waitSpan(t *testing.T, exp *tracetest.InMemoryExporter, id trace.TraceID, what string, ok func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var found tracetest.SpanStub
	err := poll(ctx, func() bool {
		for _, s := range spansOf(exp, id) {
			if ok(s) {
				found = s
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no span %s in trace %s within 30s; the trace has:\n%s", what, id, describeSpans(spansOf(exp, id)))
	}
	return found
}

func describeSpans(spans tracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("  " + serviceOf(s) + ": " + s.Name + " (parent " + s.Parent.SpanID().String() + ", span " + s.SpanContext.SpanID().String() + ")\n")
	}
	return b.String()
}

// checkConnected fails when a span of the trace names a parent that is not
// in the trace (other than the root): every hop propagated the context.
func checkConnected(t *testing.T, spans tracetest.SpanStubs, root trace.SpanID) {
	t.Helper()
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	for _, s := range spans {
		if s.SpanContext.SpanID() != root && !ids[s.Parent.SpanID()] {
			t.Errorf("span %s of %s has a parent outside the trace; the trace:\n%s", s.Name, serviceOf(s), describeSpans(spans))
		}
	}
}

// checkNoSecrets fails when any span attribute, event attribute or name
// holds a token (a JWT), a password or a cookie.
func checkNoSecrets(t *testing.T, exp *tracetest.InMemoryExporter, secrets ...string) {
	t.Helper()
	check := func(where, v string) {
		if strings.Contains(v, "eyJ") || strings.Contains(strings.ToLower(v), "bearer ") {
			t.Errorf("%s holds a token: %.80s", where, v)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(v, s) {
				t.Errorf("%s holds a secret", where)
			}
		}
	}
	checkKV := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			if k := strings.ToLower(string(kv.Key)); strings.Contains(k, "cookie") || strings.Contains(k, "authorization") {
				t.Errorf("%s has attribute %s", where, kv.Key)
			}
			check(where+" attribute "+string(kv.Key), kv.Value.String())
		}
	}
	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no spans exported")
	}
	for _, s := range spans {
		where := serviceOf(s) + " span " + s.Name
		check(where+" name", s.Name)
		checkKV(where, s.Attributes)
		for _, e := range s.Events {
			checkKV(where+" event "+e.Name, e.Attributes)
		}
		for _, l := range s.Links {
			checkKV(where+" link", l.Attributes)
		}
	}
}

// TestTraceOfADisarmUnderFetch checks that one disarm under the fetch
// strategy is one trace: the client's span, the Security System Service's
// request and decision, and the Customer Service's answer to the facts
// call, connected parent to child; and that no span holds a credential.
func TestTraceOfADisarmUnderFetch(t *testing.T) {
	l, exp, tracer := tracedSystem(t, "fetch")
	id := policytest.FixedID
	alice := l.Users[id("alice")]
	alice.Client = l.Sys.Client(l.Sys.MustLogin(alice.Username, alice.Password))
	token, err := alice.Client.Session().AccessToken(context.Background())
	must(t, err)

	ctx, span := tracer.Start(context.Background(), "disarm")
	alice.Client.Act(ctx, policy.OpDisarm, l.Real(id("ss1"))).Want(t, 200)
	span.End()
	tid := span.SpanContext().TraceID()

	server := waitSpan(t, exp, tid, "PUT /securitysystems/{id} of the Security System Service", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.Name == "PUT /securitysystems/{id}" && s.SpanKind == trace.SpanKindServer
	})
	if got := attr(server, "http.route"); got != "PUT /securitysystems/{id}" {
		t.Errorf("http.route = %q", got)
	}
	decision := waitSpan(t, exp, tid, "authz disarm", func(s tracetest.SpanStub) bool { return s.Name == "authz disarm" })
	for k, want := range map[string]string{
		"realguardio.authz.strategy":     "fetch",
		"realguardio.authz.operation":    "disarm",
		"realguardio.authz.outcome":      "allowed",
		"realguardio.authz.reason":       "none",
		"realguardio.authz.facts_source": "owner_call",
	} {
		if got := attr(decision, k); got != want {
			t.Errorf("decision span %s = %q, want %q", k, got, want)
		}
	}
	waitSpan(t, exp, tid, "a server span of the Customer Service", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-customer" && s.SpanKind == trace.SpanKindServer && strings.HasPrefix(s.Name, "GET /authz/")
	})
	waitSpan(t, exp, tid, "a database transaction of the Security System Service", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.Name == "db transaction"
	})
	checkConnected(t, spansOf(exp, tid), span.SpanContext().SpanID())
	checkNoSecrets(t, exp, token, alice.Password, l.Sys.AdminPassword)
	checkRouteLabel(t, l.Sys, "securitysystem", "PUT /securitysystems/{id}")
	checkRouteLabel(t, l.Sys, "customer", "GET /authz/subjects/{userId}")
	checkMetricsDocumented(t, l.Sys)
}

// TestTraceOfARevocation checks that a location-role revocation is one
// trace from the Customer Service's request through its outbox wait and
// publish to the replica's apply in the Security System Service, the apply
// linked to the publish.
func TestTraceOfARevocation(t *testing.T) {
	l, exp, tracer := tracedSystem(t, "replicate")
	id := policytest.FixedID
	ctx, span := tracer.Start(context.Background(), "revoke mary at loc3")
	must(t, l.Apply(ctx, policytest.Change{Kind: policytest.ChangeEmployeeLocationRoles, CustomerID: id("acme"), LocationID: id("loc3"), UserID: id("mary"), Roles: []string{}}))
	span.End()
	tid := span.SpanContext().TraceID()

	waitSpan(t, exp, tid, "the Customer Service's request", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-customer" && s.SpanKind == trace.SpanKindServer &&
			s.Name == "PUT /customers/{customerId}/locations/{locationId}/employee-roles/{employeeId}"
	})
	waitSpan(t, exp, tid, "outbox wait", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-customer" && s.Name == "outbox wait"
	})
	publish := waitSpan(t, exp, tid, "publish", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-customer" && strings.HasPrefix(s.Name, "publish customer.") && s.SpanKind == trace.SpanKindProducer
	})
	apply := waitSpan(t, exp, tid, "the replica's apply", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.SpanKind == trace.SpanKindConsumer &&
			attr(s, "messaging.consumer.group.name") == "securitysystem-replica" && strings.HasPrefix(s.Name, "apply customer.")
	})
	if apply.Parent.SpanID() != publish.SpanContext.SpanID() {
		t.Errorf("apply's parent is %s, want the publish span %s", apply.Parent.SpanID(), publish.SpanContext.SpanID())
	}
	linked := false
	for _, lk := range apply.Links {
		linked = linked || lk.SpanContext.SpanID() == publish.SpanContext.SpanID()
	}
	if !linked {
		t.Errorf("apply span has no link to the publish span")
	}
	waitSpan(t, exp, tid, "the replica's transaction", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.Name == "db transaction" && s.Parent.SpanID() == apply.SpanContext.SpanID()
	})
	checkConnected(t, spansOf(exp, tid), span.SpanContext().SpanID())
	checkNoSecrets(t, exp, l.Sys.AdminPassword)
	checkRouteLabel(t, l.Sys, "customer", "PUT /customers/{customerId}/locations/{locationId}/employee-roles/{employeeId}")
	checkMetricsDocumented(t, l.Sys)
}

// csrfMeta is the dashboard's anti-forgery token, which the BFF's page
// script echoes in X-CSRF-Token on state-changing calls.
var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// TestTraceOfADisarmThroughTheBFF checks that a disarm a browser makes
// through the BFF under the fetch strategy is one trace: the BFF's server
// span is the root (a browser sends no trace context), its client span
// calls the Security System Service, whose request span holds the decision
// and the Customer Service's answer to the facts call. The login is a real
// OIDC login through the BFF (/login, the IAM's form, /auth/callback) with
// a cookie jar, and the disarm honours the BFF's CSRF check. No span holds
// the password, a token or a cookie.
func TestTraceOfADisarmThroughTheBFF(t *testing.T) {
	l, exp, _ := tracedSystem(t, "fetch")
	id := policytest.FixedID
	alice := l.Users[id("alice")]
	bffURL := l.Sys.URL(system.ServiceBFF)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	jar, err := cookiejar.New(nil)
	must(t, err)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page, err := apiclient.SubmitLoginForm(ctx, browser, bffURL+"/login", alice.Username, alice.Password)
	must(t, err)
	if page.Status != http.StatusOK || !strings.HasPrefix(page.URL, bffURL+"/") {
		t.Fatalf("login through the BFF ended at %d %s: %s", page.Status, page.URL, page.Snippet)
	}
	get := func(path string) string {
		req, err := http.NewRequestWithContext(ctx, "GET", bffURL+path, nil)
		must(t, err)
		resp, err := browser.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, apiclient.Snippet(body))
		}
		return string(body)
	}
	m := csrfMeta.FindStringSubmatch(get("/"))
	if m == nil {
		t.Fatal("the dashboard carries no csrf-token")
	}
	csrf := html.UnescapeString(m[1])

	ss := l.Real(id("ss1"))
	disarm := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, "PUT", bffURL+"/api/securitysystems/"+url.PathEscape(ss), strings.NewReader(`{"action":"DISARM"}`))
		must(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", bffURL)
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := browser.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, apiclient.Snippet(body)
	}
	// The CSRF check is in force: without the token the BFF refuses.
	if code, body := disarm(""); code != http.StatusForbidden {
		t.Fatalf("disarm without X-CSRF-Token: %d %s, want 403", code, body)
	}
	if code, body := disarm(csrf); code != http.StatusOK {
		t.Fatalf("disarm through the BFF: %d %s", code, body)
	}

	// The browser sent no trace context: the BFF's server span of the
	// accepted disarm roots the trace.
	var bffServer tracetest.SpanStub
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	if err := poll(waitCtx, func() bool {
		for _, s := range exp.GetSpans() {
			if serviceOf(s) == "realguardio-bff" && s.SpanKind == trace.SpanKindServer && attr(s, "http.request.method") == "PUT" &&
				attr(s, "url.path") == "/api/securitysystems/"+ss && attr(s, "http.response.status_code") == "200" {
				bffServer = s
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal("no server span of the BFF for the accepted PUT /api/securitysystems/{id}")
	}
	tid := bffServer.SpanContext.TraceID()
	if bffServer.Parent.IsValid() {
		t.Errorf("the BFF's server span has a parent %s, want none (a browser sends no trace context)", bffServer.Parent.SpanID())
	}
	server := waitSpan(t, exp, tid, "PUT /securitysystems/{id} of the Security System Service", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.Name == "PUT /securitysystems/{id}" && s.SpanKind == trace.SpanKindServer
	})
	spans := spansOf(exp, tid)
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	client, ok := byID[server.Parent.SpanID()]
	if !ok || serviceOf(client) != "realguardio-bff" || client.SpanKind != trace.SpanKindClient {
		t.Fatalf("the Security System Service's span is not the child of a client span of the BFF; the trace:\n%s", describeSpans(spans))
	}
	// The client span descends from the BFF's server span.
	for p := client.Parent.SpanID(); p != bffServer.SpanContext.SpanID(); {
		s, ok := byID[p]
		if !ok {
			t.Fatalf("the BFF's client span does not descend from its server span; the trace:\n%s", describeSpans(spans))
		}
		p = s.Parent.SpanID()
	}
	waitSpan(t, exp, tid, "authz disarm allowed under fetch", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-securitysystem" && s.Name == "authz disarm" &&
			attr(s, "realguardio.authz.strategy") == "fetch" && attr(s, "realguardio.authz.outcome") == "allowed"
	})
	waitSpan(t, exp, tid, "a server span of the Customer Service", func(s tracetest.SpanStub) bool {
		return serviceOf(s) == "realguardio-customer" && s.SpanKind == trace.SpanKindServer && strings.HasPrefix(s.Name, "GET /authz/")
	})
	checkConnected(t, spansOf(exp, tid), bffServer.SpanContext.SpanID())

	secrets := []string{alice.Password, l.Sys.AdminPassword, csrf}
	u, err := url.Parse(bffURL)
	must(t, err)
	for _, c := range jar.Cookies(u) {
		secrets = append(secrets, c.Value)
	}
	checkNoSecrets(t, exp, secrets...)
}
