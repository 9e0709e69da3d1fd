package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// A refusal comes back as an *Error with the status and the problem, and
// apperr sees the code through it.
func TestErrorCarriesProblem(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization %q", got)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Forbidden","status":403,"detail":"not allowed","reason":"no_role"}`))
	}))
	defer srv.Close()
	c := New(Endpoints{SecuritySystem: srv.URL}, StaticToken("tok"), srv.Client())
	var seen *Response
	ctx := WithExchange(context.Background(), func(r *Response) { seen = r })
	_, err := c.Disarm(ctx, "x")
	var e *Error
	if !errors.As(err, &e) || e.Status() != http.StatusForbidden || e.Reason() != "no_role" {
		t.Fatalf("err = %v, want a 403 *Error with reason no_role", err)
	}
	if !apperr.Is(err, apperr.Forbidden) || apperr.As(err).Reason != "no_role" {
		t.Errorf("apperr does not see Forbidden/no_role through %v", err)
	}
	if seen == nil || seen.Status != http.StatusForbidden || seen.Method != "PUT" {
		t.Errorf("exchange hook saw %v", seen)
	}
	if !strings.Contains(err.Error(), "not allowed") || StatusOf(err) != 403 {
		t.Errorf("message %q, status %d", err, StatusOf(err))
	}
}

// RetryUnknownReference retries only the 422 that names an unknown
// reference, and returns any other answer at once.
func TestRetryUnknownReference(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		switch {
		case r.URL.Path == "/customers/c/locations" && n < 3:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"status":422,"detail":"dealerId: no dealer d is known","field":"dealerId"}`))
		case r.URL.Path == "/customers/c/locations":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"l","name":"HQ","dealerId":"d"}`))
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"status":422,"detail":"name: must not be empty","field":"name"}`))
		}
	}))
	defer srv.Close()
	c := New(Endpoints{Customer: srv.URL}, nil, srv.Client())
	ctx := context.Background()
	var loc Location
	err := RetryUnknownReference(ctx, func(ctx context.Context) (err error) {
		loc, err = c.CreateLocation(ctx, "c", "HQ", "d")
		return err
	})
	if err != nil || loc.ID != "l" || calls.Load() != 3 {
		t.Fatalf("location %+v, err %v after %d calls", loc, err, calls.Load())
	}
	calls.Store(0)
	err = RetryUnknownReference(ctx, func(ctx context.Context) error {
		_, err := c.CreateTeam(ctx, "c", "")
		return err
	})
	if !apperr.Is(err, apperr.Invalid) || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls, want one Invalid", err, calls.Load())
	}
}

// The login form is found by its password input and keeps its hidden
// fields; the action is resolved against the page.
func TestParseLoginForm(t *testing.T) {
	page := `<html><body><form method="get" action="/search"><input name="q"></form>
<form method="POST" action="login?x=1"><input type="hidden" name="authRequestID" value="abc">
<input name="username"><input type="password" name="password"><button type="submit">Log in</button></form></body></html>`
	base, _ := url.Parse("http://iam.example/authorize?client_id=c")
	f, err := parseForm([]byte(page), base, "password")
	if err != nil {
		t.Fatal(err)
	}
	if f.action != "http://iam.example/login?x=1" || f.values.Get("authRequestID") != "abc" || !f.values.Has("password") || f.values.Has("q") {
		t.Errorf("form %+v", f)
	}
	// The change-password step is found by its own field, and is not a
	// login form.
	change := `<form method="post" action="/login/password"><input type="hidden" name="csrf" value="t">
<input type="password" name="new_password"><input type="password" name="confirm_password"></form>`
	if _, err := parseForm([]byte(change), base, "password"); err == nil {
		t.Error("the change-password form was taken for a login form")
	}
	f, err = parseForm([]byte(change), base, "new_password")
	if err != nil || f.action != "http://iam.example/login/password" || !f.has("confirm_password") || f.values.Get("csrf") != "t" {
		t.Errorf("change form %+v, %v", f, err)
	}
}

// ListSecuritySystems follows nextCursor through every page, with the
// largest page size; ListSecuritySystemsPage sends the filters.
func TestListSecuritySystemsPages(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") == "" {
			_, _ = w.Write([]byte(`{"securitySystems":[{"id":"a"},{"id":"b"}],"nextCursor":"c1"}`))
			return
		}
		_, _ = w.Write([]byte(`{"securitySystems":[{"id":"c"}],"nextCursor":null}`))
	}))
	defer srv.Close()
	c := New(Endpoints{SecuritySystem: srv.URL}, StaticToken("tok"), srv.Client())
	all, err := c.ListSecuritySystems(context.Background())
	if err != nil || len(all) != 3 || all[2].ID != "c" {
		t.Fatalf("all = %+v, %v", all, err)
	}
	if len(queries) != 2 || queries[0] != "limit=500" || queries[1] != "cursor=c1&limit=500" {
		t.Errorf("queries = %q", queries)
	}
	queries = nil
	page, err := c.ListSecuritySystemsPage(context.Background(), ListOptions{Limit: 2, State: "ARMED", Q: "front door", LocationID: "l"})
	if err != nil || page.NextCursor != "c1" || len(page.SecuritySystems) != 2 {
		t.Fatalf("page = %+v, %v", page, err)
	}
	if want, _ := url.ParseQuery("limit=2&state=ARMED&q=front+door&locationId=l"); queries[0] != want.Encode() {
		t.Errorf("query %q, want %q", queries[0], want.Encode())
	}
}
