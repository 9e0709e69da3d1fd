package demo_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/demo"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// TestLoad loads the demo into a running system with every strategy, checks
// that a second load changes nothing, and that the cast's logins work and
// hold the rights the table promises.
func TestLoad(t *testing.T) {
	for _, strategy := range system.Strategies {
		t.Run(strategy, func(t *testing.T) {
			s := systemtest.Start(t, systemtest.Options{Strategy: strategy})
			ctx := context.Background()
			opts := demo.Options{Endpoints: apiclient.EndpointsFrom(s.Sys.URLs), AdminPassword: s.AdminPassword}
			res, err := demo.Load(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyLoaded || len(res.Logins) != 15 || res.SecuritySystems != 4 {
				t.Fatalf("first load: %+v", res)
			}
			var out bytes.Buffer
			demo.Print(&out, res, "http://localhost:3000/")
			for _, lg := range res.Logins {
				if !strings.Contains(out.String(), lg.Username) || !strings.Contains(out.String(), lg.Password) {
					t.Errorf("the table lacks the login of %s:\n%s", lg.Username, out.String())
				}
			}
			again, err := demo.Load(ctx, opts)
			if err != nil || !again.AlreadyLoaded || len(again.Logins) != 0 {
				t.Fatalf("second load: %+v, %v", again, err)
			}
			out.Reset()
			demo.Print(&out, again, "http://localhost:3000/")
			if !strings.Contains(out.String(), "already loaded") {
				t.Errorf("second load printed %q", out.String())
			}

			// The printed passwords are the accounts' own: the load did
			// each first login's password change, so every printed login
			// logs in as is (once, with one strategy: each costs hashes).
			if strategy == system.Strategies[0] {
				for _, lg := range res.Logins {
					s.MustLogin(lg.Username, lg.Password)
				}
			}

			s.MustConverge()
			logins := map[string]demo.Login{}
			for _, lg := range res.Logins {
				logins[lg.Username] = lg
			}
			as := func(username string) *systemtest.Client {
				lg := logins[username]
				return s.Client(s.MustLogin(lg.Username, lg.Password))
			}
			systems := func(c *systemtest.Client) map[string]apiclient.SecuritySystem {
				list, err := c.API().ListSecuritySystems(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]apiclient.SecuritySystem{}
				for _, ss := range list {
					m[ss.Name] = ss
				}
				return m
			}
			alice := as("alice@acme.example")
			seen := systems(alice)
			if len(seen) != 3 || seen["Foo Corp Main Entrance"].ID != "" {
				t.Errorf("alice sees %v, want Acme's three systems", seen)
			}
			if seen["HQ Front Door"].State != apiclient.StateArmed || seen["Warehouse Loading Dock"].State != apiclient.StateArmed || seen["HQ Server Room"].State != apiclient.StateDisarmed {
				t.Errorf("states %v, want HQ Front Door and the Warehouse Loading Dock armed", seen)
			}
			// Nina is inside her shift now, Oliver outside his.
			if got := systems(as("nina@acme.example"))["HQ Front Door"]; !slices.Equal(got.Actions, []string{"DISARM"}) {
				t.Errorf("nina may %v on HQ Front Door, want DISARM (inside her shift)", got.Actions)
			}
			if got := systems(as("oliver@acme.example")); len(got) != 1 || len(got["Warehouse Loading Dock"].Actions) != 0 || got["Warehouse Loading Dock"].ID == "" {
				t.Errorf("oliver sees %v, want the Warehouse's system, view only (outside his shift)", got)
			}
			// The access review of HQ Front Door names every path of the
			// cast, read from the owners whatever the strategy.
			rev, err := as("admin@acme.example").API().AccessAll(ctx, seen["HQ Front Door"].ID, apiclient.AccessQuery{Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			vias := map[string]string{}
			for _, u := range rev.Users {
				vias[u.Username] = string(u.Grants[0].Via) + " " + u.Grants[0].Name
			}
			want := map[string]string{
				"alice@acme.example": "customer Acme", "charlie@acme.example": "team Night Watch", "dave@secureco.example": "dealer SecureCo",
				"erin@watchtower.example": "monitoring_provider WatchTower", "frank@acme.example": "location HQ", "grace@acme.example": "location HQ",
				"nina@acme.example": "location HQ", "oscar@acme.example": "customer Acme",
			}
			if !maps.Equal(vias, want) {
				t.Errorf("access review of HQ Front Door: %v\nwant %v", vias, want)
			}
			if _, err := alice.API().Disarm(ctx, seen["HQ Front Door"].ID); err != nil {
				t.Errorf("alice disarms HQ Front Door: %v", err)
			}
			if _, err := alice.API().Arm(ctx, seen["HQ Front Door"].ID); !apperr.Is(err, apperr.Forbidden) {
				t.Errorf("alice arms HQ Front Door: %v, want 403", err)
			}
			mary := systems(as("mary@acme.example"))
			if len(mary) != 1 || mary["Warehouse Loading Dock"].ID == "" {
				t.Errorf("mary sees %v, want the Warehouse's system", mary)
			}
			for _, who := range []string{"charlie@acme.example", "dave@secureco.example", "erin@watchtower.example"} {
				if got := systems(as(who)); len(got) != 2 || got["HQ Front Door"].ID == "" {
					t.Errorf("%s sees %v, want HQ's two systems", who, got)
				}
			}
		})
	}
}

// TestLoadWrongPassword fails with the admin's login, creating nothing.
func TestLoadWrongPassword(t *testing.T) {
	s := systemtest.Start(t, systemtest.Options{Strategy: "fetch"})
	_, err := demo.Load(context.Background(), demo.Options{Endpoints: apiclient.EndpointsFrom(s.Sys.URLs), AdminPassword: "not-the-password"})
	if err == nil || !strings.Contains(err.Error(), "log in as admin") {
		t.Fatalf("err = %v, want a failed admin login", err)
	}
}
