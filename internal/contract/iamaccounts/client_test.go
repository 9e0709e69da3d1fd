package iamaccounts

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// fakeIAM answers like the IAM Service does, so the error mapping is
// tested without the real server (the service tests cover the real one).
func fakeIAM(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"token_endpoint": srv.URL + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "svc" || secret != "s3cret" || r.FormValue("scope") != ScopeUsersWrite {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":300}`))
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestCreateUserMapsAnswers(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		status int
		body   string
		want   apperr.Code
	}{
		{"created", 201, `{"id":"u1","username":"a@b.c","roles":["CUSTOMER_EMPLOYEE"],"enabled":true}`, ""},
		{"replayed", 200, `{"id":"u1","username":"a@b.c","roles":[],"enabled":true}`, ""},
		{"conflict", 409, `{"detail":"username exists"}`, apperr.Conflict},
		{"invalid", 422, `{"detail":"password: too short","field":"password"}`, apperr.Invalid},
		{"malformed", 400, `{"detail":"bad"}`, apperr.Invalid},
		{"server error", 500, `{}`, apperr.Unavailable},
		{"unavailable", 503, `{}`, apperr.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeIAM(t, tc.status, tc.body)
			c := New(srv.URL, "svc", "s3cret", nil)
			u, err := c.CreateUser(ctx, CreateUserRequest{Username: "a@b.c", Password: "longenough"})
			if got := apperr.CodeOf(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			if tc.want == "" && u.ID != "u1" {
				t.Fatalf("user = %+v", u)
			}
			if tc.want == apperr.Invalid && tc.status == 422 && apperr.As(err).Field != "password" {
				t.Fatalf("field = %q", apperr.As(err).Field)
			}
		})
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := New(url, "svc", "s3cret", nil).DisableUser(context.Background(), "x")
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestWrongCredentialsIsUnavailable(t *testing.T) {
	srv := fakeIAM(t, 204, "")
	err := New(srv.URL, "svc", "wrong", nil).DisableUser(context.Background(), "x")
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if err := New(srv.URL, "svc", "s3cret", nil).DisableUser(context.Background(), "x"); err != nil {
		t.Fatalf("disable: %v", err)
	}
}
