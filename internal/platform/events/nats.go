package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
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
// nats://127.0.0.1:4223.
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

type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

// Connect connects to the NATS server at url as name and returns the
// connection and its JetStream handle. The connection reconnects forever
// (a service outlives any NATS outage; the outbox holds events meanwhile)
// and logs each disconnect and reconnect. Connect waits for the first
// connection until ctx ends, so a caller decides how long a start may wait.
func Connect(ctx context.Context, serverURL string, name string, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "nats", "client", name)
	nc, err := nats.Connect(serverURL,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected; reconnecting", "err", err)
			} else {
				log.Info("NATS disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS asynchronous error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(serverURL), ctx.Err())
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

// redactURL hides a password in a NATS URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
