package logging

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// Wrap returns a handler that writes each attribute once and joins log lines
// to traces: attributes added with Logger.With replace earlier ones of the
// same key (a service logger derived from the system's, both naming
// "service", gives one "service"), attributes of the record replace those,
// and a record logged with a context inside a span carries trace_id and
// span_id. Attributes after a WithGroup are passed through unchanged.
func Wrap(h slog.Handler) slog.Handler {
	if _, ok := h.(*handler); ok {
		return h
	}
	return &handler{inner: h}
}

type handler struct {
	inner slog.Handler
	// attrs are the top-level attributes added with WithAttrs, one per
	// key, kept here (not in inner) so that later ones can replace them.
	attrs []slog.Attr
	// grouped is set once a group is open: inner then holds attrs and the
	// group, and WithAttrs goes straight to inner.
	grouped bool
}

// Enabled defers to the wrapped handler.
func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// WithAttrs merges as into the handler's attributes, by key.
func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	if h.grouped {
		return &handler{inner: h.inner.WithAttrs(as), grouped: true}
	}
	return &handler{inner: h.inner, attrs: merge(slices.Clone(h.attrs), as)}
}

// WithGroup hands the attributes so far to the wrapped handler and opens
// the group there.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	inner := h.inner
	if len(h.attrs) > 0 && !h.grouped {
		inner = inner.WithAttrs(h.attrs)
	}
	return &handler{inner: inner.WithGroup(name), grouped: true}
}

// Handle writes r with the handler's attributes, the trace of ctx and the
// record's own attributes, each key once.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	own := make([]slog.Attr, 0, r.NumAttrs()+2)
	r.Attrs(func(a slog.Attr) bool {
		own = merge(own, []slog.Attr{a})
		return true
	})
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		own = merge(own, []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())})
	}
	if h.grouped {
		// Inside a group the record's attributes belong to it; only their
		// duplicates among themselves are dropped.
		out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		out.AddAttrs(own...)
		return h.inner.Handle(ctx, out)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	all := merge(slices.Clone(h.attrs), own)
	out.AddAttrs(all...)
	return h.inner.Handle(ctx, out)
}

// merge adds each of as to dst, replacing the value of an attribute of the
// same key in place, so the first position and the last value win.
func merge(dst, as []slog.Attr) []slog.Attr {
	for _, a := range as {
		if a.Equal(slog.Attr{}) {
			continue
		}
		if i := slices.IndexFunc(dst, func(d slog.Attr) bool { return d.Key == a.Key }); i >= 0 {
			dst[i] = a
			continue
		}
		dst = append(dst, a)
	}
	return dst
}
