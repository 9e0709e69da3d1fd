package orgkithost

import (
	"context"
	"errors"
	"testing"
)

// waitDone runs until its context ends, as a relay or consumer does.
func waitDone(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func TestRunAllStopsTheOthersOnFailure(t *testing.T) {
	boom := errors.New("boom")
	err := RunAll(context.Background(), waitDone, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("RunAll = %v, want %v", err, boom)
	}
}

func TestRunAllIsNilOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RunAll(ctx, waitDone, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }); err != nil {
		t.Fatalf("RunAll = %v, want nil", err)
	}
}
