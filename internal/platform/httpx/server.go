package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// ReadyCheck reports whether one dependency of a service is usable; /readyz
// runs every check and answers 503 when any fails.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
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

	mux := http.NewServeMux()
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

func (o *Ops) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := map[string]string{}
	ok := true
	for _, c := range o.Ready {
		if err := c.Check(ctx); err != nil {
			ok = false
			results[c.Name] = err.Error()
		} else {
			results[c.Name] = "ok"
		}
	}
	status := http.StatusOK
	state := "ready"
	if !ok {
		status = http.StatusServiceUnavailable
		state = "not ready"
	}
	WriteJSON(w, status, map[string]any{"status": state, "service": o.Service, "checks": results})
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
