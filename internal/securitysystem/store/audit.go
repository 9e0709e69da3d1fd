package store

import (
	"context"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

var _ app.AuditStore = (*Store)(nil)

// SearchAudit returns up to f.Limit+1 audit entries matching f with their
// systems' names, newest first. A customer's entries are those of the
// systems whose record names the customer, which never changes: a
// location belongs to one customer for good.
func (s *Store) SearchAudit(ctx context.Context, f app.AuditFilter) ([]app.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v ...any) {
		where = append(where, cond)
		args = append(args, v...)
	}
	if f.CustomerID != "" {
		add("s.customer_id = ?", f.CustomerID)
	}
	if f.SecuritySystemID != "" {
		add("a.security_system_id = ?", f.SecuritySystemID)
	}
	if f.UserID != "" {
		add("a.user_id = ?", f.UserID)
	}
	if f.Action != "" {
		add("a.action = ?", string(f.Action))
	}
	if f.Decision != "" {
		add("a.decision = ?", f.Decision)
	}
	if !f.Since.IsZero() {
		add("a.at >= ?", sqldb.Micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("a.at < ?", sqldb.Micros(f.Until))
	}
	if f.BeforeID != "" {
		at := sqldb.Micros(f.BeforeAt)
		add("(a.at < ? OR (a.at = ? AND a.id < ?))", at, at, f.BeforeID)
	}
	query := `SELECT a.id, a.at, a.user_id, a.security_system_id, a.action, a.decision, a.reason, a.strategy, COALESCE(s.name, '')
		FROM securitysystem_audit a LEFT JOIN security_systems s ON s.id = a.security_system_id`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += ` ORDER BY a.at DESC, a.id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "search audit")
	}
	defer rows.Close()
	out := []app.AuditRecord{}
	for rows.Next() {
		var r app.AuditRecord
		var at int64
		var action string
		if err := rows.Scan(&r.ID, &at, &r.UserID, &r.SecuritySystemID, &action, &r.Decision, &r.Reason, &r.Strategy, &r.SecuritySystemName); err != nil {
			return nil, internal(err, "search audit")
		}
		r.At, r.Action = sqldb.FromMicros(at), app.Action(action)
		out = append(out, r)
	}
	return out, internal(rows.Err(), "search audit")
}
