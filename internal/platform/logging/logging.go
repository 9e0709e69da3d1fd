// Package logging configures log/slog for RealGuardIO: human-readable text
// on a terminal, JSON otherwise, so that logs are pleasant in development and
// machine-readable in production without a setting.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
)

// Format selects the log encoding.
type Format string

// The accepted formats. Auto picks text on a terminal and JSON otherwise.
const (
	Auto Format = "auto"
	Text Format = "text"
	JSON Format = "json"
)

// ParseLevel parses a level name (debug, info, warn, error).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// New returns a logger writing to w in the given format at the given level,
// each attribute once and joined to the trace of its context (see Wrap).
func New(w io.Writer, format Format, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case Auto, "":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			return slog.New(Wrap(slog.NewTextHandler(w, opts))), nil
		}
		return slog.New(Wrap(slog.NewJSONHandler(w, opts))), nil
	case Text:
		return slog.New(Wrap(slog.NewTextHandler(w, opts))), nil
	case JSON:
		return slog.New(Wrap(slog.NewJSONHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("unknown log format %q (want auto, text or json)", format)
	}
}
