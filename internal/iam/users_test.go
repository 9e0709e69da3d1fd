package iam

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/iam/iamclient"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
)

func call(t *testing.T, method, u, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readBody(t, resp)
	var m map[string]any
	_ = json.Unmarshal([]byte(b), &m)
	return resp.StatusCode, m
}

func TestUsersAPI(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	tokenURL := e.issuer + "/oauth/token"
	svc, err := (&clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: testSvcSecret, TokenURL: tokenURL, Scopes: []string{ScopeUsersWrite}}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	noScope, err := (&clientcredentials.Config{ClientID: AudienceSecuritySystem, ClientSecret: testSvcSecret, TokenURL: tokenURL}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.bffConfig()
	code, verifier := e.loginCode(t, cfg, AdminUsername, testAdminPW)
	admin, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	e.createUser(t, "plain", "plain-password", auth.RoleCustomerEmployee)
	code, verifier = e.loginCode(t, cfg, "plain", "plain-password")
	plain, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	users := e.issuer + "/api/users"

	t.Run("201", func(t *testing.T) {
		st, body := call(t, "POST", users, svc.AccessToken, map[string]any{"username": "new@example.com", "password": "long-enough", "roles": []string{auth.RoleCustomerEmployee}})
		if st != http.StatusCreated || body["username"] != "new@example.com" || body["enabled"] != true || uuid.Validate(body["id"].(string)) != nil {
			t.Fatalf("%d %v", st, body)
		}
		st, body = call(t, "POST", users, admin.AccessToken, map[string]any{"username": "by-admin", "password": "long-enough", "roles": []string{}})
		if st != http.StatusCreated {
			t.Fatalf("admin create: %d %v", st, body)
		}
	})
	t.Run("409", func(t *testing.T) {
		st, body := call(t, "POST", users, svc.AccessToken, map[string]any{"username": "NEW@example.com", "password": "long-enough", "roles": []string{}})
		if st != http.StatusConflict {
			t.Fatalf("%d %v", st, body)
		}
	})
	t.Run("422 names the field", func(t *testing.T) {
		for field, in := range map[string]map[string]any{
			"username": {"username": "ab", "password": "long-enough", "roles": []string{}},
			"password": {"username": "shortpw", "password": "short", "roles": []string{}},
			"roles":    {"username": "badrole", "password": "long-enough", "roles": []string{"GOD"}},
			"id":       {"id": "not-a-uuid", "username": "badid", "password": "long-enough", "roles": []string{}},
		} {
			st, body := call(t, "POST", users, svc.AccessToken, in)
			if st != http.StatusUnprocessableEntity || body["field"] != field || !strings.Contains(body["detail"].(string), field) {
				t.Fatalf("%s: %d %v", field, st, body)
			}
		}
		st, body := call(t, "POST", users, svc.AccessToken, map[string]any{"username": "white space", "password": "long-enough", "roles": []string{}})
		if st != http.StatusUnprocessableEntity || body["field"] != "username" {
			t.Fatalf("whitespace: %d %v", st, body)
		}
	})
	t.Run("idempotent create replay", func(t *testing.T) {
		id := uuid.NewString()
		in := map[string]any{"id": id, "username": "retry@example.com", "password": "first-password", "roles": []string{}}
		if st, body := call(t, "POST", users, svc.AccessToken, in); st != http.StatusCreated || body["id"] != id {
			t.Fatalf("first: %d %v", st, body)
		}
		in["password"] = "second-password"
		in["roles"] = []string{auth.RoleCustomerEmployee}
		st, body := call(t, "POST", users, svc.AccessToken, in)
		if st != http.StatusOK || body["id"] != id || stringsOf(body["roles"])[0] != auth.RoleCustomerEmployee {
			t.Fatalf("replay: %d %v", st, body)
		}
		if _, ok := e.svc.authenticate(ctx, "retry@example.com", "second-password"); !ok {
			t.Fatal("replay did not replace the password")
		}
		// The same id by another creator, or with another username: 409.
		if st, _ := call(t, "POST", users, admin.AccessToken, in); st != http.StatusConflict {
			t.Fatalf("other creator: %d", st)
		}
		in["username"] = "other@example.com"
		if st, _ := call(t, "POST", users, svc.AccessToken, in); st != http.StatusConflict {
			t.Fatalf("other username: %d", st)
		}
	})
	t.Run("401 and 403", func(t *testing.T) {
		in := map[string]any{"username": "nope", "password": "long-enough", "roles": []string{}}
		for name, tc := range map[string]struct {
			token string
			want  int
		}{
			"no token":          {"", 401},
			"garbage":           {"abc.def.ghi", 401},
			"ID token":          {admin.Extra("id_token").(string), 401},
			"user without role": {plain.AccessToken, 403},
			"service no scope":  {noScope.AccessToken, 403},
		} {
			st, body := call(t, "POST", users, tc.token, in)
			if st != tc.want {
				t.Fatalf("%s: %d %v", name, st, body)
			}
		}
		e.clock.advance(10 * 60 * 1e9)
		if st, _ := call(t, "POST", users, svc.AccessToken, in); st != 401 {
			t.Fatalf("expired token: %d", st)
		}
		e.clock.advance(-10 * 60 * 1e9)
	})
	t.Run("get, roles, disable, enable", func(t *testing.T) {
		id := e.createUser(t, "frank", "frank-password")
		if st, body := call(t, "GET", users+"/"+id, svc.AccessToken, nil); st != 200 || body["username"] != "frank" {
			t.Fatalf("get: %d %v", st, body)
		}
		if st, _ := call(t, "GET", users+"/"+uuid.NewString(), svc.AccessToken, nil); st != 404 {
			t.Fatalf("get unknown: %d", st)
		}
		st, body := call(t, "PUT", users+"/"+id+"/roles", svc.AccessToken, map[string]any{"roles": []string{auth.RoleMonitoringEmployee}})
		if st != 200 || stringsOf(body["roles"])[0] != auth.RoleMonitoringEmployee {
			t.Fatalf("roles: %d %v", st, body)
		}
		if st, body := call(t, "POST", users+"/"+id+"/disable", svc.AccessToken, nil); st != 200 || body["enabled"] != false {
			t.Fatalf("disable: %d %v", st, body)
		}
		if _, ok := e.svc.authenticate(ctx, "frank", "frank-password"); ok {
			t.Fatal("disabled user authenticated")
		}
		if st, body := call(t, "POST", users+"/"+id+"/enable", svc.AccessToken, nil); st != 200 || body["enabled"] != true {
			t.Fatalf("enable: %d %v", st, body)
		}
	})
	t.Run("iamclient against the real service", func(t *testing.T) {
		c := iamclient.New(e.issuer, AudienceCustomer, testSvcSecret, nil)
		id := uuid.NewString()
		u, err := c.CreateUser(ctx, iamclient.CreateUserRequest{ID: id, Username: "client@example.com", Password: "long-enough", Roles: []string{auth.RoleCustomerEmployee}})
		if err != nil || u.ID != id {
			t.Fatalf("create: %+v %v", u, err)
		}
		if _, err := c.CreateUser(ctx, iamclient.CreateUserRequest{ID: id, Username: "client@example.com", Password: "long-enough"}); err != nil {
			t.Fatalf("replay: %v", err)
		}
		if _, err := c.CreateUser(ctx, iamclient.CreateUserRequest{Username: "client@example.com", Password: "long-enough"}); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if _, err := c.CreateUser(ctx, iamclient.CreateUserRequest{Username: "x", Password: "long-enough"}); !apperr.Is(err, apperr.Invalid) || apperr.As(err).Field != "username" {
			t.Fatalf("invalid: %v", err)
		}
		if err := c.DisableUser(ctx, id); err != nil {
			t.Fatalf("disable: %v", err)
		}
	})
}
