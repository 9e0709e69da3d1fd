package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// ReadyCheck reports whether one dependency of a service is usable; /readyz
// runs every check and answers 503 when any required one fails.
type ReadyCheck struct {
	// Name names the dependency ("database", "iam", "nats", "openfga",
	// a consumer) in the answer.
	Name  string
	Check func(ctx context.Context) error
	// Optional marks a dependency the service keeps serving without (the
	// IAM of a resource server, which validates tokens with the keys it
	// holds): its failure is reported and makes the status "degraded",
	// still 200, since taking every instance out of the load balancer
	// would stop what still works.
	Optional bool
}

// Ops carries what the operational endpoints of one service need.
type Ops struct {
	// Service names the service in logs and metric labels.
	Service string
	// Registry receives the service's metrics; each service has its own so
	// that services running in one process (`up`) never collide.
	Registry *prometheus.Registry
	// Ready lists the checks of /readyz.
	Ready []ReadyCheck
	// Logger is the service's logger.
	Logger *slog.Logger
}

// NewRegistry returns a registry with the Go runtime and process collectors,
// as every service exposes them.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler wraps app with the operational endpoints (/healthz, /readyz,
// /metrics) and the shared middleware: panic recovery, a request id, a
// per-request logger, access logs and request metrics.
func (o *Ops) Handler(app http.Handler) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = NewRegistry()
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_http_requests_total",
		Help: "HTTP requests handled, by method, route pattern and status.",
	}, []string{"method", "route", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "realguardio_http_request_duration_seconds",
		Help:    "HTTP request latency, by method and route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method", "route"})
	o.Registry.MustRegister(requests, duration)

	mux := NewMux(o.Service)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": o.Service})
	})
	mux.HandleFunc("GET /readyz", o.readyz)
	// OpenMetrics, when the scraper asks for it, carries the exemplars
	// (trace ids) of the latency histogram.
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry, EnableOpenMetrics: true}))
	mux.Handle("/", app)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if reqID == "" || len(reqID) > 64 {
			reqID = uuid.NewString()
		}
		logger := o.Logger.With("request_id", reqID)
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			// Lines logged without their context still join the trace.
			logger = logger.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
		}
		r = r.WithContext(WithLogger(r.Context(), logger))
		r, slot := withRouteSlot(r)
		w.Header().Set("X-Request-Id", reqID)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, r, apperr.New(apperr.Internal, "panic"))
				}
			}
			route := routeOf(r, slot)
			nameSpan(r.Context(), route)
			elapsed := time.Since(start)
			requests.WithLabelValues(r.Method, route, strconv.Itoa(rec.status)).Inc()
			observe(duration.WithLabelValues(r.Method, route), r.Context(), elapsed.Seconds())
			if route != "GET /metrics" && route != "GET /healthz" && route != "GET /readyz" {
				logger.DebugContext(r.Context(), "http request", "method", r.Method, "route", route, "status", rec.status, "duration", elapsed)
			}
		}()
		mux.ServeHTTP(rec, r)
	})
}

// readyz runs every check. The answer names each dependency and what is
// wrong with it in words a check chose (an apperr's message, which never
// holds a host, user or database name), or only "unavailable"; the
// underlying error, which may name them, goes to the log.
func (o *Ops) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := map[string]string{}
	ready, degraded := true, false
	for _, c := range o.Ready {
		err := c.Check(ctx)
		if err == nil {
			results[c.Name] = "ok"
			continue
		}
		results[c.Name] = readyMessage(err)
		o.Logger.WarnContext(ctx, "readiness check failed", "check", c.Name, "optional", c.Optional, "err", err)
		if c.Optional {
			degraded = true
		} else {
			ready = false
		}
	}
	status := http.StatusOK
	state := "ready"
	switch {
	case !ready:
		status = http.StatusServiceUnavailable
		state = "not ready"
	case degraded:
		state = "degraded"
	}
	WriteJSON(w, status, map[string]any{"status": state, "service": o.Service, "checks": results})
}

// readyMessage is what /readyz shows of a failed check: the message of an
// apperr that is not Internal, "unavailable" for an Internal one,
// "unreachable" for a network or database connection error (whose text
// names hosts, users and databases), and the error's own text otherwise
// (the checks' plain errors name streams and consumers, nothing secret).
func readyMessage(err error) string {
	if ae := apperr.As(sqldb.Unavailable(err)); ae != nil {
		if ae.Code != apperr.Internal && ae.Message != "" {
			return ae.Message
		}
		return "unavailable"
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return "unreachable"
	}
	return err.Error()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status = code
		s.wrote = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Server is one service's HTTP listener.
type Server struct {
	// Name identifies the service in logs.
	Name string
	// Listener is already bound, so callers learn the port (tests bind :0)
	// before serving starts.
	Listener net.Listener
	// Handler serves requests.
	Handler http.Handler
	// Logger receives lifecycle messages.
	Logger *slog.Logger
}

// Listen binds addr and returns a Server that will serve h on it.
func Listen(name, addr string, h http.Handler, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	return &Server{Name: name, Listener: ln, Handler: h, Logger: logger}, nil
}

// URL returns the http URL of the bound listener, with "localhost" as host
// when it listens on a loopback or unspecified address.
func (s *Server) URL() string {
	addr := s.Listener.Addr().(*net.TCPAddr)
	host := "localhost"
	if !addr.IP.IsLoopback() && !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Serve serves until ctx is cancelled, then shuts down gracefully, giving
// in-flight requests up to 10 seconds.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.Listener) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("%s: serve: %w", s.Name, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("%s: shutdown: %w", s.Name, err)
	}
	return nil
}

// Reachable returns a readiness check that GETs rawURL with client (nil
// means a client with a 2 s timeout) and fails unless the server answers
// below 500. It is how a service reports a dependency whose data it holds
// in a cache (the IAM's keys or discovery document): the cache would say
// "ok" long after the dependency died. what names the dependency in the
// failure ("the IAM Service").
func Reachable(what, rawURL string, client *http.Client) func(ctx context.Context) error {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "%s has an unusable URL", what)
		}
		resp, err := client.Do(req)
		if err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "%s is unreachable", what)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return apperr.New(apperr.Unavailable, "%s answered %d", what, resp.StatusCode)
		}
		return nil
	}
}
