package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultEmbeddedPort is the port `up` gives its embedded NATS server. It
// is not NATS's usual 4222, so an embedded server never collides with a
// NATS already running on the machine.
const DefaultEmbeddedPort = 4223

// EmbeddedOptions configures StartEmbeddedNATS.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its streams, a directory under the
	// data directory; it is required so events survive a restart.
	StoreDir string
	// Host is the listen address (127.0.0.1 when empty, so the embedded
	// server is never reachable from other machines by accident).
	Host string
	// Port is the client port; -1 or 0 picks a free one (tests), `up` uses
	// DefaultEmbeddedPort.
	Port int
	// ServerName names the server; it must stay the same across restarts on
	// one StoreDir ("realguardio" when empty).
	ServerName string
	// Logger receives the server's log at matching levels; nil keeps the
	// server silent.
	Logger *slog.Logger
	// Token, when set, is required from every client (NATS token
	// authentication; clients pass it with WithToken or as the user of
	// the URL, nats://TOKEN@host:port). Without it any process that can
	// reach the port may publish forged events (a role grant, say) or read
	// every stream, so `up` sets a random one per start. It is never
	// logged. Tests use it; `up` uses Users instead (one of the two, or
	// neither on a loopback address).
	Token string
	// Users, when set, are the only identities the server accepts, each
	// with its own password and subject permissions (Grant.Permissions):
	// `up` generates one per service at every start, so each service can
	// publish only its own stream's events, exactly as on an external
	// server configured from deploy/README.md. Passwords are never logged.
	Users []EmbeddedUser
}

// EmbeddedUser is one identity of the embedded server.
type EmbeddedUser struct {
	// Name is the NATS user name (Grant.Identity).
	Name string
	// Password is its password (RandomPassword).
	Password string
	// Permissions are what it may publish and subscribe to.
	Permissions Permissions
}

// EmbeddedNATS is a NATS server with JetStream running inside this process:
// the default event bus of `up` and of tests, so nothing but the binary is
// needed to run the system.
type EmbeddedNATS struct {
	srv *server.Server
}

// StartEmbeddedNATS starts a NATS server with JetStream enabled and returns
// once it accepts connections.
func StartEmbeddedNATS(opts EmbeddedOptions) (*EmbeddedNATS, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded NATS: StoreDir is required")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if opts.Token != "" && len(opts.Users) > 0 {
		return nil, errors.New("embedded NATS: set a Token or Users, not both")
	}
	if opts.Token == "" && len(opts.Users) == 0 && !isLoopback(host) {
		return nil, fmt.Errorf("embedded NATS: refusing to listen on %s without authentication: set Users or a Token (or listen on 127.0.0.1)", host)
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := opts.ServerName
	if name == "" {
		name = "realguardio"
	}
	sopts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      opts.Logger == nil,
		// Token authentication for every client connection; empty leaves
		// the (loopback-only) server open, as tests use it.
		Authorization: opts.Token,
	}
	for _, u := range opts.Users {
		if u.Name == "" || u.Password == "" {
			return nil, errors.New("embedded NATS: every user needs a name and a password")
		}
		sopts.Users = append(sopts.Users, &server.User{
			Username: u.Name,
			Password: u.Password,
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: u.Permissions.Publish},
				Subscribe: &server.SubjectPermission{Allow: u.Permissions.Subscribe},
			},
		})
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(serverLogger{opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready to accept connections on %s", net.JoinHostPort(host, strconv.Itoa(opts.Port)))
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errors.New("embedded NATS: JetStream did not start (see the server log)")
	}
	return &EmbeddedNATS{srv: srv}, nil
}

// ClientURL returns the URL clients connect to, for example
// nats://127.0.0.1:4223. It never holds the token, so it may be logged;
// clients of a server with a Token pass it with WithToken.
func (e *EmbeddedNATS) ClientURL() string { return e.srv.ClientURL() }

// Port returns the client port actually bound, so a test can restart a
// server on the same port after shutting it down.
func (e *EmbeddedNATS) Port() int {
	if addr, ok := e.srv.Addr().(*net.TCPAddr); ok {
		return addr.Port
	}
	return 0
}

// Shutdown stops the server and waits until it has stopped, so its store
// directory can be reopened at once.
func (e *EmbeddedNATS) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// isLoopback reports whether host (a name or an IP literal) can only be
// reached from this machine. Only "localhost" is trusted among names: any
// other name may resolve to a public address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

// ConnectOption adds credentials or settings to Connect.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	token string
	creds Credentials
}

// WithToken authenticates with a NATS token (the embedded server's
// EmbeddedOptions.Token). A token can also be given as the user of the URL,
// nats://TOKEN@host:port; use one or the other.
func WithToken(token string) ConnectOption {
	return func(o *connectOptions) { o.token = token }
}

// Credentials are how a service authenticates to NATS and what it trusts.
// At most one of User/Password, CredsFile and NKeySeedFile is used; secrets
// come from files or the environment, never from the command line shown in
// a process list (see internal/system's --nats-* settings).
type Credentials struct {
	// Identity names the service's identity; when set, the connection's
	// inbox prefix is InboxPrefix(Identity), the only inbox its
	// permissions let it subscribe to.
	Identity string
	// User and Password authenticate with a user and password.
	User, Password string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed,
	// as `nsc` writes them), for servers in operator mode.
	CredsFile string
	// NKeySeedFile is a file holding an nkey seed (SU...), for servers
	// configured with nkey users.
	NKeySeedFile string
	// CAFile is a PEM file of the certificate authorities that sign the
	// server's certificate; setting it (or CertFile) requires TLS.
	CAFile string
	// CertFile and KeyFile are a client certificate and key, for servers
	// that verify clients by TLS.
	CertFile, KeyFile string
}

// WithCredentials authenticates with c and applies its TLS settings.
func WithCredentials(c Credentials) ConnectOption {
	return func(o *connectOptions) { o.creds = c }
}

func (c Credentials) options() ([]nats.Option, error) {
	var out []nats.Option
	n := 0
	if c.User != "" || c.Password != "" {
		if c.User == "" || c.Password == "" {
			return nil, errors.New("NATS credentials: a user needs a password, and a password a user")
		}
		out = append(out, nats.UserInfo(c.User, c.Password))
		n++
	}
	if c.CredsFile != "" {
		out = append(out, nats.UserCredentials(c.CredsFile))
		n++
	}
	if c.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS nkey seed file %s: %w", c.NKeySeedFile, err)
		}
		out = append(out, opt)
		n++
	}
	if n > 1 {
		return nil, errors.New("NATS credentials: give one of a user and password, a credentials file or an nkey seed file")
	}
	if c.Identity != "" {
		out = append(out, nats.CustomInboxPrefix(InboxPrefix(c.Identity)))
	}
	if c.CAFile != "" {
		out = append(out, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("NATS TLS: a client certificate needs its key, and a key its certificate")
		}
		out = append(out, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	if c.CAFile != "" || c.CertFile != "" {
		out = append(out, nats.Secure())
	}
	return out, nil
}

// Connect connects to the NATS server at url as name and returns the
// connection and its JetStream handle. Credentials come from the URL
// (nats://TOKEN@host:port or nats://user:password@host:port) or from
// opts. The connection reconnects forever (a service outlives any NATS
// outage; the outbox holds events meanwhile) and logs each disconnect and
// reconnect. Connect waits for the first connection until ctx ends, so a
// caller decides how long a start may wait; refused credentials end the
// wait at once, since waiting cannot fix them.
func Connect(ctx context.Context, serverURL string, name string, logger *slog.Logger, opts ...ConnectOption) (*nats.Conn, jetstream.JetStream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var co connectOptions
	for _, o := range opts {
		o(&co)
	}
	log := logger.With("component", "nats", "client", name)
	natsOpts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A server that dies without closing the connection (a lost
		// machine, a network partition) is noticed by unanswered pings:
		// with a ping every two seconds and two outstanding allowed, the
		// client reconnects to another server within about six seconds
		// (the default, two minutes, would leave the service publishing
		// and consuming nothing for that long).
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected; reconnecting", "err", err)
			} else {
				log.Info("NATS disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			// Our own redaction: the library's hides a password but not a
			// token given as the URL's user.
			log.Info("NATS reconnected", "url", RedactURL(c.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS asynchronous error", "subject", subj, "err", err)
		}),
	}
	if co.token != "" {
		natsOpts = append(natsOpts, nats.Token(co.token))
	}
	credOpts, err := co.creds.options()
	if err != nil {
		return nil, nil, err
	}
	natsOpts = append(natsOpts, credOpts...)
	nc, err := nats.Connect(serverURL, natsOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(serverURL), err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		if last := nc.LastError(); last != nil && isAuthError(last) {
			nc.Close()
			return nil, nil, fmt.Errorf("connect to NATS at %s: credentials refused: %w", RedactURL(serverURL), last)
		}
		select {
		case <-ctx.Done():
			last := nc.LastError()
			nc.Close()
			if last != nil {
				return nil, nil, fmt.Errorf("connect to NATS at %s: %w (last error: %v)", RedactURL(serverURL), ctx.Err(), last)
			}
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(serverURL), ctx.Err())
		case <-tick.C:
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	return nc, js, nil
}

// isAuthError reports whether err is the server refusing our credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// RedactURL hides the credentials of a NATS URL, or of a comma-separated
// list of them (a password, or a token given as the URL's user), so that
// it can be logged or printed; the wiring uses it for every URL it shows.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// It may still hold a secret; show none of it.
		return "(unparsable NATS URL)"
	}
	if u.User == nil {
		return raw
	}
	if _, hasPassword := u.User.Password(); !hasPassword {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return u.Redacted()
}

// MinServerVersion is the oldest NATS server RealGuardIO runs on: it needs
// JetStream's stream replica changes and multi-filter consumers of 2.10.
const MinServerVersion = "2.10.0"

// CheckServerVersion returns an error naming the server's version when the
// server nc is connected to is older than MinServerVersion.
func CheckServerVersion(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if !versionAtLeast(v, MinServerVersion) {
		return fmt.Errorf("NATS server at %s is version %q; RealGuardIO needs nats-server %s or newer", RedactURL(nc.ConnectedUrl()), v, MinServerVersion)
	}
	return nil
}

// versionAtLeast compares dotted versions ("2.9.10" < "2.10.0"); a
// version that does not parse is never new enough.
func versionAtLeast(v, minimum string) bool {
	parse := func(s string) ([3]int, bool) {
		var out [3]int
		s = strings.TrimPrefix(s, "v")
		if i := strings.IndexAny(s, "-+"); i >= 0 {
			s = s[:i]
		}
		parts := strings.Split(s, ".")
		if len(parts) < 2 || len(parts) > 3 {
			return out, false
		}
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 {
				return out, false
			}
			out[i] = n
		}
		return out, true
	}
	a, ok := parse(v)
	b, _ := parse(minimum)
	if !ok {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

// ClusterSize returns the number of NATS servers of the cluster nc is
// connected to, as the servers announce them (1 for a server alone), the
// basis of the default stream replica count (DefaultReplicas).
func ClusterSize(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, u := range nc.Servers() {
		seen[u] = true
	}
	return max(len(seen), 1)
}

// DefaultReplicas is the replica count of the streams on a cluster of size
// servers: three (a stream survives the loss of any one server) from three
// servers on, one below.
func DefaultReplicas(size int) int {
	if size >= 3 {
		return 3
	}
	return 1
}
