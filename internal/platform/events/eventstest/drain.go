package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// WaitOutboxDrained waits until the relay over db has sent every event
// committed there (none left with sent_at unset), failing the test after
// 30 s: a ready relay may not yet have published a change committed just
// before, so a test that counts the stream waits for this first.
func WaitOutboxDrained(t testing.TB, db *sqldb.DB, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var unsent int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM event_outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil {
			t.Fatal(err)
		}
		if unsent == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %d events not sent", what, unsent)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
