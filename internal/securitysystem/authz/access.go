package authz

import (
	"cmp"
	"context"

	"github.com/realguardio/realguardio/internal/policy"
)

// Position is a place in the order of an access review: username, then
// user id, compared byte by byte.
type Position struct {
	Username string
	UserID   string
}

// Compare orders positions as the access review does.
func (p Position) Compare(o Position) int {
	return cmp.Or(cmp.Compare(p.Username, o.Username), cmp.Compare(p.UserID, o.UserID))
}

// AccessPage asks for the facts of the users after After (all users when
// After is zero), at most Limit of them from each owner, or only UserID's.
type AccessPage struct {
	Limit  int
	After  Position
	UserID string
}

// AccessFactsPage is what the owners answered for one AccessPage.
type AccessFactsPage struct {
	// Found is false when the Customer Service knows no such location.
	Found bool
	Facts policy.AccessFacts
	// Horizon, when not nil, is the last position an owner that had more
	// users answered: the facts of users after it are incomplete, so a
	// page must end there. Nil when every owner answered all it had.
	Horizon *Position
}

// AccessFactsSource gathers the owners' current facts of an access review
// (docs/fetch-api.md, "Access review") in a bounded number of calls,
// whatever the number of users, and the subject facts of a caller. An
// error means the facts cannot be had now (Unavailable).
type AccessFactsSource interface {
	AccessFacts(ctx context.Context, locationID string, p AccessPage) (AccessFactsPage, error)
	SubjectFacts(ctx context.Context, userID string) (policy.Subject, error)
}
