package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/policy"
)

// sizedAuthz returns the provide claims of a customer employee with
// organization roles, a schedule and n locations with roles.
type sizedAuthz struct{ n int }

func (s sizedAuthz) Claims(_ context.Context, req AuthorizationRequest) (map[string]any, error) {
	subj := policy.Subject{
		Org:           &policy.Membership{Kind: policy.OrgCustomer, ID: uuid.NewString(), Roles: []string{policy.RoleViewer}},
		LocationRoles: map[string][]string{},
		Schedule: &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
			{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"}}},
	}
	for i := range s.n {
		subj.LocationRoles[uuid.NewString()] = [][]string{{policy.RoleDisarmer}, {policy.RoleArmer, policy.RoleDisarmer}}[i%2]
	}
	return tokenclaims.Encode(subj)
}

// TestAccessTokenSizeByLocations measures real access tokens (login, code
// exchange, the IAM's signing path) carrying provide claims for 1, 10, 100
// and 1000 locations with roles, and shows that a token over
// MaxAccessTokenBytes (8 KiB by default) is refused with a clear OAuth
// error instead of being issued.
//
//	go test -run TestAccessTokenSizeByLocations -v ./internal/iam/
func TestAccessTokenSizeByLocations(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 10, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnv(t, envOpts{authz: sizedAuthz{n: n}})
			e.createUser(t, "erin", "erin-password")
			cfg := e.bffConfig()
			code, verifier := e.loginCode(t, cfg, "erin", "erin-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if n >= 1000 {
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "server_error" || !strings.Contains(re.ErrorDescription, "too large for the provide strategy") {
					t.Fatalf("%d locations: err = %v, want a refusal", n, err)
				}
				t.Logf("%4d locations: refused (%s): %s", n, re.Response.Status, re.ErrorDescription)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%4d locations: access token %5d bytes", n, len(tok.AccessToken))
		})
	}
}
