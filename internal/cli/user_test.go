package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// TestUserCommandsScripting runs the scripting side of the user commands
// against a system on random ports: systems named by name (an ambiguous
// name refused with its candidates), --json everywhere, the exit codes of a
// denial, an unknown system and an outage with a human message, the URLs
// remembered from the login, whoami without any service, and the access
// review.
func TestUserCommandsScripting(t *testing.T) {
	s := systemtest.Start(t, systemtest.Options{Strategy: "replicate"})
	ctx := context.Background()
	admin := s.MustAdmin()
	pw := "ops-password-1"
	cust, r := admin.CreateCustomer(ctx, "Script Corp", systemtest.NewEmployee{Email: "boss@script.example", FirstName: "Boss", LastName: "S", Password: pw})
	r.Want(t, http.StatusCreated)
	bossPW := "boss-own-password"
	boss := s.Client(s.MustFirstLogin("boss@script.example", pw, bossPW))
	loc, r := boss.CreateLocation(ctx, cust.ID, "HQ", "")
	r.Want(t, http.StatusCreated)
	ops, r := boss.CreateEmployee(ctx, policy.OrgCustomer, cust.ID, systemtest.NewEmployee{Email: "ops@script.example", FirstName: "Ops", LastName: "S", Password: pw})
	r.Want(t, http.StatusCreated)
	boss.SetLocationEmployeeRoles(ctx, cust.ID, loc.ID, ops.ID, []string{policy.RoleDisarmer}).Want(t, http.StatusOK)
	var front, twin1, twin2 apiclient.SecuritySystem
	for _, p := range []struct {
		dst  *apiclient.SecuritySystem
		name string
	}{{&front, "HQ Front Door"}, {&twin1, "Twin"}, {&twin2, "Twin"}} {
		systemtest.RetryUnknownReference(ctx, func() *systemtest.Response {
			var r *systemtest.Response
			*p.dst, r = admin.CreateSecuritySystem(ctx, loc.ID, p.name)
			return r
		}).Want(t, http.StatusCreated)
	}
	s.MustConverge()

	opsEnv := map[string]string{
		"XDG_CONFIG_HOME":                t.TempDir(),
		"REALGUARDIO_IAM_URL":            s.Issuer,
		"REALGUARDIO_SECURITYSYSTEM_URL": s.URL(system.ServiceSecuritySystem),
		"REALGUARDIO_OPEN_BROWSER":       "false",
	}
	loginCLIChanging(t, opsEnv, "ops@script.example", pw, "ops-own-password")
	// Later commands need no URL: the session remembers them.
	env := map[string]string{"XDG_CONFIG_HOME": opsEnv["XDG_CONFIG_HOME"]}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, env, args...)
	}

	code, out, errOut := cli("systems", "--json")
	var list struct {
		SecuritySystems []apiclient.SecuritySystem `json:"securitySystems"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.SecuritySystems) != 3 {
		t.Fatalf("systems --json: %d %q %q", code, out, errOut)
	}
	if code, out, errOut = cli("systems", "--all"); code != ExitOK || !strings.Contains(out, "HQ Front Door") || !strings.Contains(out, "disarm") {
		t.Fatalf("systems --all: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = cli("systems", "--all", "--limit", "2"); code != ExitUsage {
		t.Fatalf("--all with --limit: %d %q", code, errOut)
	}

	// By name; a name's case does not matter.
	if code, out, errOut = cli("disarm", "hq front door"); code != ExitOK || !strings.Contains(out, front.ID) || !strings.Contains(out, "DISARMED") {
		t.Fatalf("disarm by name: %d %q %q", code, out, errOut)
	}
	code, out, errOut = cli("disarm", "--json", "HQ Front Door")
	var got apiclient.SecuritySystem
	if code != ExitOK || json.Unmarshal([]byte(out), &got) != nil || got.ID != front.ID || got.State != "DISARMED" {
		t.Fatalf("disarm --json: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = cli("disarm", "Twin"); code != ExitUsage || !strings.Contains(errOut, twin1.ID) || !strings.Contains(errOut, twin2.ID) {
		t.Fatalf("an ambiguous name: %d %q", code, errOut)
	}
	if code, _, errOut = cli("disarm", "Front"); code != ExitNotFound || !strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, front.ID) {
		t.Fatalf("a partial name: %d %q", code, errOut)
	}
	// Denied: ops may disarm, not arm.
	if code, _, errOut = cli("arm", front.ID); code != ExitDenied || !strings.Contains(errOut, "not allowed") {
		t.Fatalf("a denial: %d %q", code, errOut)
	}
	code, _, errOut = cli("arm", "--json", front.ID)
	var jerr struct {
		ExitCode int `json:"exitCode"`
		Status   int `json:"status"`
		Problem  struct {
			Reason string `json:"reason"`
		} `json:"problem"`
	}
	if code != ExitDenied || json.Unmarshal([]byte(errOut), &jerr) != nil || jerr.Status != 403 || jerr.Problem.Reason != "no_role" || jerr.ExitCode != ExitDenied {
		t.Fatalf("a denial with --json: %d %q", code, errOut)
	}

	// The access review: the whole of it is for the customer's
	// administrators; anyone who may view reads their own.
	if code, _, errOut = cli("access", "HQ Front Door"); code != ExitDenied {
		t.Fatalf("access as a non-administrator: %d %q", code, errOut)
	}
	if code, out, errOut = cli("access", "--me", "HQ Front Door"); code != ExitOK || !strings.Contains(out, "ops@script.example") || !strings.Contains(out, "DISARMER at location HQ") {
		t.Fatalf("access --me: %d %q %q", code, out, errOut)
	}
	bossEnv := map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "REALGUARDIO_IAM_URL": s.Issuer,
		"REALGUARDIO_SECURITYSYSTEM_URL": s.URL(system.ServiceSecuritySystem), "REALGUARDIO_OPEN_BROWSER": "false"}
	loginCLI(t, bossEnv, "boss@script.example", bossPW)
	code, out, errOut = runCLI(t, bossEnv, "access", "--json", front.ID)
	var rev apiclient.AccessReview
	if code != ExitOK || json.Unmarshal([]byte(out), &rev) != nil || len(rev.Users) != 1 || rev.Users[0].UserID != ops.UserID ||
		strings.Join(rev.Users[0].Actions, ",") != "VIEW,DISARM" || rev.Users[0].Grants[0].Via != policy.ViaLocation || rev.Users[0].Grants[0].Name != "HQ" {
		t.Fatalf("access --json as the administrator: %d %q %q", code, out, errOut)
	}

	// reset-password: an administrator gets a one-time code and link for
	// an account; anyone else is refused with the denial's exit code, and
	// an argument that is no id is a usage error.
	if code, _, errOut = cli("reset-password", cust.Administrator.UserID); code != ExitDenied {
		t.Fatalf("reset-password as a user without REALGUARDIO_ADMIN: %d %q", code, errOut)
	}
	adminEnv := map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "REALGUARDIO_IAM_URL": s.Issuer,
		"REALGUARDIO_SECURITYSYSTEM_URL": s.URL(system.ServiceSecuritySystem), "REALGUARDIO_OPEN_BROWSER": "false"}
	loginCLI(t, adminEnv, s.AdminUsername, s.AdminPassword)
	if code, out, errOut = runCLI(t, adminEnv, "reset-password", ops.UserID); code != ExitOK || !strings.Contains(out, s.Issuer+"/reset?code=") || strings.Contains(out, pw) {
		t.Fatalf("reset-password: %d %q %q", code, out, errOut)
	}
	var reset apiclient.PasswordReset
	if code, out, errOut = runCLI(t, adminEnv, "reset-password", "--json", ops.UserID); code != ExitOK || json.Unmarshal([]byte(out), &reset) != nil || reset.UserID != ops.UserID || reset.Code == "" {
		t.Fatalf("reset-password --json: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, adminEnv, "reset-password", "ops@script.example"); code != ExitUsage {
		t.Fatalf("reset-password with a username: %d %q", code, errOut)
	}

	// whoami reads only the session file: it works with nothing running.
	dead := "http://127.0.0.1:1"
	if code, out, errOut = cli("whoami", "--iam-url", dead, "--securitysystem-url", dead); code != ExitOK || !strings.Contains(out, "logged in as ops@script.example") {
		t.Fatalf("whoami offline: %d %q %q", code, out, errOut)
	}
	// A system that does not answer: exit 5 and words, not "dial tcp".
	if code, _, errOut = cli("disarm", "--securitysystem-url", dead, front.ID); code != ExitUnavailable || strings.Contains(errOut, "dial tcp") || !strings.Contains(errOut, "realguardio up") {
		t.Fatalf("the system is down: %d %q", code, errOut)
	}
	if code, out, _ = runCLI(t, env, "version", "--json"); code != ExitOK || !strings.Contains(out, `"version"`) {
		t.Fatalf("version --json: %d %q", code, out)
	}
}
