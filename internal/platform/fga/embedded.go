package fga

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
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
	// PresharedKey, when set, is required as "Authorization: Bearer <key>"
	// on every API call: OpenFGA's "preshared" authentication method, with
	// its status codes (401) and error bodies. Clients send it as
	// Config.APIToken. Without it any process that can reach the port can
	// write tuples and grant itself any relation, so `up` sets a random one
	// per start. /healthz stays open (it reveals nothing). Required when
	// the address is not a loopback address. Never logged.
	PresharedKey string
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
	addr := opts.Addr
	if opts.Listener != nil {
		addr = opts.Listener.Addr().String()
	} else if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	if opts.PresharedKey == "" && !loopbackAddr(addr) {
		return nil, fmt.Errorf("embedded OpenFGA: refusing to serve on %s without authentication: set a PresharedKey (or listen on 127.0.0.1)", addr)
	}
	ds, err := openDatastore(opts.Dir)
	if err != nil {
		return nil, err
	}
	e := &Embedded{log: log.With("component", "openfga-embedded"), ds: ds, served: make(chan struct{})}
	e.srv, err = server.NewServerWithOpts(serverOptions(ds)...)
	if err != nil {
		ds.Close()
		return nil, fmt.Errorf("embedded OpenFGA: %w", err)
	}

	// The gRPC service runs behind the same interceptors `openfga run`
	// puts first (request validation), on an in-memory listener: the only
	// network port is the HTTP API.
	// With a key, authentication comes first, as in `openfga run`: an
	// unauthenticated request learns nothing, not even validation errors.
	lis := bufconn.Listen(bufSize)
	unary := []grpc.UnaryServerInterceptor{validator.UnaryServerInterceptor()}
	stream := []grpc.StreamServerInterceptor{validator.StreamServerInterceptor()}
	if opts.PresharedKey != "" {
		a := newPresharedKeyAuth(opts.PresharedKey)
		unary = append([]grpc.UnaryServerInterceptor{a.unary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{a.stream}, stream...)
	}
	e.grpcSrv = grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
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
	e.log.Info("embedded OpenFGA started", "url", e.URL(), "store", store, "authentication", opts.PresharedKey != "")
	return e, nil
}

// loopbackAddr reports whether the host of addr can only be reached from
// this machine; an empty host (":3005") means every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// presharedKeyAuth is OpenFGA's "preshared" authentication method, which
// `openfga run` enables with --authn-method preshared. OpenFGA keeps its
// implementation in an internal package, so this is a copy of its
// behaviour: the bearer token of the request (the gateway forwards the
// Authorization header as gRPC metadata) must equal the key, compared as
// SHA-256 digests in constant time so timing reveals neither the key nor
// its length, and a failure is OpenFGA's own auth error code, which the
// gateway turns into 401 with OpenFGA's error body.
type presharedKeyAuth struct {
	keyHash [sha256.Size]byte
}

func newPresharedKeyAuth(key string) *presharedKeyAuth {
	return &presharedKeyAuth{keyHash: sha256.Sum256([]byte(key))}
}

var (
	errMissingBearer   = status.Error(codes.Code(openfgav1.AuthErrorCode_bearer_token_missing), "missing bearer token")
	errUnauthenticated = status.Error(codes.Code(openfgav1.AuthErrorCode_unauthenticated), "unauthenticated")
)

func (a *presharedKeyAuth) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return errMissingBearer
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return errMissingBearer
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], a.keyHash[:]) != 1 {
		return errUnauthenticated
	}
	return nil
}

func (a *presharedKeyAuth) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *presharedKeyAuth) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

// maxConcurrentReads bounds the datastore reads one Check (or
// ListObjects) keeps in flight. OpenFGA's default is unbounded, and its
// guidance is the datastore's connections divided by the concurrent
// requests expected: with sqliteMaxConns (30) and a few decisions at once
// beside the sync's writes and the lists' Reads, 10 lets three Checks
// resolve at full width while nothing else waits for a connection.
const maxConcurrentReads = 10

// serverOptions are the embedded server's settings, as an operator of
// `openfga run` would choose them for this workload (docs/delegate.md,
// "Tuning"). The check-query and iterator caches stay off (OpenFGA's
// default): either would serve a revoked grant until its TTL, and the
// strategy's lists no longer ask a Check per system, which was what made
// them tempting. ListObjects is not used by the strategy; its limits stay
// OpenFGA's defaults (1 000 results, 3 s).
func serverOptions(ds storage.OpenFGADatastore) []server.OpenFGAServiceV1Option {
	return []server.OpenFGAServiceV1Option{
		server.WithDatastore(ds),
		server.WithMaxConcurrentReadsForCheck(maxConcurrentReads),
		server.WithMaxConcurrentReadsForListObjects(maxConcurrentReads),
		server.WithCheckQueryCacheEnabled(false),
		server.WithCheckIteratorCacheEnabled(false),
	}
}

// dbFile is the SQLite file of the persistent store inside Dir.
const dbFile = "openfga.db"

// sqliteMaxConns bounds the SQLite connections of the embedded server, all
// kept idle between requests. OpenFGA holds a connection per open tuple
// iterator while it resolves a Check, so a low bound would make concurrent
// checks wait on each other; 30 is `openfga run`'s default
// (--datastore-max-open-conns), far more than the cores that run the reads.
// Unlike its default of 10 idle, all are kept: SQLite connections are
// cheap to keep and costly to open.
const sqliteMaxConns = 30

func openDatastore(dir string) (storage.OpenFGADatastore, error) {
	if dir == "" {
		return memory.New(memory.WithMaxTuplesPerWrite(EmbeddedMaxTuplesPerWrite)), nil
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
	// sqlite.New would open the database with database/sql's defaults
	// (it ignores the pool settings of its config): at most 2 idle
	// connections, so under a large BatchCheck's tens of concurrent reads
	// most connections were opened (file, WAL, pragmas) and closed again
	// per query. Readers do not block each other in WAL mode
	// (PrepareDSN's default); writers still take SQLite's one write lock,
	// with busy_timeout.
	dsn, err := sqlite.PrepareDSN(uri)
	if err != nil {
		return nil, fmt.Errorf("embedded OpenFGA: open %s: %w", uri, err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("embedded OpenFGA: open %s: %w", uri, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	if err := seedPlannerStats(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded OpenFGA: planner statistics of %s: %w", uri, err)
	}
	ds, err := sqlite.NewWithDB(db, sqlcommon.NewConfig(sqlcommon.WithMaxTuplesPerWrite(EmbeddedMaxTuplesPerWrite)))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded OpenFGA: open %s: %w", uri, err)
	}
	return ds, nil
}

// tupleStats are planner statistics (sqlite_stat1 rows) describing the
// tuple table of a large store: a million tuples, in one store, of a few
// object types and relations, each user holding a handful. Without any,
// SQLite plans OpenFGA's Read (WHERE store = ? AND object_type = ? AND
// ... AND user_object_id = ? ORDER BY ulid LIMIT 51) on idx_store_ulid,
// which avoids the sort by walking every tuple of the store in ulid order:
// each Read of a user's few tuples read the whole store (a list page asks
// several), and the cost grew with the platform. With them it reads
// idx_reverse_lookup_user, the user's own tuples, and sorts those; the
// Checks' lookups by object keep their indexes. Fixed numbers rather than
// ANALYZE: the plans stay the same whatever the store holds when the
// server starts (an empty one at the first start), and no start scans a
// million rows (sqlite.org, "Manual control of query plans using
// SQLITE_STAT tables").
//
// The two partial indexes (idx_tuple_partial_user, _userset) get no
// statistics: with them SQLite answered a DELETE of several tuples (an OR
// of full keys, as every Write with more than one delete is) through those
// indexes and removed fewer rows than the Write had found, which OpenFGA
// reports as a 500 (TestWriteDeletesSeveralTuplesOnSQLite).
var tupleStats = map[string]string{
	"idx_reverse_lookup_user":  "1000000 1000000 200000 50000 50000 5 5",
	"sqlite_autoindex_tuple_1": "1000000 1000000 200000 3 2 1 1 1",
	"idx_store_ulid":           "1000000 1000000 1",
	"idx_tuple_ulid":           "1000000 1",
}

// seedPlannerStats writes tupleStats into sqlite_stat1 (created by an
// ANALYZE of the one-row store table) and reloads them, before the
// datastore's connections open and read them.
func seedPlannerStats(db *sql.DB) error {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ANALYZE store`); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM sqlite_stat1 WHERE tbl = 'tuple'`); err != nil {
		return err
	}
	for idx, stat := range tupleStats {
		if _, err := conn.ExecContext(ctx, `INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('tuple', ?, ?)`, idx, stat); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, `ANALYZE sqlite_schema`)
	return err
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
