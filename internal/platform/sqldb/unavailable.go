package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// IsUnavailable reports whether err says the database cannot be used now
// (not that a statement is wrong): the server cannot be reached or dropped
// the connection, is shutting down or out of connections, or, for SQLite,
// the file cannot be opened, read or written. Such a failure is an
// outage, the request changed nothing and a retry may succeed, so it is a
// 503, never a 500. A context that ended is not an outage: the caller
// gave up.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "53300", pgErr.Code == "53400": // too many connections, configuration limit
			return true
		case strings.HasPrefix(pgErr.Code, "57P"): // admin, crash or immediate shutdown; cannot connect now
			return true
		case pgErr.Code == "3D000", pgErr.Code == "28000", pgErr.Code == "28P01": // database gone, role refused
			return true
		}
		return false
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	}
	// pgx reports a connection it already closed by text only.
	return strings.Contains(err.Error(), "conn closed")
}

// Unavailable returns err as an apperr.Unavailable ("the database is
// unavailable", the cause kept for the logs) when IsUnavailable says so,
// and err unchanged otherwise. httpx applies it to every error it writes,
// so a repository needs no mapping of its own.
func Unavailable(err error) error {
	if ae := apperr.As(err); ae != nil && ae.Code != apperr.Internal {
		return err
	}
	if IsUnavailable(err) {
		return apperr.Wrap(err, apperr.Unavailable, "the database is unavailable")
	}
	return err
}
