package sqldb_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// proxy forwards TCP connections to target until killed, when it closes
// its listener and every connection: the database server as a client sees
// it when the server or the network goes away.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proxy) kill() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestPostgresOutageIsUnavailable: with the PostgreSQL server gone (the
// connection closed under the pool and new connections refused), every
// kind of statement fails with an error IsUnavailable recognises, which
// Unavailable turns into an apperr.Unavailable naming only "the
// database"; a wrong statement stays what it is.
func TestPostgresOutageIsUnavailable(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(sqldbtest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	db, err := sqldb.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, testMigrations); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `SELECT no_such_column FROM widgets`)
	if err == nil || sqldb.IsUnavailable(err) {
		t.Fatalf("a wrong statement: %v, want an error that is no outage", err)
	}
	p.kill()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var n int
	for name, err := range map[string]error{
		"exec": func() error {
			_, err := db.ExecContext(ctx, `INSERT INTO widgets (id, name, created_at) VALUES ('a', 'b', 1)`)
			return err
		}(),
		"query": db.QueryRowContext(ctx, `SELECT COUNT(*) FROM widgets`).Scan(&n),
		"tx": db.InTx(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM widgets`)
			return err
		}),
		"ping": db.Ping(ctx),
	} {
		if err == nil {
			t.Fatalf("%s succeeded with the database gone", name)
		}
		if !sqldb.IsUnavailable(err) {
			t.Errorf("%s: %v (%T) is not recognised as an outage", name, err, errors.Unwrap(err))
		}
		ae := apperr.As(sqldb.Unavailable(err))
		if ae == nil || ae.Code != apperr.Unavailable || ae.Message != "the database is unavailable" {
			t.Errorf("%s: Unavailable(%v) = %v", name, err, ae)
		}
	}
}

func TestCanceledIsNoOutage(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, testMigrations)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.Ping(ctx)
	if err == nil || sqldb.IsUnavailable(err) {
		t.Fatalf("a canceled ping: %v, want an error that is no outage", err)
	}
}
