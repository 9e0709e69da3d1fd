package system

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Run starts the configured services and blocks until ctx ends, then shuts
// everything down gracefully.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, out io.Writer) error {
	sys, err := Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	sys.PrintWelcome(out)
	if cfg.Demo {
		sys.LoadDemo(ctx, out)
	}
	<-ctx.Done()
	logger.Info("shutting down")
	return sys.Stop()
}

// randomSecret returns n random bytes, base64url encoded.
func randomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// withDatabase returns the PostgreSQL server URL base pointing at database
// name.
func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

// openDatabase opens service name's database, creating the PostgreSQL
// database first when the system was given only a server URL.
func openDatabase(ctx context.Context, cfg Config, name string) (*sqldb.DB, error) {
	dbURL := cfg.databaseURL(name)
	if cfg.ServiceDatabaseURLs[name] == "" && cfg.DatabaseURL != "" {
		if err := ensurePostgresDatabase(ctx, cfg.DatabaseURL, "realguardio_"+name); err != nil {
			return nil, err
		}
	}
	db, err := sqldb.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", name, err)
	}
	return db, nil
}

func ensurePostgresDatabase(ctx context.Context, server, name string) error {
	admin, err := sqldb.Open(ctx, server)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	defer admin.Close()
	var exists int
	if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_database WHERE datname = ?`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists > 0 {
		return nil
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, ``)+`"`); err != nil && !sqldb.IsUniqueViolation(err) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
