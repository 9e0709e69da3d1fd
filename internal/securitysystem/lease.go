package securitysystem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Lease kinds in securitysystem_leases: a running instance of the service,
// and a rebuild of what its consumers feed. Any number of service leases
// may be live at once (several instances share a database); a rebuild
// lease excludes every service lease and every other rebuild.
const (
	leaseService = "service"
	leaseRebuild = "rebuild"
)

// LeaseTTL is how long a lease outlives its last renewal: a process that
// dies without releasing it stops blocking the other kind after this.
// Leases are renewed every LeaseTTL/5.
const LeaseTTL = 5 * time.Second

// BusyError says a lease could not be taken because a process of the other
// kind holds one: a running service for a rebuild, a rebuild for a
// starting service.
type BusyError struct {
	// Kind is the kind of the lease in the way ("service" or "rebuild").
	Kind string
	// Host and PID name the process holding it.
	Host string
	PID  int64
	// Renewed is when that process last renewed it.
	Renewed time.Time
	// Age is how long ago that was, when the lease was found.
	Age time.Duration
}

// Error says what holds the lease and what the operator does about it.
func (e *BusyError) Error() string {
	age := e.Age.Round(time.Second) / time.Second
	if e.Kind == leaseService {
		return fmt.Sprintf("the Security System Service is running (lease held by %s/%d, renewed %d s ago); stop it first", e.Host, e.PID, age)
	}
	return fmt.Sprintf("a rebuild is running against the Security System Service's database (lease held by %s/%d, renewed %d s ago); wait for it to finish", e.Host, e.PID, age)
}

// lease is one held row of securitysystem_leases.
type lease struct {
	db       *sqldb.DB
	holder   string
	kind     string
	conflict func(kind string) bool
	ttl      time.Duration
	logger   *slog.Logger
}

// acquireLease records this process as a holder of kind and then checks
// for live leases of a conflicting kind; on a conflict it removes its own
// row again and returns a *BusyError. Inserting before checking makes two
// racing processes of conflicting kinds see each other (at worst both
// refuse), never neither.
func acquireLease(ctx context.Context, db *sqldb.DB, kind string, logger *slog.Logger) (*lease, error) {
	l := &lease{db: db, holder: uuid.NewString(), kind: kind, ttl: LeaseTTL, logger: logger}
	l.conflict = func(other string) bool { return kind == leaseRebuild || other == leaseRebuild }
	if err := l.take(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lease) take(ctx context.Context) error {
	host, _ := os.Hostname()
	now := time.Now()
	// Rows of processes long dead are of no use to anyone.
	if _, err := l.db.ExecContext(ctx, `DELETE FROM securitysystem_leases WHERE expires_at < ?`, sqldb.Micros(now.Add(-time.Minute))); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO securitysystem_leases (holder, kind, host, pid, renewed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		l.holder, l.kind, host, os.Getpid(), sqldb.Micros(now), sqldb.Micros(now.Add(l.ttl))); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	rows, err := l.db.QueryContext(ctx, `SELECT kind, host, pid, renewed_at FROM securitysystem_leases WHERE holder <> ? AND expires_at >= ? ORDER BY renewed_at DESC`,
		l.holder, sqldb.Micros(now))
	if err != nil {
		l.release()
		return fmt.Errorf("lease: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b BusyError
		var renewed int64
		if err := rows.Scan(&b.Kind, &b.Host, &b.PID, &renewed); err != nil {
			l.release()
			return fmt.Errorf("lease: %w", err)
		}
		if l.conflict(b.Kind) {
			rows.Close()
			l.release()
			b.Renewed = sqldb.FromMicros(renewed)
			b.Age = max(now.Sub(b.Renewed), 0)
			return &b
		}
	}
	if err := rows.Err(); err != nil {
		l.release()
		return fmt.Errorf("lease: %w", err)
	}
	return nil
}

// keep renews the lease until ctx ends, then releases it. A renewal that
// finds the lease expired (the database was out of reach for longer than
// the TTL) takes it again, checking for conflicts anew: a
// rebuild may have started meanwhile, and then keep returns its
// *BusyError so the holder stops rather than run beside it.
func (l *lease) keep(ctx context.Context) error {
	defer l.release()
	tick := time.NewTicker(l.ttl / 5)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now()
		res, err := l.db.ExecContext(ctx, `UPDATE securitysystem_leases SET renewed_at = ?, expires_at = ? WHERE holder = ? AND expires_at >= ?`,
			sqldb.Micros(now), sqldb.Micros(now.Add(l.ttl)), l.holder, sqldb.Micros(now))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.logger.Warn("lease: renew", "kind", l.kind, "err", err)
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			// Expired: whoever looked meanwhile saw no lease, so it is
			// taken anew, conflicts checked, not silently revived.
			l.release()
			if err := l.take(ctx); err != nil {
				var busy *BusyError
				if errors.As(err, &busy) {
					return err
				}
				l.logger.Warn("lease: take again", "kind", l.kind, "err", err)
			}
		}
	}
}

// release deletes the row, so the other kind may start at once after a
// clean stop.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.db.ExecContext(ctx, `DELETE FROM securitysystem_leases WHERE holder = ?`, l.holder); err != nil {
		l.logger.Warn("lease: release", "kind", l.kind, "err", err)
	}
}
