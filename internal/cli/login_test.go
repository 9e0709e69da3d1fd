package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// TestLoginSystemsArmDisarmLogout runs the user commands against a system
// started on random ports: `login` prints the authorization URL, which the
// test follows with an HTTP client submitting the IAM's login form (what
// the person does in the browser); then `systems`, `arm`, `disarm`,
// `whoami`, a refresh of an expired token, and `logout`, which revokes the
// refresh token.
func TestLoginSystemsArmDisarmLogout(t *testing.T) {
	s := systemtest.Start(t, systemtest.Options{Strategy: "fetch"})
	ctx := context.Background()

	// An operator with a system to arm and disarm.
	admin := s.MustAdmin()
	pw := "ops-password-1"
	cust, r := admin.CreateCustomer(ctx, "CLI Corp", systemtest.NewEmployee{Email: "boss@cli.example", FirstName: "Boss", LastName: "CLI", Password: pw})
	r.Want(t, http.StatusCreated)
	boss := s.Client(s.MustFirstLogin("boss@cli.example", pw, "boss-own-password"))
	loc, r := boss.CreateLocation(ctx, cust.ID, "Depot", "")
	r.Want(t, http.StatusCreated)
	ops, r := boss.CreateEmployee(ctx, policy.OrgCustomer, cust.ID, systemtest.NewEmployee{Email: "ops@cli.example", FirstName: "Ops", LastName: "CLI", Password: pw})
	r.Want(t, http.StatusCreated)
	boss.SetEmployeeRoles(ctx, policy.OrgCustomer, cust.ID, ops.ID, []string{policy.RoleArmer, policy.RoleDisarmer}).Want(t, http.StatusOK)
	ss, r := admin.CreateSecuritySystem(ctx, loc.ID, "Depot Door")
	r.Want(t, http.StatusCreated)

	config := t.TempDir()
	env := map[string]string{
		"XDG_CONFIG_HOME":                config,
		"REALGUARDIO_IAM_URL":            s.Issuer,
		"REALGUARDIO_SECURITYSYSTEM_URL": s.URL(system.ServiceSecuritySystem),
		"REALGUARDIO_OPEN_BROWSER":       "false",
	}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, env, args...)
	}
	if code, _, errOut := cli("systems"); code != ExitFailure || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("systems before login: %d %q", code, errOut)
	}

	// login: the URL is printed; the "browser" logs in there. The
	// password is the initial one the customer's administrator gave, so
	// the IAM asks for a new one in the browser before the redirect
	// reaches the CLI.
	loginCLIChanging(t, env, "ops@cli.example", pw, "ops-own-password")
	file := filepath.Join(config, "realguardio", "session.json")
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, mode %v, want 0600", err, fi.Mode())
	}

	code, out, stderr := cli("systems")
	if code != ExitOK || !strings.Contains(out, ss.ID) || !strings.Contains(out, "Depot Door") || !strings.Contains(out, "arm") {
		t.Fatalf("systems: %d %q %q", code, out, stderr)
	}
	if code, out, stderr = cli("arm", ss.ID); code != ExitOK || !strings.Contains(out, "ARMED") {
		t.Fatalf("arm: %d %q %q", code, out, stderr)
	}
	if code, out, stderr = cli("disarm", ss.ID); code != ExitOK || !strings.Contains(out, "DISARMED") {
		t.Fatalf("disarm: %d %q %q", code, out, stderr)
	}
	if code, _, stderr = cli("disarm"); code != ExitUsage {
		t.Fatalf("disarm without an id: %d %q", code, stderr)
	}
	if code, _, stderr = cli("arm", "00000000-0000-0000-0000-000000000000"); code != ExitNotFound || !strings.Contains(stderr, "not found") {
		t.Fatalf("arm an unknown system: %d %q", code, stderr)
	}

	stored := readSession(t, file)
	code, out, stderr = cli("whoami", "--json")
	var who struct {
		Username string         `json:"username"`
		Claims   map[string]any `json:"claims"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &who) != nil || who.Claims["sub"] != ops.UserID || who.Claims["client_id"] != apiclient.CLIClientID || who.Username != "ops@cli.example" {
		t.Fatalf("whoami: %d %q %q", code, out, stderr)
	}
	if sig := stored.AccessToken[strings.LastIndex(stored.AccessToken, ".")+1:]; strings.Contains(out, sig) || strings.Contains(out, stored.RefreshToken) {
		t.Fatalf("whoami printed a token: %q", out)
	}

	// An expired access token is refreshed and the rotated pair stored.
	stored.Expiry = time.Now().Add(-time.Minute)
	writeSession(t, file, stored)
	if code, out, stderr = cli("systems"); code != ExitOK || !strings.Contains(out, ss.ID) {
		t.Fatalf("systems with an expired token: %d %q %q", code, out, stderr)
	}
	refreshed := readSession(t, file)
	if refreshed.AccessToken == stored.AccessToken || refreshed.RefreshToken == stored.RefreshToken || !refreshed.Expiry.After(time.Now()) {
		t.Fatal("the expired session was not refreshed and stored")
	}

	if code, out, stderr = cli("logout"); code != ExitOK || !strings.Contains(out, "Logged out") {
		t.Fatalf("logout: %d %q %q", code, out, stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the session file survived logout: %v", err)
	}
	// The refresh token is revoked at the IAM.
	p, err := apiclient.Discover(ctx, s.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ResumeSession(&oauth2.Token{RefreshToken: refreshed.RefreshToken}, "", "", nil).Refresh(ctx); err == nil {
		t.Fatal("the refresh token still works after logout")
	}
	if code, _, stderr = cli("systems"); code != ExitFailure || !strings.Contains(stderr, "realguardio login") {
		t.Fatalf("systems after logout: %d %q", code, stderr)
	}
}

// loginCLI runs `realguardio login` with env and logs username in at the
// printed URL, as the person would in the browser.
func loginCLI(t *testing.T, env map[string]string, username, password string) {
	t.Helper()
	loginCLIChanging(t, env, username, password, "")
}

// loginCLIChanging is loginCLI for an account whose password someone else
// chose: in the browser, after the password, the person chooses
// newPassword on the IAM's change-password page, which the CLI's prompt
// announces. With newPassword "" no change may be asked.
func loginCLIChanging(t *testing.T, env map[string]string, username, password, newPassword string) {
	t.Helper()
	pr, pw := io.Pipe()
	var errOut lockedBuffer
	done := make(chan int, 1)
	lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		done <- Main(lctx, []string{"login"}, pw, &errOut, func(k string) string { return env[k] })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var printed strings.Builder
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if strings.HasPrefix(line, "http") {
			jar, _ := cookiejar.New(nil)
			go func() {
				browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
				page, err := apiclient.SubmitLoginForm(lctx, browser, line, username, password)
				switch {
				case err != nil:
					t.Errorf("the browser step: %v", err)
				case page.PasswordChangeRequired != (newPassword != ""):
					t.Errorf("the browser step: change page %v, want %v: %s", page.PasswordChangeRequired, newPassword != "", page.Snippet)
				case newPassword != "":
					if _, err := apiclient.SubmitPasswordChange(lctx, browser, page, newPassword); err != nil {
						t.Errorf("the browser's password change: %v", err)
					}
				}
			}()
		}
	}
	out := printed.String()
	if code := <-done; code != ExitOK || !strings.Contains(out, "Logged in as "+username) || !strings.Contains(out, "choose a new password") {
		t.Fatalf("login: %d, stdout %q, stderr %q", code, out, errOut.String())
	}
}

func readSession(t *testing.T, file string) storedSession {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s storedSession
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSession(t *testing.T, file string, s storedSession) {
	t.Helper()
	if err := (sessionStore{path: file}).save(s); err != nil {
		t.Fatal(err)
	}
}
