package openapitest

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// undocumented are the routes a service serves outside its public
// contract, so that its OpenAPI file rightly leaves them out. Each says
// why; a route here that the service no longer registers fails the test,
// so the list cannot go stale.
var undocumented = map[string]map[string]string{
	"*": {
		"GET /healthz": "operational (httpx.Ops): liveness for orchestrators, docs/operations.md",
		"GET /readyz":  "operational (httpx.Ops): readiness for load balancers, docs/operations.md",
		"GET /metrics": "operational (httpx.Ops): Prometheus scrape, docs/observability.md",
		"/":            "a router's catch-all: Ops hands every other path to the API, whose own catch-all answers 404 (problem+json, or the BFF's not-found page)",
	},
	"iam": {
		"/api/": "answers 404 problem+json for an unknown path under the users API, instead of the OpenID Provider's answer",
	},
	"bff": {
		"GET /static/":     "the pages' embedded assets (CSS, scripts, icons), not an interface",
		"GET /favicon.ico": "redirects browsers that ask for it to the icon under /static/",
	},
}

// delegated are subtree patterns whose handler routes the documented
// operations itself, so that no pattern per operation is registered. The
// test asks each operation of the running service at its probe path, and
// fails when the answer says there is no such route (404, 405); any other
// answer (400 for missing parameters, 401 without a token) comes from the
// route.
var delegated = map[string]map[string][]probe{
	"iam": {
		// The OpenID Provider (zitadel/oidc's op) has its own router.
		"/": {
			{"GET /.well-known/openid-configuration", ""}, {"GET /authorize", ""}, {"GET /keys", ""},
			{"GET /userinfo", ""}, {"GET /end_session", ""},
			{"POST /oauth/token", ""}, {"POST /oauth/revoke", ""}, {"POST /oauth/introspect", ""},
		},
	},
	"bff": {
		// The forwarding to the backend services: {path} is one of theirs.
		"/api/": {
			{"GET /api/{path}", "/api/securitysystems"}, {"PUT /api/{path}", "/api/profiles"},
			{"POST /api/{path}", "/api/customers"}, {"DELETE /api/{path}", "/api/dealers/x/employees/y"},
		},
	},
}

// probe is a documented operation and the path it is asked at; an empty
// path is the operation's own.
type probe struct{ op, path string }

// TestRoutesMatchOpenAPI: every route a service registers is an operation
// of api/<service>.yaml (or listed in undocumented with its reason), and
// every operation of the file is registered.
func TestRoutesMatchOpenAPI(t *testing.T) {
	// The delegate strategy runs every service, the authorization sync
	// included.
	sys := systemtest.Start(t, systemtest.Options{Strategy: "delegate"})
	for _, name := range sys.Services() {
		t.Run(name, func(t *testing.T) {
			served := httpx.RegisteredRoutes(name)
			if len(served) == 0 {
				t.Fatalf("%s registered no route through httpx.Mux; does it still build its router with httpx.NewMux(%q)?", name, name)
			}
			documented := operations(t, filepath.Join("..", "..", "api", name+".yaml"))
			compare(t, name, served, documented)
			probeDelegated(t, sys.URL(name), name, documented)
		})
	}
	if got := sys.Services(); !slices.Contains(got, system.ServiceAuthzSync) {
		t.Errorf("services %v: the delegate strategy should run the authorization sync", got)
	}
}

// compare reports the differences between the served patterns and the
// documented operations of one service.
func compare(t *testing.T, service string, served, documented []string) {
	t.Helper()
	exempt := func(p string) (string, bool) {
		if why, ok := undocumented[service][p]; ok {
			return why, true
		}
		why, ok := undocumented["*"][p]
		return why, ok
	}
	var byDelegate []string
	for subtree, ops := range delegated[service] {
		if !slices.Contains(served, subtree) {
			t.Errorf("delegated lists %q for %s, which it no longer registers", subtree, service)
		}
		for _, pr := range ops {
			byDelegate = append(byDelegate, pr.op)
		}
	}
	for _, p := range served {
		// "GET /{$}" is "GET /" and nothing below it, the OpenAPI "/".
		if slices.Contains(documented, strings.TrimSuffix(p, "{$}")) || delegated[service][p] != nil {
			continue
		}
		if _, ok := exempt(p); ok {
			continue
		}
		t.Errorf("%s serves %q, which api/%s.yaml does not document (document it, or list it in undocumented with the reason)", service, p, service)
	}
	for _, op := range documented {
		if !slices.Contains(served, op) && !slices.Contains(served, op+"{$}") && !slices.Contains(byDelegate, op) {
			t.Errorf("api/%s.yaml documents %q, which %s does not register", service, op, service)
		}
	}
	for p := range undocumented[service] {
		if !slices.Contains(served, p) {
			t.Errorf("undocumented lists %q for %s, which it no longer registers; remove it", p, service)
		}
	}
}

// probeDelegated asks the running service every operation of its
// delegated subtrees, and fails on an answer that says the route does not
// exist.
func probeDelegated(t *testing.T, base, service string, documented []string) {
	t.Helper()
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, ops := range delegated[service] {
		for _, pr := range ops {
			op := pr.op
			if !slices.Contains(documented, op) {
				t.Errorf("delegated lists %q for %s, which api/%s.yaml does not document", op, service, service)
				continue
			}
			method, path, _ := strings.Cut(op, " ")
			if pr.path != "" {
				path = pr.path
			}
			if strings.Contains(path, "{") {
				t.Fatalf("delegated: %q needs a probe path", op)
			}
			req, err := http.NewRequest(method, base+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s answers %s %s with %d: api/%s.yaml documents %q, which it does not serve", service, method, path, resp.StatusCode, service, op)
			}
		}
	}
}

// methods are the OpenAPI operation keys of a path item; its other keys
// (parameters, summary, ...) are not operations.
var methods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// operations returns the operations of an OpenAPI file as Go 1.22
// patterns ("PUT /securitysystems/{id}"), the form httpx.Mux records.
func operations(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(doc.Paths) == 0 {
		t.Fatalf("%s: no paths", path)
	}
	var out []string
	for p, item := range doc.Paths {
		for key := range item {
			if slices.Contains(methods, key) {
				out = append(out, strings.ToUpper(key)+" "+p)
			}
		}
	}
	slices.Sort(out)
	return out
}
