package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RebuildProgress is how far a rebuild's replay of its source streams is,
// as reported while it runs. The replica's and the OpenFGA tuples'
// rebuilds report it alike, so one progress printer serves both.
type RebuildProgress struct {
	// Done is the number of events of the source streams replayed so far.
	Done int64
	// Total is the number of events the source streams hold (it grows if
	// the owners publish meanwhile).
	Total int64
	// Elapsed is the time since the replay started.
	Elapsed time.Duration
	// Final marks the last report, made once the replay caught up.
	Final bool
}

// RebuildOptions are a rebuild's reporting options.
type RebuildOptions struct {
	// Every is the interval between progress reports (0: only the final).
	Every time.Duration
	// Progress receives the reports; nil reports nothing.
	Progress func(RebuildProgress)
}

// RebuildOption configures a rebuild.
type RebuildOption func(*RebuildOptions)

// WithRebuildProgress calls fn about every interval with the replay's
// progress, and once more when the replay has caught up.
func WithRebuildProgress(every time.Duration, fn func(RebuildProgress)) RebuildOption {
	return func(o *RebuildOptions) { o.Every, o.Progress = every, fn }
}

// RebuildOptionsOf applies opts.
func RebuildOptionsOf(opts []RebuildOption) RebuildOptions {
	var o RebuildOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// HorizonError says a rebuild was refused, before anything changed,
// because a source stream no longer holds its oldest events (its age
// limit, 30 days by default, removed them): a replay would leave out every
// fact not changed since, and the rebuilt state would deny what its owners
// still grant.
type HorizonError struct {
	// Stream names the stream.
	Stream string
	// FirstSeq is the sequence of the oldest event it still holds.
	FirstSeq uint64
	// FirstTime is when that event was stored.
	FirstTime time.Time
	// Restore says what the operator restores from backups instead, and
	// what to start so that it catches up from the streams.
	Restore string
}

// Error names the stream and what the operator does instead.
func (e *HorizonError) Error() string {
	return fmt.Sprintf("stream %s no longer holds its oldest events (it starts at sequence %d, stored %s; the age limit removed the older ones): "+
		"a replay would leave out every fact not changed since, so nothing was rebuilt; restore %s, which catches up from the streams",
		e.Stream, e.FirstSeq, e.FirstTime.UTC().Format(time.RFC3339), e.Restore)
}

// CheckHorizon returns a *HorizonError, carrying restore, for the first of
// streams that lost its oldest events; op prefixes other failures. A
// stream that does not exist yet holds nothing to lose.
func CheckHorizon(ctx context.Context, js jetstream.JetStream, op string, streams []string, restore string) error {
	for _, name := range streams {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: stream %s: %w", op, name, err)
		}
		if state := st.CachedInfo().State; state.FirstSeq > 1 {
			return &HorizonError{Stream: name, FirstSeq: state.FirstSeq, FirstTime: state.FirstTime, Restore: restore}
		}
	}
	return nil
}
