package app

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/cursor"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// AuditFilter selects audit entries, newest first, one page at a time.
// Every field but Limit is optional.
type AuditFilter struct {
	// CustomerID limits the entries to the systems of one customer.
	CustomerID       string
	SecuritySystemID string
	UserID           string
	Action           Action
	Decision         string
	// Since and Until bound the instant: Since inclusive, Until exclusive.
	Since, Until time.Time
	// Before is the position after which the page starts (the last entry
	// of the previous page), zero for the first page.
	BeforeAt time.Time
	BeforeID string
	// Limit is the page size; the store returns one more to tell whether
	// a page follows.
	Limit int
}

// AuditRecord is an audit entry with the name of its system.
type AuditRecord struct {
	AuditEntry
	SecuritySystemName string
}

// AuditStore is the port the audit search needs.
type AuditStore interface {
	// SearchAudit returns up to f.Limit+1 entries matching f, newest
	// first (at, then id, descending).
	SearchAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
}

// AuditSearch is a request for one page of GET /audit.
type AuditSearch struct {
	Filter AuditFilter
	// Cursor is the previous page's NextCursor.
	Cursor string
}

// AuditPage is one page of GET /audit.
type AuditPage struct {
	Entries    []AuditRecord
	NextCursor string
}

// AuditReader answers GET /audit: every decision for REALGUARDIO_ADMIN,
// the decisions about its customer's systems for a
// CUSTOMER_EMPLOYEE_ADMINISTRATOR (known from the owners' current facts).
type AuditReader struct {
	store  AuditStore
	facts  authz.AccessFactsSource
	logger *slog.Logger
}

// NewAuditReader returns the audit use case over store; facts tells who
// administers which customer (nil: only REALGUARDIO_ADMIN may read).
func NewAuditReader(store AuditStore, facts authz.AccessFactsSource, logger *slog.Logger) *AuditReader {
	if logger == nil {
		logger = slog.Default()
	}
	return &AuditReader{store: store, facts: facts, logger: logger}
}

type auditCursor struct {
	At int64  `json:"t"`
	ID string `json:"i"`
}

// Read returns one page of the decisions the caller may read that match
// the filter.
func (a *AuditReader) Read(ctx context.Context, caller *principal.Caller, q AuditSearch) (AuditPage, error) {
	f := q.Filter
	switch {
	case f.Limit == 0:
		f.Limit = DefaultAuditLimit
	case f.Limit < 0 || f.Limit > MaxAuditLimit:
		return AuditPage{}, apperr.InvalidField("limit", "must be between 1 and %d", MaxAuditLimit)
	}
	for _, idf := range []struct{ name, v string }{{"securitySystemId", f.SecuritySystemID}, {"userId", f.UserID}} {
		if idf.v != "" {
			if _, err := uuid.Parse(idf.v); err != nil {
				return AuditPage{}, apperr.InvalidField(idf.name, "must be a UUID")
			}
		}
	}
	if f.Action != "" && f.Action != ActionArm && f.Action != ActionDisarm {
		return AuditPage{}, apperr.InvalidField("action", "must be ARM or DISARM")
	}
	if f.Decision != "" && !slices.Contains([]string{DecisionAllowed, DecisionDenied, DecisionUnavailable}, f.Decision) {
		return AuditPage{}, apperr.InvalidField("decision", "must be allowed, denied or unavailable")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return AuditPage{}, apperr.InvalidField("until", "must be after since")
	}
	if q.Cursor != "" {
		c, err := cursor.Decode(q.Cursor, func(c auditCursor) bool { return c.ID != "" })
		if err != nil {
			return AuditPage{}, err
		}
		f.BeforeAt, f.BeforeID = time.UnixMicro(c.At).UTC(), c.ID
	}
	if !caller.HasRole(principal.RoleAdmin) {
		customerID, err := a.administeredCustomer(ctx, caller)
		if err != nil {
			return AuditPage{}, err
		}
		f.CustomerID = customerID
	}
	recs, err := a.store.SearchAudit(ctx, f)
	if err != nil {
		return AuditPage{}, err
	}
	out := AuditPage{Entries: recs}
	if len(recs) > f.Limit {
		out.Entries = recs[:f.Limit]
		last := out.Entries[f.Limit-1]
		out.NextCursor = cursor.Encode(auditCursor{At: last.At.UnixMicro(), ID: last.ID})
	}
	return out, nil
}

// administeredCustomer returns the customer the caller administers, from
// the owners' current facts; anyone else is Forbidden.
func (a *AuditReader) administeredCustomer(ctx context.Context, caller *principal.Caller) (string, error) {
	denied := apperr.Denied(policy.ReasonNoRole, "only a %s or a customer's %s may read the audit", principal.RoleAdmin, policy.RoleCustomerEmployeeAdministrator)
	if caller == nil || caller.IsService || caller.Subject == "" || a.facts == nil {
		return "", denied
	}
	s, err := a.facts.SubjectFacts(ctx, caller.Subject)
	if err != nil {
		return "", unavailable(err)
	}
	if s.Org == nil || s.Org.Kind != policy.OrgCustomer || !slices.Contains(s.Org.Roles, policy.RoleCustomerEmployeeAdministrator) {
		return "", denied
	}
	return s.Org.ID, nil
}

// Reviews are the read-only oversight use cases beside the main ones: the
// access review and the audit.
type Reviews struct {
	Access *AccessReviewer
	Audit  *AuditReader
}
