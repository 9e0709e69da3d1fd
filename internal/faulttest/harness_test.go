package faulttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
)

// raceEnabled reports whether the suite runs with the race detector
// (race_test.go); the services are then built with it too.
var raceEnabled bool

// binaries built once per test binary, removed by TestMain.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// inCI reports whether nothing may skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing skips the test, or fails it under CI=true, for a dependency the
// machine lacks.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=true forbids skipping the fault suite)", msg)
	}
	t.Skipf("fault suite skipped: %s", msg)
}

// realguardio returns the path of the realguardio binary built from this
// module, building it on first use.
func realguardio(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "realguardio-faulttest-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "realguardio")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/realguardio/realguardio/cmd/realguardio")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/realguardio: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// OpenFGAEnv names the openfga binary the suite runs; .ci/run builds it.
const OpenFGAEnv = "REALGUARDIO_TEST_OPENFGA"

var fgaMu sync.Mutex

// openFGA returns an openfga binary: REALGUARDIO_TEST_OPENFGA, else one
// built from the module cache at the version go.mod requires, with that
// module's own go.mod (this module's go.sum lacks the server's command
// dependencies), kept in the temporary directory for later runs.
func openFGA(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(OpenFGAEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", OpenFGAEnv, p, err)
		}
		return p
	}
	fgaMu.Lock()
	defer fgaMu.Unlock()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "github.com/openfga/openfga").Output()
	if err != nil {
		missing(t, "find the openfga module: %v", err)
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	bin := filepath.Join(os.TempDir(), "realguardio-openfga-"+version, "openfga")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if dir == "" {
		missing(t, "the openfga module %s is not in the module cache (go mod download github.com/openfga/openfga)", version)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/openfga")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		missing(t, "build openfga %s from the module cache (set %s to a binary): %v\n%s", version, OpenFGAEnv, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// proc is one process of the system under test.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	env     []string
	url     string // base URL of its HTTP API, "" for none
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts the process (again); its output goes to its log file.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "----- start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// running returns the live command, or nil.
func (p *proc) running() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil, nil
	}
	select {
	case <-p.done:
		return nil, nil
	default:
		return p.cmd, p.done
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	if cmd, done := p.running(); cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen process must die too
		_ = cmd.Process.Kill()
		<-done
	}
}

// stop ends the process gracefully (SIGTERM), killing it after 15 s.
func (p *proc) stop() {
	cmd, done := p.running()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.t.Logf("%s did not stop within 15 s of SIGTERM; killed", p.name)
		p.kill()
	}
}

// signal sends sig to the running process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	cmd, _ := p.running()
	if cmd == nil {
		t.Fatalf("%s is not running", p.name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// rssMiB returns the resident set size of the running process.
func (p *proc) rssMiB() float64 {
	cmd, _ := p.running()
	if cmd == nil {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// tail returns the last lines of the process's log, for failure messages.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady waits until the process's /readyz answers 200 (ready or
// degraded), or fails the test with the end of its log.
func (p *proc) waitReady(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Since(start) < timeout {
		if _, done := p.running(); done == nil {
			t.Fatalf("%s exited while starting:\n%s", p.name, p.tail(40))
		}
		if resp, err := hc.Get(p.url + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s:\n%s", p.name, timeout, p.tail(40))
	return 0
}

// readyz returns the status and body of the process's /readyz.
func (p *proc) readyz() (int, map[string]any) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(p.url + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// Options configures a system of processes.
type Options struct {
	// Strategy is the Security System Service's --authz.
	Strategy string
	// SecondInstances also runs a second Security System Service and a
	// second BFF, the BFFs behind a round-robin balancer.
	SecondInstances bool
}

// System is RealGuardIO as separate processes.
type System struct {
	t     *testing.T
	dir   string
	bin   string
	opts  Options
	NATS  *eventstest.Cluster
	procs map[string]*proc
	// DatabaseNames maps each service to its PostgreSQL database.
	DatabaseNames map[string]string
	pgAdminURL    string

	AdminPassword string
	FGA           *proc
	// BFFURL is the BFF's public URL (the balancer with two instances).
	BFFURL string

	hc *http.Client
}

// serviceNames are the processes `serve` runs, in start order.
var serviceNames = []string{"iam", "customer", "dealer", "monitoring", "authzsync", "securitysystem", "bff"}

// startSystem starts every service of opts as its own process and stops
// them all when the test ends.
func startSystem(t *testing.T, opts Options) *System {
	t.Helper()
	if os.Getenv(sqldbtest.PostgresURLEnv) == "" {
		missing(t, "%s is not set", sqldbtest.PostgresURLEnv)
	}
	s := &System{t: t, dir: t.TempDir(), opts: opts, procs: map[string]*proc{}, DatabaseNames: map[string]string{},
		pgAdminURL: os.Getenv(sqldbtest.PostgresURLEnv), hc: &http.Client{Timeout: 30 * time.Second}}
	s.bin = realguardio(t)
	delegate := opts.Strategy == "delegate"
	var fgaBin string
	if delegate {
		fgaBin = openFGA(t)
	}
	s.NATS = eventstest.StartCluster(t, 3)
	s.AdminPassword = "admin-" + randomHex(8)

	secret := func() string { return randomHex(16) }
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{
		"REALGUARDIO_AUTHZ":                 opts.Strategy,
		"REALGUARDIO_ADMIN_PASSWORD":        s.AdminPassword,
		"REALGUARDIO_NATS_URL":              s.NATS.URL(),
		"REALGUARDIO_CLIENT_SECRETS":        fmt.Sprintf("bff=%s,customer=%s,dealer=%s,monitoring=%s,securitysystem=%s", secret(), secret(), secret(), secret(), secret()),
		"REALGUARDIO_SESSION_KEYS":          base64.StdEncoding.EncodeToString(key),
		"REALGUARDIO_ACCESS_TOKEN_LIFETIME": "30m",
		"REALGUARDIO_LOG_FORMAT":            "json",
		"REALGUARDIO_LOG_LEVEL":             "info",
		// Two loaded cores: an OpenFGA check can take seconds; the
		// suite is about faults, not latency.
		"REALGUARDIO_OPENFGA_TIMEOUT": "10s",
	}
	ports := map[string]int{}
	for _, name := range serviceNames {
		ports[name] = freePort(t)
		u := sqldbtest.PostgresURL(t)
		pu, _ := url.Parse(u)
		s.DatabaseNames[name] = strings.TrimPrefix(pu.Path, "/")
		env[envName(name, "database-url")] = u
		env[envName(name, "addr")] = fmt.Sprintf("127.0.0.1:%d", ports[name])
		env[envName(name, "url")] = fmt.Sprintf("http://127.0.0.1:%d", ports[name])
	}
	var lb *balancer
	if opts.SecondInstances {
		lb = newBalancer(t)
		env[envName("bff", "url")] = lb.URL
	}
	s.BFFURL = env[envName("bff", "url")]

	if delegate {
		fgaDB := sqldbtest.PostgresURL(t)
		fgaKey := randomHex(16)
		httpPort, grpcPort := freePort(t), freePort(t)
		fgaEnv := append(os.Environ(), "OPENFGA_DATASTORE_ENGINE=postgres", "OPENFGA_DATASTORE_URI="+fgaDB)
		migrate := exec.Command(fgaBin, "migrate", "--datastore-engine", "postgres", "--datastore-uri", fgaDB)
		migrate.Env = fgaEnv
		if out, err := migrate.CombinedOutput(); err != nil {
			t.Fatalf("openfga migrate: %v\n%s", err, out)
		}
		s.FGA = &proc{t: t, name: "openfga", bin: fgaBin, env: fgaEnv, url: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
			logPath: filepath.Join(s.dir, "openfga.log"),
			args: []string{"run",
				"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--grpc-addr", fmt.Sprintf("127.0.0.1:%d", grpcPort),
				"--authn-method", "preshared", "--authn-preshared-keys", fgaKey,
				"--playground-enabled=false", "--metrics-enabled=false", "--log-level", "warn"}}
		t.Cleanup(s.FGA.kill)
		s.FGA.start(t)
		s.FGA.waitFGA(t, 60*time.Second)
		env["REALGUARDIO_OPENFGA_URL"] = s.FGA.url
		env["REALGUARDIO_OPENFGA_TOKEN"] = fgaKey
	}

	for _, name := range serviceNames {
		if name == "authzsync" && !delegate {
			continue
		}
		s.addProc(name, name, env, ports[name])
		if opts.SecondInstances && (name == "securitysystem" || name == "bff") {
			s.addProc(name+"-2", name, env, freePort(t))
		}
	}
	if lb != nil {
		lb.backends = []*url.URL{mustURL(t, s.procs["bff"].url), mustURL(t, s.procs["bff-2"].url)}
	}
	// The IAM first (every service discovers it), then the rest at once.
	s.procs["iam"].start(t)
	s.procs["iam"].waitReady(t, 90*time.Second)
	for _, name := range s.names() {
		if name != "iam" {
			s.procs[name].start(t)
		}
	}
	for _, name := range s.names() {
		s.procs[name].waitReady(t, 120*time.Second)
	}
	return s
}

// waitFGA waits for OpenFGA's health endpoint.
func (p *proc) waitFGA(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("openfga not healthy within %s:\n%s", timeout, p.tail(30))
	return 0
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// envName is the variable of service's setting (a flag --<service>-<what>).
func envName(service, what string) string {
	return "REALGUARDIO_" + strings.ToUpper(strings.ReplaceAll(service+"-"+what, "-", "_"))
}

// addProc defines process name running `serve service`, listening on port.
func (s *System) addProc(name, service string, env map[string]string, port int) {
	own := map[string]string{}
	for k, v := range env {
		own[k] = v
	}
	own[envName(service, "addr")] = fmt.Sprintf("127.0.0.1:%d", port)
	// The first instance is the one the others reach. A second Security
	// System Service is reached only by the tests, at its own URL; a
	// second BFF keeps the balancer's public URL (the IAM's redirect URI).
	if name != service && service != "bff" {
		own[envName(service, "url")] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	dataDir := filepath.Join(s.dir, name)
	own["REALGUARDIO_DATA_DIR"] = dataDir
	list := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range own {
		list = append(list, k+"="+v)
	}
	p := &proc{t: s.t, name: name, bin: s.bin, args: []string{"serve", service}, env: list,
		url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(s.dir, name+".log")}
	s.procs[name] = p
	s.t.Cleanup(p.kill)
	s.t.Cleanup(func() {
		if b, err := os.ReadFile(p.logPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			s.t.Errorf("%s reported a data race; its log: %s", name, p.logPath)
			_, race, _ := strings.Cut(string(b), "WARNING: DATA RACE")
			s.t.Logf("%s", race[:min(len(race), 6000)])
		}
		if s.t.Failed() {
			s.t.Logf("end of %s's log:\n%s", name, p.tail(25))
		}
	})
}

// names lists the processes in start order.
func (s *System) names() []string {
	var out []string
	for _, n := range serviceNames {
		for _, m := range []string{n, n + "-2"} {
			if _, ok := s.procs[m]; ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// Proc returns process name ("customer", "securitysystem-2", ...).
func (s *System) Proc(name string) *proc {
	p, ok := s.procs[name]
	if !ok {
		panic("faulttest: no process " + name)
	}
	return p
}

// URL returns the base URL of the first instance of service.
func (s *System) URL(service string) string { return s.Proc(service).url }

// endpoints returns the API endpoints, with the Security System Service at
// instance ssName.
func (s *System) endpoints(ssName string) apiclient.Endpoints {
	return apiclient.Endpoints{IAM: s.URL("iam"), Customer: s.URL("customer"), Dealer: s.URL("dealer"),
		Monitoring: s.URL("monitoring"), SecuritySystem: s.Proc(ssName).url}
}

// login logs username in through the IAM's authorization code flow with
// the CLI client, as internal/systemtest does.
func (s *System) login(ctx context.Context, username, password string) (*apiclient.Session, error) {
	p, err := apiclient.Discover(ctx, s.URL("iam"), s.hc)
	if err != nil {
		return nil, err
	}
	return p.Login(ctx, username, password)
}

// mustFirstLogin logs in an account the Customer Service created with the
// initial password: the IAM asks for a new one, and password is chosen
// there, as the employee would.
func (s *System) mustFirstLogin(t *testing.T, username, initial, password string) *apiclient.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := apiclient.Discover(ctx, s.URL("iam"), s.hc)
	if err != nil {
		t.Fatalf("log %s in: %v", username, err)
	}
	se, err := p.LoginChangingPassword(ctx, username, initial, password)
	if err != nil {
		t.Fatalf("log %s in for the first time: %v", username, err)
	}
	return se
}

func (s *System) mustLogin(t *testing.T, username, password string) *apiclient.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := s.login(ctx, username, password)
	if err != nil {
		t.Fatalf("log %s in: %v", username, err)
	}
	return se
}

// client returns an API client of session se on Security System Service
// instance ssName.
func (s *System) client(se *apiclient.Session, ssName string) *apiclient.Client {
	return apiclient.New(s.endpoints(ssName), se, &http.Client{Timeout: 20 * time.Second})
}

// terminateBackends ends every PostgreSQL connection of service's
// database (pg_terminate_backend), as a failover or a restarted server
// does, and returns how many it ended.
func (s *System) terminateBackends(t *testing.T, service string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, s.pgAdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()) t`, s.DatabaseNames[service]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// World is what the cases act on: a customer with one location, systems
// at it, and an employee allowed to view, arm and disarm them.
type World struct {
	Admin, CustAdmin, User *apiclient.Session
	CustomerID, LocationID string
	UserEmployeeID         string
	Systems                []string
	Username, Password     string
	// Initial is the password the customer's accounts are created with;
	// their first login replaces it with Password.
	Initial string
}

// seed creates the world with n systems, waiting (for the strategies fed
// by events) until the user may act on them.
func (s *System) seed(t *testing.T, n int) *World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := &World{Password: "pw-" + randomHex(8), Initial: "initial-" + randomHex(8)}
	w.Admin = s.mustLogin(t, "admin", s.AdminPassword)
	admin := s.client(w.Admin, "securitysystem")
	dom := "@fault" + randomHex(3) + ".test"
	org, err := admin.CreateCustomer(ctx, "Fault Co", apiclient.NewEmployee{Email: "admin" + dom, FirstName: "Cus", LastName: "Admin", Password: w.Initial})
	must(t, err)
	w.CustomerID = org.ID
	w.CustAdmin = s.mustFirstLogin(t, "admin"+dom, w.Initial, w.Password)
	ca := s.client(w.CustAdmin, "securitysystem")
	emp, err := ca.CreateEmployee(ctx, policy.OrgCustomer, org.ID, apiclient.NewEmployee{Email: "user" + dom, FirstName: "Ann", LastName: "User", Password: w.Initial})
	must(t, err)
	w.UserEmployeeID = emp.ID
	loc, err := ca.CreateLocation(ctx, org.ID, "HQ", "")
	must(t, err)
	w.LocationID = loc.ID
	must(t, ca.SetLocationEmployeeRoles(ctx, org.ID, loc.ID, emp.ID, []string{policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer}))
	for i := range n {
		var ss apiclient.SecuritySystem
		err := retryUnknown(ctx, func() error {
			var err error
			ss, err = admin.CreateSecuritySystem(ctx, loc.ID, fmt.Sprintf("system %d", i))
			return err
		})
		must(t, err)
		w.Systems = append(w.Systems, ss.ID)
	}
	w.Username = "user" + dom
	w.User = s.mustFirstLogin(t, w.Username, w.Initial, w.Password)
	user := s.client(w.User, "securitysystem")
	for _, id := range w.Systems {
		waitFor(t, 90*time.Second, "the user may disarm "+id, func() bool {
			_, err := user.Disarm(ctx, id)
			return err == nil
		})
	}
	return w
}

// addEmployee creates another employee of the world's customer with the
// initial password w.Initial and grants it every role at the location; it
// returns its username (log it in with mustFirstLogin).
func (s *System) addEmployee(t *testing.T, w *World, name string) (username string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := s.client(w.CustAdmin, "securitysystem")
	username = name + "-" + randomHex(3) + "@fault.test"
	emp, err := ca.CreateEmployee(ctx, policy.OrgCustomer, w.CustomerID, apiclient.NewEmployee{Email: username, FirstName: "New", LastName: "Hire", Password: w.Initial})
	must(t, err)
	must(t, ca.SetLocationEmployeeRoles(ctx, w.CustomerID, w.LocationID, emp.ID, []string{policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer}))
	return username
}

// retryUnknown repeats call while the service does not know a referenced
// entity yet (it learns it from events).
func retryUnknown(ctx context.Context, call func() error) error {
	for {
		err := call()
		var ae *apiclient.Error
		if err == nil || !errors.As(err, &ae) || !ae.Response.UnknownReference() {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// status is the HTTP status of a call's outcome: 200 for success, the
// service's status for a refusal, 0 when no answer arrived.
func status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		return ae.Status()
	}
	return 0
}

// waitFor polls cond every 50 ms until it holds, failing after timeout;
// it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// recovered logs a recovery figure in one greppable form.
func recovered(t *testing.T, fault string, d time.Duration) {
	t.Helper()
	t.Logf("RECOVERY %s: %s", fault, d.Round(time.Millisecond))
}

// balancer is a round-robin reverse proxy: the one public URL of several
// BFF instances, as a load balancer gives them.
type balancer struct {
	URL      string
	backends []*url.URL
	next     atomic.Uint64
}

func newBalancer(t *testing.T) *balancer {
	t.Helper()
	b := &balancer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.URL = "http://" + ln.Addr().String()
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		target := b.backends[b.next.Add(1)%uint64(len(b.backends))]
		r.SetURL(target)
		r.Out.Host = r.In.Host // the BFF builds its links from its public URL, not Host
	}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}
