// Package app holds the Customer Service's own domain (locations, the
// dealer servicing each, teams and their members, location roles of
// employees and teams, profiles) and the use cases that change and read it.
//
// Customers, their employees, organization roles and schedules belong to
// the shared organization kit (internal/orgkit); this package reaches them
// only through the small Org port it owns, so the rules written here stay
// independent of how orgkit stores them.
package app

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
)

// MaxNameLength bounds location, team and person names. Names are shown in
// lists and carried in events; 200 characters is far beyond any real one.
const MaxNameLength = 200

// Location is a place owned by one customer, optionally serviced by a dealer.
type Location struct {
	ID         string
	CustomerID string
	Name       string
	// DealerID is the dealer servicing the location; empty when none.
	DealerID string
}

// Team is a named group of one customer's employees that can hold roles at
// locations as a whole.
type Team struct {
	ID         string
	CustomerID string
	Name       string
}

// Employee is what this package needs to know of an organization kit
// employee: which customer it belongs to, which IAM user it is, and whether
// it is active (a pending or removed employee holds nothing).
type Employee struct {
	ID         string
	CustomerID string
	UserID     string
	Email      string
	FirstName  string
	LastName   string
	Active     bool
}

// Profile is a customer employee's personal contact information, read and
// written by the employee alone (the article's "Manage profiles").
type Profile struct {
	UserID      string
	FirstName   string
	LastName    string
	PhoneNumber string
}

// LocationFacts are the resource-side facts of a location that the
// Security System Service needs (docs/fetch-api.md).
type LocationFacts struct {
	LocationID string
	CustomerID string
	// DealerID is empty when no dealer services the location.
	DealerID string
}

// RoleGrant is the set of roles one holder (an employee or a team) has at
// one location.
type RoleGrant struct {
	HolderID string
	Roles    []string
}

// Grant is one item of a bulk location-role import: the roles (the whole
// new set, empty revokes) one employee holds at one location.
type Grant struct {
	LocationID string
	EmployeeID string
	UserID     string
	Roles      []string
}

// LocationKey is the list order of locations: name, then id.
func LocationKey(l Location) []string { return []string{l.Name, l.ID} }

// TeamKey is the list order of teams: name, then id.
func TeamKey(t Team) []string { return []string{t.Name, t.ID} }

// MemberKey is the list order of a team's members, that of the
// organization kit's employees: last name, first name, then employee id.
func MemberKey(e Employee) []string { return []string{e.LastName, e.FirstName, e.ID} }

// ValidateName trims name and checks it is present and at most
// MaxNameLength characters, reporting the failure against field.
func ValidateName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", apperr.InvalidField(field, "is required")
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		return "", apperr.InvalidField(field, "must be at most %d characters", MaxNameLength)
	}
	return name, nil
}

// ValidateID checks that s, taken from a request body, is a UUID in its
// canonical 36-character form. Ids are compared as strings in the stores,
// so other spellings of the same UUID would silently name nothing.
func ValidateID(field, s string) (string, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", apperr.InvalidField(field, "must be a UUID")
	}
	return id.String(), nil
}

// ValidateLocationRoles checks that every role may be held at a location
// and returns the set sorted and without duplicates, so that equal sets are
// stored and published identically. A nil slice means the field was
// missing, which is not the same as [] (revoke everything).
func ValidateLocationRoles(roles []string) ([]string, error) {
	if roles == nil {
		return nil, apperr.InvalidField("roles", "is required; use [] to revoke every role")
	}
	out := make([]string, 0, len(roles))
	for i, r := range roles {
		if !policy.IsLocationRole(r) {
			return nil, apperr.InvalidField(fmt.Sprintf("roles[%d]", i), "%q is not a location role (one of %s)", truncate(r, 64), strings.Join(policy.SecuritySystemRoles, ", "))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// phonePattern accepts E.164 and the usual ways of writing it: an optional
// leading +, then digits with spaces, dots, hyphens or parentheses between.
// The number of digits is checked separately.
var phonePattern = regexp.MustCompile(`^\+?[0-9 ().\-]+$`)

// ValidatePhoneNumber accepts an empty string (no number) or an E.164-ish
// number of 7 to 15 digits. The check is deliberately loose: the number is
// for people to call, not for routing, and rejecting real numbers written a
// little differently would be worse than accepting an odd one.
func ValidatePhoneNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if !phonePattern.MatchString(s) {
		return "", apperr.InvalidField("phoneNumber", "must be a phone number such as +14155550123")
	}
	digits := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits < 7 || digits > 15 {
		return "", apperr.InvalidField("phoneNumber", "must have 7 to 15 digits (E.164), got %d", digits)
	}
	return s, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Member is an employee named by both ids, as the events need them.
type Member struct {
	EmployeeID string
	UserID     string
}

// DeletedTeam is what deleting a team took away: its members and the
// locations where it held roles.
type DeletedTeam struct {
	Members   []Member
	Locations []string
}

// DeletedLocation is what deleting a location took away: the employees
// who held roles there directly and the teams that did.
type DeletedLocation struct {
	Employees []Member
	Teams     []string
}

// LocationName is a location's name with the organizations that decide
// who may read it: its customer, its dealer ("" when none) and the
// dealer's monitoring provider ("" when none or unknown).
type LocationName struct {
	ID                   string
	Name                 string
	CustomerID           string
	DealerID             string
	MonitoringProviderID string
}

// Membership is the organization a user works for in the Dealer or the
// Monitoring Provider Service, as their subject facts say ("" for none).
type Membership struct {
	DealerID             string
	MonitoringProviderID string
}
