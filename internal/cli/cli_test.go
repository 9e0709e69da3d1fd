package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use: the NATS client
// logs its close callback from its own goroutine, possibly after Main has
// returned and while the test reads the output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	code, _, errOut := runCLI(t, nil)
	if code != ExitUsage || !strings.Contains(errOut, "realguardio up") {
		t.Fatalf("no args: code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "frobnicate")
	if code != ExitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "serve")
	if code != ExitUsage || !strings.Contains(errOut, "name the service") {
		t.Fatalf("serve without a service: code %d, stderr %q", code, errOut)
	}
	code, out, _ := runCLI(t, nil, "version")
	if code != ExitOK || !strings.HasPrefix(out, "realguardio ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

// Bad settings stop the start before anything listens, with a message that
// names each setting, whether it came from a flag or the environment.
func TestBadSettingsAreNamed(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "up", "--authz", "magic", "--iam-addr", "nowhere")
	if code != ExitUsage {
		t.Fatalf("code %d, want %d; stderr %q", code, ExitUsage, errOut)
	}
	for _, want := range []string{"--authz", "magic", "--iam-addr", "REALGUARDIO_IAM_ADDR"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not mention %q", errOut, want)
		}
	}
	code, _, errOut = runCLI(t, map[string]string{"REALGUARDIO_ACCESS_TOKEN_LIFETIME": "forever"}, "up")
	if code != ExitUsage || !strings.Contains(errOut, "REALGUARDIO_ACCESS_TOKEN_LIFETIME") {
		t.Fatalf("bad env: code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "serve", "payroll")
	if code != ExitUsage || !strings.Contains(errOut, `unknown service "payroll"`) {
		t.Fatalf("unknown service: code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "up", "--database-url", "mysql://x")
	if code != ExitUsage || !strings.Contains(errOut, "--database-url") {
		t.Fatalf("bad database url: code %d, stderr %q", code, errOut)
	}
}

// A service run alone must be told its secrets and its NATS server: `up`
// may generate them because every service is in the same process, a lone
// service may not.
func TestServeNeedsSecrets(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI(t, nil, "serve", "customer", "--data-dir", dir, "--customer-addr", "127.0.0.1:0", "--log-level", "error")
	if code != ExitFailure || !strings.Contains(errOut, "REALGUARDIO_CLIENT_SECRETS") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}

func TestRebuildReplicaOnEmptyData(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, nil, "rebuild-replica", "--data-dir", dir, "--nats-embedded-addr", "127.0.0.1:0", "--log-level", "error")
	if code != ExitOK || !strings.Contains(out, "Done in") {
		t.Fatalf("code %d, out %q, stderr %q", code, out, errOut)
	}
}

func TestRebuildOpenFGAOnEmptyData(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, nil, "rebuild-openfga", "--data-dir", dir, "--nats-embedded-addr", "127.0.0.1:0",
		"--openfga-embedded-addr", "127.0.0.1:0", "--log-level", "error")
	if code != ExitOK || !strings.Contains(out, "the streams hold no events yet") || !strings.Contains(out, "Done in") {
		t.Fatalf("code %d, out %q, stderr %q", code, out, errOut)
	}
}

// A secret on the command line is readable by every local user; the start
// says so (and names the variable to use instead), without echoing it.
func TestSecretFlagWarns(t *testing.T) {
	_, _, errOut := runCLI(t, nil, "rebuild-replica", "--data-dir", t.TempDir(), "--nats-embedded-addr", "127.0.0.1:0",
		"--admin-password", "s3cret-value-here", "--log-format", "text")
	if !strings.Contains(errOut, "REALGUARDIO_ADMIN_PASSWORD") {
		t.Fatalf("no warning naming the variable: %q", errOut)
	}
	if strings.Contains(errOut, "s3cret-value-here") {
		t.Fatalf("the warning echoes the secret: %q", errOut)
	}
}

func TestRotateKeys(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		code, out, errOut := runCLI(t, nil, "rotate-keys", "--data-dir", dir, "--log-level", "error")
		if code != ExitOK || !strings.Contains(out, "New signing key") {
			t.Fatalf("code %d, out %q, stderr %q", code, out, errOut)
		}
	}
}
