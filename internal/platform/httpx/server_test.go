package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// errLeaky is a connection error as the PostgreSQL driver words it: host,
// user and database in the text.
var errLeaky = fmt.Errorf("failed to connect to `user=secretuser database=secretdb`: 10.1.2.3:5432 (db.internal): %w",
	&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})

func readyz(t *testing.T, checks ...httpx.ReadyCheck) (int, map[string]any, string) {
	t.Helper()
	ops := &httpx.Ops{Service: "test", Ready: checks}
	rec := httptest.NewRecorder()
	ops.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	return rec.Code, body, rec.Body.String()
}

func failing(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

func TestReadyzNamesEachDependencyAndLeaksNothing(t *testing.T) {
	code, body, raw := readyz(t,
		httpx.ReadyCheck{Name: "database", Check: failing(errLeaky)},
		httpx.ReadyCheck{Name: "nats", Check: failing(errors.New("not connected to NATS"))},
		httpx.ReadyCheck{Name: "openfga", Check: failing(apperr.New(apperr.Unavailable, "the authorization server is unavailable"))},
		httpx.ReadyCheck{Name: "secret", Check: failing(apperr.Wrap(errLeaky, apperr.Internal, "internal db.internal"))},
		httpx.ReadyCheck{Name: "pg", Check: failing(&pgconn.ConnectError{Config: &pgconn.Config{Host: "db.internal", User: "secretuser", Database: "secretdb"}})},
		httpx.ReadyCheck{Name: "events", Check: failing(nil)},
	)
	if code != http.StatusServiceUnavailable || body["status"] != "not ready" {
		t.Fatalf("readyz = %d %v, want 503 not ready", code, body["status"])
	}
	for _, secret := range []string{"secretuser", "secretdb", "10.1.2.3", "db.internal", "5432"} {
		if strings.Contains(raw, secret) {
			t.Errorf("/readyz shows %q: %s", secret, raw)
		}
	}
	checks := body["checks"].(map[string]any)
	want := map[string]string{
		"database": "the database is unavailable",
		"nats":     "not connected to NATS",
		"openfga":  "the authorization server is unavailable",
		"secret":   "the database is unavailable",
		"pg":       "the database is unavailable",
		"events":   "ok",
	}
	for name, w := range want {
		if checks[name] != w {
			t.Errorf("check %s = %v, want %q", name, checks[name], w)
		}
	}
}

func TestReadyzOptionalDependencyDegrades(t *testing.T) {
	code, body, _ := readyz(t,
		httpx.ReadyCheck{Name: "database", Check: failing(nil)},
		httpx.ReadyCheck{Name: "iam", Check: failing(apperr.New(apperr.Unavailable, "the IAM Service is unreachable")), Optional: true},
	)
	if code != http.StatusOK || body["status"] != "degraded" {
		t.Fatalf("readyz = %d %v, want 200 degraded", code, body["status"])
	}
	if got := body["checks"].(map[string]any)["iam"]; got != "the IAM Service is unreachable" {
		t.Fatalf("iam check = %v", got)
	}
}

func TestReachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	ctx := context.Background()
	if err := httpx.Reachable("the IAM Service", srv.URL+"/ok", nil)(ctx); err != nil {
		t.Fatalf("reachable server: %v", err)
	}
	if err := httpx.Reachable("the IAM Service", srv.URL+"/broken", nil)(ctx); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("5xx: %v, want Unavailable", err)
	}
	srv.Close()
	err := httpx.Reachable("the IAM Service", srv.URL+"/ok", nil)(ctx)
	if !apperr.Is(err, apperr.Unavailable) || apperr.As(err).Message != "the IAM Service is unreachable" {
		t.Fatalf("closed server: %v, want Unavailable naming the IAM", err)
	}
}

// TestDatabaseOutageIs503: a connection error that reaches WriteError as a
// plain error, or wrapped as Internal, is a 503 naming the database and
// nothing else.
func TestDatabaseOutageIs503(t *testing.T) {
	for _, err := range []error{errLeaky, fmt.Errorf("list systems: %w", errLeaky), apperr.Wrap(errLeaky, apperr.Internal, "query")} {
		p := httpx.ProblemOf(err)
		if p.Status != http.StatusServiceUnavailable || p.Detail != "the database is unavailable" {
			t.Errorf("ProblemOf(%v) = %d %q, want 503 the database is unavailable", err, p.Status, p.Detail)
		}
	}
	if p := httpx.ProblemOf(errors.New("a bug")); p.Status != http.StatusInternalServerError {
		t.Errorf("a plain bug = %d, want 500", p.Status)
	}
}
