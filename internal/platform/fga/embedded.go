package fga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	grpcruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	httpmiddleware "github.com/openfga/openfga/pkg/middleware/http"
	"github.com/openfga/openfga/pkg/middleware/validator"
	"github.com/openfga/openfga/pkg/server"
	serverErrors "github.com/openfga/openfga/pkg/server/errors"
	"github.com/openfga/openfga/pkg/storage"
	"github.com/openfga/openfga/pkg/storage/memory"
	"github.com/openfga/openfga/pkg/storage/migrate"
	"github.com/openfga/openfga/pkg/storage/sqlcommon"
	"github.com/openfga/openfga/pkg/storage/sqlite"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// DefaultEmbeddedAddr is where `up` serves the embedded OpenFGA HTTP API. It
// is not OpenFGA's usual 8080, so it never collides with an OpenFGA (or
// anything else) already running on the machine.
const DefaultEmbeddedAddr = "127.0.0.1:3005"

// EmbeddedOptions configures StartEmbedded.
type EmbeddedOptions struct {
	// Addr is the TCP address of the HTTP API (DefaultEmbeddedAddr when
	// empty; "127.0.0.1:0" picks a free port). Ignored when Listener is set.
	Addr string
	// Listener, when set, is used instead of listening on Addr, so the
	// wiring can bind every port before starting anything.
	Listener net.Listener
	// Dir is the directory of the persistent store (the file openfga.db,
	// OpenFGA's own SQLite datastore, migrated at start). Empty selects the
	// memory datastore, which forgets everything on Close: for tests only.
	Dir string
	// Logger receives start and stop messages (slog.Default() when nil).
	// OpenFGA's own logs are discarded.
	Logger *slog.Logger
}

// Embedded is an OpenFGA server running inside this process behind its
// real HTTP API (grpc-gateway in front of the gRPC service, as `openfga
// run` serves it), so the Client talks to it exactly as it talks to an
// external deployment.
type Embedded struct {
	log      *slog.Logger
	ds       storage.OpenFGADatastore
	srv      *server.Server
	grpcSrv  *grpc.Server
	conn     *grpc.ClientConn
	httpSrv  *http.Server
	addr     string
	served   chan struct{}
	stopOnce sync.Once
}

// bufSize is the in-memory pipe between the gateway and the gRPC server.
const bufSize = 1 << 20

// StartEmbedded starts an OpenFGA server and returns once its HTTP API
// accepts connections. With a Dir the datastore is OpenFGA's SQLite store
// (pure Go, like the rest of `up`), created and migrated with OpenFGA's own
// migrations on first start and reused afterwards, so tuples survive a
// restart.
func StartEmbedded(ctx context.Context, opts EmbeddedOptions) (*Embedded, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ds, err := openDatastore(opts.Dir)
	if err != nil {
		return nil, err
	}
	e := &Embedded{log: log.With("component", "openfga-embedded"), ds: ds, served: make(chan struct{})}
	e.srv, err = server.NewServerWithOpts(server.WithDatastore(ds))
	if err != nil {
		ds.Close()
		return nil, fmt.Errorf("embedded OpenFGA: %w", err)
	}

	// The gRPC service runs behind the same interceptors `openfga run`
	// puts first (request validation), on an in-memory listener: the only
	// network port is the HTTP API.
	lis := bufconn.Listen(bufSize)
	e.grpcSrv = grpc.NewServer(grpc.ChainUnaryInterceptor(validator.UnaryServerInterceptor()))
	openfgav1.RegisterOpenFGAServiceServer(e.grpcSrv, e.srv)
	go func() { _ = e.grpcSrv.Serve(lis) }()
	e.conn, err = grpc.NewClient("passthrough:///openfga-embedded",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("embedded OpenFGA: gateway connection: %w", err)
	}

	// The gateway options of `openfga run`: the same status codes (201 on
	// create) and the same error bodies ({"code","message"}).
	mux := grpcruntime.NewServeMux(
		grpcruntime.WithForwardResponseOption(httpmiddleware.HTTPResponseModifier),
		grpcruntime.WithErrorHandler(func(c context.Context, _ *grpcruntime.ServeMux, _ grpcruntime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			code := serverErrors.ConvertToEncodedErrorCode(status.Convert(err))
			httpmiddleware.CustomHTTPErrorHandler(c, w, r, serverErrors.NewEncodedError(code, err.Error()))
		}),
	)
	if err := openfgav1.RegisterOpenFGAServiceHandler(ctx, mux, e.conn); err != nil {
		e.stop()
		return nil, fmt.Errorf("embedded OpenFGA: gateway: %w", err)
	}
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"SERVING"}`))
	})
	root.Handle("/", mux)

	ln := opts.Listener
	if ln == nil {
		addr := opts.Addr
		if addr == "" {
			addr = DefaultEmbeddedAddr
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			e.stop()
			return nil, fmt.Errorf("embedded OpenFGA: listen on %s: %w", addr, err)
		}
	}
	e.addr = ln.Addr().String()
	e.httpSrv = &http.Server{Handler: root, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(e.served)
		if err := e.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("embedded OpenFGA: HTTP server stopped", "err", err)
		}
	}()
	store := "memory (not persistent)"
	if opts.Dir != "" {
		store = filepath.Join(opts.Dir, dbFile)
	}
	e.log.Info("embedded OpenFGA started", "url", e.URL(), "store", store)
	return e, nil
}

// dbFile is the SQLite file of the persistent store inside Dir.
const dbFile = "openfga.db"

func openDatastore(dir string) (storage.OpenFGADatastore, error) {
	if dir == "" {
		return memory.New(), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded OpenFGA: data directory: %w", err)
	}
	uri := "file:" + filepath.Join(dir, dbFile)
	// OpenFGA checks the schema version at start, so the migrations (goose,
	// idempotent) run first, every time.
	if err := migrate.RunMigrations(migrate.MigrationConfig{
		Engine: "sqlite", URI: uri, Timeout: 30 * time.Second, PingTimeout: 5 * time.Second,
	}); err != nil {
		return nil, fmt.Errorf("embedded OpenFGA: migrate %s: %w", uri, err)
	}
	ds, err := sqlite.New(uri, sqlcommon.NewConfig())
	if err != nil {
		return nil, fmt.Errorf("embedded OpenFGA: open %s: %w", uri, err)
	}
	return ds, nil
}

// URL returns the base URL of the HTTP API, for example
// "http://127.0.0.1:3005"; it is what a Client is configured with.
func (e *Embedded) URL() string { return "http://" + e.addr }

// Addr returns the address the HTTP API is bound to.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the HTTP API (letting requests in flight finish for up to
// five seconds), the server and the datastore. It is safe to call twice.
func (e *Embedded) Close() error {
	e.stop()
	return nil
}

func (e *Embedded) stop() {
	e.stopOnce.Do(func() {
		if e.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = e.httpSrv.Shutdown(ctx)
			cancel()
			<-e.served
		}
		if e.conn != nil {
			_ = e.conn.Close()
		}
		if e.grpcSrv != nil {
			e.grpcSrv.Stop()
		}
		if e.srv != nil {
			e.srv.Close() // closes the datastore too
		} else {
			e.ds.Close()
		}
		if e.httpSrv != nil {
			e.log.Info("embedded OpenFGA stopped", "addr", e.addr)
		}
	})
}
