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

	"github.com/realguardio/realguardio/internal/contract/iamaccounts"
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

// adminID returns the bootstrap administrator's id.
func (e *env) adminID(t testing.TB) string {
	t.Helper()
	u, err := e.svc.store.userByUsername(context.Background(), e.svc.db, AdminUsername)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
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
		st, body := call(t, "POST", users, svc.AccessToken, map[string]any{"username": "frank", "password": "frank-password", "roles": []string{auth.RoleCustomerEmployee}})
		if st != http.StatusCreated {
			t.Fatalf("create: %d %v", st, body)
		}
		id := body["id"].(string)
		if st, body := call(t, "GET", users+"/"+id, svc.AccessToken, nil); st != 200 || body["username"] != "frank" {
			t.Fatalf("get: %d %v", st, body)
		}
		if st, _ := call(t, "GET", users+"/"+uuid.NewString(), svc.AccessToken, nil); st != 404 {
			t.Fatalf("get unknown: %d", st)
		}
		st, body = call(t, "PUT", users+"/"+id+"/roles", admin.AccessToken, map[string]any{"roles": []string{auth.RoleMonitoringEmployee}})
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
	t.Run("a service is confined to its own employees", func(t *testing.T) {
		dealer, err := (&clientcredentials.Config{ClientID: AudienceDealer, ClientSecret: testSvcSecret, TokenURL: tokenURL}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Only the service's own employee role (or none) may be given.
		for _, roles := range [][]string{{auth.RoleAdmin}, {auth.RoleDealerAdministrator}, {auth.RoleDealerEmployee}, {auth.RoleCustomerEmployee, auth.RoleMonitoringEmployee}} {
			st, body := call(t, "POST", users, svc.AccessToken, map[string]any{"username": "grab-" + roles[0], "password": "long-enough", "roles": roles})
			if st != http.StatusForbidden || body["reason"] != reasonNotProvisionable {
				t.Fatalf("create with %v: %d %v", roles, st, body)
			}
		}
		// Nor through the idempotent replay of one of its own users.
		id := uuid.NewString()
		own := map[string]any{"id": id, "username": "own@example.com", "password": "long-enough", "roles": []string{auth.RoleCustomerEmployee}}
		if st, body := call(t, "POST", users, svc.AccessToken, own); st != http.StatusCreated {
			t.Fatalf("own: %d %v", st, body)
		}
		own["roles"] = []string{auth.RoleAdmin}
		if st, body := call(t, "POST", users, svc.AccessToken, own); st != http.StatusForbidden {
			t.Fatalf("replay with another role: %d %v", st, body)
		}
		if st, body := call(t, "GET", users+"/"+id, svc.AccessToken, nil); st != 200 || stringsOf(body["roles"])[0] != auth.RoleCustomerEmployee || len(stringsOf(body["roles"])) != 1 {
			t.Fatalf("own after refused replay: %d %v", st, body)
		}
		// Roles are changed by an administrator only.
		for _, target := range []string{id, e.adminID(t)} {
			if st, body := call(t, "PUT", users+"/"+target+"/roles", svc.AccessToken, map[string]any{"roles": []string{auth.RoleAdmin}}); st != http.StatusForbidden {
				t.Fatalf("service set roles: %d %v", st, body)
			}
		}
		// Users it did not create are unknown to it: the administrator,
		// an administrator's creation, another service's employee.
		byDealer := map[string]any{"username": "dealer-emp@example.com", "password": "long-enough", "roles": []string{auth.RoleDealerEmployee}}
		st, body := call(t, "POST", users, dealer.AccessToken, byDealer)
		if st != http.StatusCreated {
			t.Fatalf("dealer create: %d %v", st, body)
		}
		_, unknown := call(t, "GET", users+"/"+uuid.NewString(), svc.AccessToken, nil)
		for name, target := range map[string]string{"admin": e.adminID(t), "admin's": e.createUser(t, "by-admin-2", "long-enough"), "dealer's": body["id"].(string)} {
			for _, req := range []struct{ method, path string }{{"GET", ""}, {"POST", "/disable"}, {"POST", "/enable"}} {
				st, got := call(t, req.method, users+"/"+target+req.path, svc.AccessToken, nil)
				if st != http.StatusNotFound || got["detail"] != unknown["detail"] {
					t.Fatalf("%s %s of the %s user: %d %v", req.method, req.path, name, st, got)
				}
			}
		}
		if u, err := e.svc.store.userByID(ctx, e.svc.db, e.adminID(t)); err != nil || !u.Enabled {
			t.Fatalf("admin after a service's disable: %+v %v", u, err)
		}
		// The administrator keeps every right.
		st, body = call(t, "POST", users, admin.AccessToken, map[string]any{"username": "second-admin", "password": "long-enough", "roles": []string{auth.RoleAdmin}})
		if st != http.StatusCreated {
			t.Fatalf("admin creates an admin: %d %v", st, body)
		}
		if st, _ := call(t, "GET", users+"/"+id, admin.AccessToken, nil); st != 200 {
			t.Fatalf("admin get: %d", st)
		}
		if st, _ := call(t, "POST", users+"/"+id+"/disable", admin.AccessToken, nil); st != 200 {
			t.Fatalf("admin disable: %d", st)
		}
	})
	t.Run("iamclient against the real service", func(t *testing.T) {
		c := iamaccounts.New(e.issuer, AudienceCustomer, testSvcSecret, nil)
		id := uuid.NewString()
		u, err := c.CreateUser(ctx, iamaccounts.CreateUserRequest{ID: id, Username: "client@example.com", Password: "long-enough", Roles: []string{auth.RoleCustomerEmployee}})
		if err != nil || u.ID != id {
			t.Fatalf("create: %+v %v", u, err)
		}
		if _, err := c.CreateUser(ctx, iamaccounts.CreateUserRequest{ID: id, Username: "client@example.com", Password: "long-enough", Roles: []string{auth.RoleCustomerEmployee}}); err != nil {
			t.Fatalf("replay: %v", err)
		}
		if _, err := c.CreateUser(ctx, iamaccounts.CreateUserRequest{Username: "client@example.com", Password: "long-enough"}); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if _, err := c.CreateUser(ctx, iamaccounts.CreateUserRequest{Username: "x", Password: "long-enough"}); !apperr.Is(err, apperr.Invalid) || apperr.As(err).Field != "username" {
			t.Fatalf("invalid: %v", err)
		}
		if err := c.DisableUser(ctx, id); err != nil {
			t.Fatalf("disable: %v", err)
		}
		if err := c.EnableUser(ctx, id); err != nil {
			t.Fatalf("enable: %v", err)
		}
		if u, err := c.GetUser(ctx, id); err != nil || !u.Enabled {
			t.Fatalf("get: %+v %v", u, err)
		}
		if _, err := c.GetUser(ctx, e.adminID(t)); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("get of a user another creator made: %v", err)
		}
	})
}

// TestProvisionableRoles checks the client configuration that confines the
// organization services: each may provision its own employee role only,
// and no configuration can make a platform role provisionable.
func TestProvisionableRoles(t *testing.T) {
	secrets := map[string]string{AudienceCustomer: "s", AudienceDealer: "s", AudienceMonitoring: "s", AudienceSecuritySystem: "s"}
	want := map[string][]string{
		AudienceCustomer:   {auth.RoleCustomerEmployee},
		AudienceDealer:     {auth.RoleDealerEmployee},
		AudienceMonitoring: {auth.RoleMonitoringEmployee},
	}
	for _, c := range DefaultClients("https://bff.example/cb", "", secrets, "bff") {
		if got := c.ProvisionableRoles; strings.Join(got, ",") != strings.Join(want[c.ID], ",") {
			t.Errorf("%s: provisionable %v, want %v", c.ID, got, want[c.ID])
		}
		if err := c.validate(); err != nil {
			t.Errorf("%s: %v", c.ID, err)
		}
	}
	base := ClientConfig{ID: "svc", Secret: "s", GrantTypes: []string{"client_credentials"}, Scopes: []string{ScopeUsersWrite}, Audiences: []string{AudienceIAM}}
	for _, roles := range [][]string{{auth.RoleAdmin}, {auth.RoleDealerAdministrator}, {"GOD"}} {
		c := base
		c.ProvisionableRoles = roles
		if err := c.validate(); err == nil {
			t.Errorf("provisionable %v accepted", roles)
		}
	}
	c := base
	c.Scopes, c.ProvisionableRoles = nil, []string{auth.RoleCustomerEmployee}
	if err := c.validate(); err == nil {
		t.Error("provisionable roles without users:write accepted")
	}
}
