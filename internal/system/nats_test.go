package system

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
)

var updateDeploy = flag.Bool("update-deploy", false, "rewrite deploy/nats/nats.conf from NATSGrants")

// natsConfHeader precedes the generated users in deploy/nats/nats.conf.
const natsConfHeader = `# NATS server configuration of the distributed deployment (compose.yaml).
# The authorization block is generated from internal/system.NATSGrants, the
# permissions the embedded server of ` + "`up`" + ` enforces, and checked by
# TestDeployNATSConfig: regenerate it with
#   go test ./internal/system -run TestDeployNATSConfig -update-deploy
# Each service connects as its own user (REALGUARDIO_NATS_USER and
# REALGUARDIO_NATS_PASSWORD); the passwords come from the server's
# environment (NATS_PASSWORD_<SERVICE>), never from this file.
port: 4222
jetstream {
  store_dir: /data
}
`

// TestDeployNATSConfig checks that the NATS configuration shipped in
// deploy/ grants each service exactly what NATSGrants says, so the external
// server enforces the same permissions as the embedded one.
func TestDeployNATSConfig(t *testing.T) {
	want := natsConfHeader + events.NATSConfigUsers("", NATSGrants(), natsPasswordVar)
	path := filepath.Join("..", "..", "deploy", "nats", "nats.conf")
	if *updateDeploy {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with NATSGrants; regenerate it with -update-deploy", path)
	}
	// nats-server itself accepts it (-t checks the configuration), with
	// every password variable set.
	cmd := exec.Command(eventstest.ServerBinary(t), "-c", path, "-t")
	cmd.Env = os.Environ()
	for _, g := range NATSGrants() {
		cmd.Env = append(cmd.Env, natsPasswordVar(g.Identity)+"=test-password-of-"+g.Identity)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nats-server rejects %s: %v\n%s", path, err, out)
	}
}

// natsPasswordVar names the environment variable of the NATS server that
// holds identity's password.
func natsPasswordVar(identity string) string { return "NATS_PASSWORD_" + strings.ToUpper(identity) }
