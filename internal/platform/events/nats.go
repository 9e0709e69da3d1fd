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
	// logged. Required when Host is not a loopback address.
	Token string
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
	if opts.Token == "" && !isLoopback(host) {
		return nil, fmt.Errorf("embedded NATS: refusing to listen on %s without authentication: set a Token (or listen on 127.0.0.1)", host)
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
}

// WithToken authenticates with a NATS token (the embedded server's
// EmbeddedOptions.Token). A token can also be given as the user of the URL,
// nats://TOKEN@host:port; use one or the other.
func WithToken(token string) ConnectOption {
	return func(o *connectOptions) { o.token = token }
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
