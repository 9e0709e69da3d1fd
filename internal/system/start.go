package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// System is a running set of services.
type System struct {
	cfg    Config
	logger *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error

	mu      sync.Mutex
	closers []func() error
	// URLs maps each running service to the base URL it is reached at.
	URLs map[string]string
	// AdminPassword is the bootstrap admin's password when this start
	// generated it, so that it can be printed once.
	AdminPassword string
}

// Start builds and starts the configured services and returns once they
// listen. Stop ends them.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*System, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &System{cfg: cfg, logger: logger, cancel: cancel, errs: make(chan error, 16), URLs: map[string]string{}}
	if err := s.start(runCtx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// start is filled in as services are wired.
func (s *System) start(ctx context.Context) error {
	return errors.New("no services are wired yet")
}

// onClose registers f to run at Stop, in reverse order.
func (s *System) onClose(f func() error) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// goRun runs f in the background until Stop; an error other than at
// shutdown is logged and reported on Errors.
func (s *System) goRun(name string, f func(ctx context.Context) error, ctx context.Context) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("component stopped", "component", name, "err", err)
			select {
			case s.errs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

// Errors reports components that stopped unexpectedly.
func (s *System) Errors() <-chan error { return s.errs }

// Stop shuts every service down and waits for them.
func (s *System) Stop() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PrintWelcome tells the operator where to log in.
func (s *System) PrintWelcome(out io.Writer) {
	fmt.Fprintln(out, "RealGuardIO is running.")
	for _, name := range ServiceNames() {
		if u, ok := s.URLs[name]; ok {
			fmt.Fprintf(out, "  %-15s %s\n", name, u)
		}
	}
}
