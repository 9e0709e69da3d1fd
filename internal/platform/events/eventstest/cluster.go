package eventstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// ServerModule is the Go module of nats-server; the cluster tests build its
// command from the module cache at the version this module requires
// (Debian's nats-server is too old for them).
const ServerModule = "github.com/nats-io/nats-server/v2"

var buildMu sync.Mutex

// ServerBinary returns the path of a nats-server binary built from the
// module cache at the version go.mod requires. It is built once per
// version into the system's temporary directory and reused by later runs
// (the first build takes a minute or two); a failed build fails the test,
// since the cluster tests must run in CI.
func ServerBinary(t testing.TB) string {
	t.Helper()
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == ServerModule {
				version = d.Version
				if d.Replace != nil {
					version = d.Replace.Version
				}
			}
		}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	dir := filepath.Join(os.TempDir(), "realguardio-nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Build into a temporary name and rename, so a concurrent run never
	// sees half a binary.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ServerModule)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server %s from the module cache: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// Cluster is a NATS cluster of separate nats-server processes on free
// loopback ports, for tests that kill a server.
type Cluster struct {
	t     testing.TB
	bin   string
	dir   string
	nodes []*node
}

type node struct {
	name       string
	clientPort int
	routePort  int
	cmd        *exec.Cmd
	done       chan struct{}
}

// StartCluster starts n nats-server processes with JetStream, clustered
// with each other, and stops them when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: ServerBinary(t), dir: t.TempDir()}
	for i := range n {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), clientPort: freePort(t), routePort: freePort(t)})
	}
	for i := range c.nodes {
		c.Start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Kill(i)
		}
	})
	return c
}

// URL returns the comma-separated client URLs of every server.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
	}
	return strings.Join(urls, ",")
}

// Index returns the position of the server named name ("n1", ...), or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// Start starts server i (again, after Kill) on its ports and store.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	var routes []string
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.routePort))
		}
	}
	conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: realguardio-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.clientPort, filepath.Join(c.dir, n.name), n.routePort, strings.Join(routes, ", "))
	confPath := filepath.Join(c.dir, n.name+".conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(c.dir, n.name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	n.cmd = exec.Command(c.bin, "-c", confPath)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.name, err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); logf.Close(); close(n.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.clientPort), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s did not listen on %d: %v", n.name, n.clientPort, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops server i at once (SIGKILL), as a crashed machine would.
func (c *Cluster) Kill(i int) {
	n := c.nodes[i]
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

// Log returns what server i logged, for a failing test's message.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, c.nodes[i].name+".log"))
	return string(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
