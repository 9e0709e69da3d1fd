package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/cursor"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// The bounds of one page of an access review (API.md, "Lists").
const (
	DefaultAccessLimit = 50
	MaxAccessLimit     = 500
)

// AccessQuery asks for one page of a system's access review.
type AccessQuery struct {
	// Limit is the page size; 0 means DefaultAccessLimit.
	Limit int
	// Cursor is the previous page's NextCursor; empty for the first page.
	Cursor string
	// UserID restricts the review to one user; "me" means the caller.
	UserID string
}

// AccessReview is one page of the answer of GET /securitysystems/{id}/access.
type AccessReview struct {
	SecuritySystemID string
	Users            []policy.AccessEntry
	// NextCursor is empty on the last page.
	NextCursor string
}

// AccessReviewer answers access reviews from the owners' current facts,
// whatever the authorization strategy of the service (AUTHZ.md, "Access
// review": a stale answer is a wrong answer).
type AccessReviewer struct {
	repo   Repository
	facts  authz.AccessFactsSource
	now    func() time.Time
	logger *slog.Logger
}

// NewAccessReviewer returns the access review use case over repo, reading
// the owners through facts (nil: every review is Unavailable). now is the
// clock (time.Now when nil).
func NewAccessReviewer(repo Repository, facts authz.AccessFactsSource, now func() time.Time, logger *slog.Logger) *AccessReviewer {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &AccessReviewer{repo: repo, facts: facts, now: now, logger: logger}
}

type accessCursorJSON struct {
	Username string `json:"u"`
	UserID   string `json:"i"`
}

func encodeAccessCursor(p authz.Position) string {
	return cursor.Encode(accessCursorJSON{p.Username, p.UserID})
}

func decodeAccessCursor(s string) (authz.Position, error) {
	c, err := cursor.Decode(s, func(c accessCursorJSON) bool {
		_, err := uuid.Parse(c.UserID)
		return err == nil && c.Username != ""
	})
	if err != nil {
		return authz.Position{}, err
	}
	return authz.Position{Username: c.Username, UserID: c.UserID}, nil
}

// Review returns one page of the users who may view, arm or disarm system
// id, ordered by username then user id, with what each may do now and the
// grants that give it. A REALGUARDIO_ADMIN and the
// CUSTOMER_EMPLOYEE_ADMINISTRATORs of the system's customer may read it;
// with UserID "me" any caller who may view the system reads its own entry.
// The owners are asked at every request; when one is down the answer is
// Unavailable.
func (a *AccessReviewer) Review(ctx context.Context, caller *principal.Caller, id string, q AccessQuery) (AccessReview, error) {
	page := authz.AccessPage{Limit: q.Limit}
	switch {
	case page.Limit == 0:
		page.Limit = DefaultAccessLimit
	case page.Limit < 1 || page.Limit > MaxAccessLimit:
		return AccessReview{}, apperr.InvalidField("limit", "must be between 1 and %d", MaxAccessLimit)
	}
	if q.Cursor != "" {
		after, err := decodeAccessCursor(q.Cursor)
		if err != nil {
			return AccessReview{}, err
		}
		page.After = after
	}
	self := false
	switch q.UserID {
	case "":
	case "me":
		if caller == nil || caller.IsService || caller.Subject == "" {
			return AccessReview{}, apperr.InvalidField("userId", "me names no user for a service token")
		}
		page.UserID, self = caller.Subject, true
	default:
		u, err := uuid.Parse(q.UserID)
		if err != nil {
			return AccessReview{}, apperr.MalformedField("userId", "must be a user id (UUID) or me")
		}
		page.UserID = u.String()
		self = caller != nil && !caller.IsService && page.UserID == caller.Subject
	}
	ss, err := a.repo.Get(ctx, id)
	if err != nil {
		return AccessReview{}, err
	}
	if a.facts == nil {
		return AccessReview{}, apperr.New(apperr.Unavailable, "the access review needs the organization services, which are not configured")
	}
	isAdmin := caller.HasRole(principal.RoleAdmin)
	// One more user than the page from every owner tells whether a next
	// page exists.
	ask := page
	ask.Limit = page.Limit + 1
	var facts authz.AccessFactsPage
	var subject policy.Subject
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		facts, err = a.facts.AccessFacts(gctx, ss.LocationID, ask)
		return err
	})
	if !isAdmin && caller != nil && !caller.IsService && caller.Subject != "" {
		g.Go(func() error {
			var err error
			subject, err = a.facts.SubjectFacts(gctx, caller.Subject)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return AccessReview{}, unavailable(err)
	}
	if !facts.Found {
		// The system's location is gone at its owner: nobody holds
		// anything there any more.
		facts.Facts.Resource = policy.Resource{LocationID: ss.LocationID}
	}
	facts.Facts.Resource.SecuritySystemID = ss.ID
	subject.AppRoles = caller.Roles
	mayReview := isAdmin || (facts.Found && authz.CanCreate(subject, facts.Facts.Resource.CustomerID).Allowed)

	entries, err := policy.AccessReview(facts.Facts, a.now())
	var conflict policy.ErrConflictingEmployers
	if errors.As(err, &conflict) {
		a.logger.ErrorContext(ctx, "authorization facts are inconsistent: more than one organization claims the user as an employee; failing closed until the owners agree",
			"user_id", conflict.UserID, "security_system_id", ss.ID)
		return AccessReview{}, apperr.New(apperr.Unavailable, "the organization services disagree about a user's employer")
	}
	if err != nil {
		return AccessReview{}, apperr.Wrap(err, apperr.Internal, "access review")
	}
	if !mayReview {
		listed := self && slices.ContainsFunc(entries, func(e policy.AccessEntry) bool { return e.UserID == caller.Subject })
		if !listed {
			if self {
				return AccessReview{}, apperr.Denied(policy.ReasonNoRole, "you may not view this security system")
			}
			return AccessReview{}, apperr.Denied(policy.ReasonNoRole, "only a %s or an administrator of the system's customer may review who has access; ask with userId=me for your own access", principal.RoleAdmin)
		}
	}
	out := AccessReview{SecuritySystemID: ss.ID, Users: []policy.AccessEntry{}}
	for _, e := range entries {
		pos := authz.Position{Username: e.Username, UserID: e.UserID}
		if facts.Horizon != nil && pos.Compare(*facts.Horizon) > 0 {
			break
		}
		if len(out.Users) == page.Limit {
			out.NextCursor = encodeAccessCursor(positionOf(out.Users[len(out.Users)-1]))
			return out, nil
		}
		out.Users = append(out.Users, e)
	}
	if facts.Horizon != nil {
		// An owner has more users beyond what it answered.
		last := *facts.Horizon
		if n := len(out.Users); n > 0 {
			last = positionOf(out.Users[n-1])
		}
		out.NextCursor = encodeAccessCursor(last)
	}
	return out, nil
}

func positionOf(e policy.AccessEntry) authz.Position {
	return authz.Position{Username: e.Username, UserID: e.UserID}
}

func unavailable(err error) error {
	if apperr.Is(err, apperr.Unavailable) {
		return err
	}
	return apperr.Wrap(err, apperr.Unavailable, "the organization services cannot be asked now")
}
