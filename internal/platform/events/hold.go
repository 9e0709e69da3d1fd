package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// HoldLeases takes the lease of every stream of the consumer for this
// instance before it runs, and renews them until release is called. An
// operation that must not run beside another instance of the consumer (a
// rebuild: Reset, Run until caught up, then work outside the consumer
// such as correcting a remote store) holds them throughout, so no
// instance started meanwhile can take a stream in one of the gaps. Reset
// and Run of this consumer proceed while it holds them: Reset keeps them,
// Run takes them over as the same holder (without the wait of a takeover)
// and leaves them held when it ends. When another instance holds a live
// lease, HoldLeases returns a *RunningError and holds nothing. Call
// release after Run returned: it stops the renewals and gives the leases
// back, so a service started afterwards takes over at once.
func (c *Consumer) HoldLeases(ctx context.Context) (release func(), err error) {
	var taken []string
	giveBack := func() {
		c.holding.Store(false)
		for _, s := range taken {
			c.releaseLease(s)
		}
	}
	for _, stream := range c.cfg.Streams {
		if err := c.ensureStreamRow(ctx, stream); err != nil {
			giveBack()
			return nil, fmt.Errorf("events consumer %s: %w", c.cfg.Name, err)
		}
		held, _, err := c.tryLease(ctx, stream)
		if err != nil {
			giveBack()
			return nil, fmt.Errorf("events consumer %s: %w", c.cfg.Name, err)
		}
		if !held {
			giveBack()
			return nil, c.runningError(ctx, stream)
		}
		taken = append(taken, stream)
	}
	c.holding.Store(true)
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(consumerLeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
			}
			until := sqldb.Micros(time.Now().Add(consumerLeaseTTL))
			for _, stream := range taken {
				// A failed renewal (a busy database) is retried at the
				// next tick, as renewLease does.
				rctx, cancel := context.WithTimeout(renewCtx, consumerLeaseTTL)
				_, _ = c.cfg.DB.ExecContext(rctx, `UPDATE event_consumer_streams SET lease_until = ? WHERE consumer = ? AND stream = ? AND holder = ?`,
					until, c.cfg.Name, stream, c.holder)
				cancel()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			<-done
			giveBack()
		})
	}, nil
}

// runningError describes the live lease of stream that another instance
// holds.
func (c *Consumer) runningError(ctx context.Context, stream string) error {
	var holder string
	var until int64
	err := c.cfg.DB.QueryRowContext(ctx, `SELECT holder, lease_until FROM event_consumer_streams WHERE consumer = ? AND stream = ?`,
		c.cfg.Name, stream).Scan(&holder, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("events consumer %s: the lease row of %s vanished", c.cfg.Name, stream)
	}
	if err != nil {
		return fmt.Errorf("events consumer %s: read the lease of %s: %w", c.cfg.Name, stream, err)
	}
	return &RunningError{Consumer: c.cfg.Name, Holder: holder, Stream: stream, Until: sqldb.FromMicros(until)}
}
