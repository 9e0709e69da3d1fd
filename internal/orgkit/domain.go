package orgkit

import (
	"crypto/rand"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
)

// Status is the life-cycle state of an employee (and of an organization
// while its administrator is being provisioned).
type Status string

// The states. Pending rows exist only between the two transactions of
// account provisioning: they are invisible to every read and to
// authorization, so a half-created employee can never act or be seen. A
// removed employee who is re-hired goes back through pending to active,
// keeping its row (employee id and user id).
const (
	StatusPending Status = "pending"
	StatusActive  Status = "active"
	StatusRemoved Status = "removed"
)

// Organization is a customer, dealer or monitoring provider.
type Organization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Employee is a person working for one organization. UserID is the IAM
// account's sub; Email (lower-cased) is the account's username.
type Employee struct {
	ID        string `json:"id"`
	OrgID     string `json:"-"`
	UserID    string `json:"userId"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Status    Status `json:"-"`
}

// EmployeeDetails is an employee with its organization roles and schedule,
// as the reads return it. Schedule is nil when the employee is
// unrestricted.
type EmployeeDetails struct {
	Employee
	Roles    []string         `json:"roles"`
	Schedule *policy.Schedule `json:"schedule"`
}

// NewEmployee is the input of creating an employee (or an organization's
// administrator). Password is optional: when empty a random one is
// generated and returned once.
type NewEmployee struct {
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Password  string `json:"password,omitempty"`
}

// Limits of free-text input; generous, but bounded so a row never holds a
// megabyte of name.
const (
	maxNameLen     = 200
	maxEmailLen    = 254
	minPasswordLen = 8
	maxPasswordLen = 128
)

// Normalize validates the input and returns it with the e-mail address
// trimmed and lower-cased (the username of the IAM account) and the names
// trimmed. prefix is prepended to the field names in errors, so the
// administrator of a new organization reports "administrator.email".
func (n NewEmployee) Normalize(prefix string) (NewEmployee, error) {
	email, err := NormalizeEmail(n.Email)
	if err != nil {
		return n, apperr.InvalidField(prefix+"email", "%s", err.Error())
	}
	n.Email = email
	n.FirstName = strings.TrimSpace(n.FirstName)
	n.LastName = strings.TrimSpace(n.LastName)
	if err := checkName(n.FirstName); err != nil {
		return n, apperr.InvalidField(prefix+"firstName", "%s", err.Error())
	}
	if err := checkName(n.LastName); err != nil {
		return n, apperr.InvalidField(prefix+"lastName", "%s", err.Error())
	}
	if n.Password != "" {
		if l := utf8.RuneCountInString(n.Password); l < minPasswordLen || l > maxPasswordLen {
			return n, apperr.InvalidField(prefix+"password", "must be %d to %d characters long", minPasswordLen, maxPasswordLen)
		}
	}
	return n, nil
}

func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if utf8.RuneCountInString(s) > maxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("must be valid text of at most %d characters", maxNameLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("must not contain control characters")
		}
	}
	return nil
}

// NormalizeEmail checks that s is a plain e-mail address (no display name,
// no angle brackets) and returns it lower-cased. Lower-casing is what makes
// the address usable as a unique username: people type their address with
// arbitrary case.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("is required")
	}
	if len(s) > maxEmailLen {
		return "", fmt.Errorf("must be at most %d characters", maxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", fmt.Errorf("%q is not an e-mail address", s)
	}
	return strings.ToLower(s), nil
}

// NormalizeName checks an organization name and returns it trimmed.
func NormalizeName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := checkName(s); err != nil {
		return "", apperr.InvalidField(field, "%s", err.Error())
	}
	return s, nil
}

// NormalizeRoles checks roles against the kind's closed set of
// organization roles and returns them without duplicates in the set's
// canonical order, so equal sets always look equal (in events and reads).
// A nil slice is refused: replacing the set needs an explicit list, and []
// is how a client revokes every role.
func (k Kind) NormalizeRoles(roles []string) ([]string, error) {
	if roles == nil {
		return nil, apperr.InvalidField("roles", "is required (use [] to revoke every role)")
	}
	allowed := policy.OrganizationRoles(k.Org)
	for i, r := range roles {
		if !slices.Contains(allowed, r) {
			return nil, apperr.InvalidField(fmt.Sprintf("roles[%d]", i), "%q is not an organization role of a %s (use %s)", r, k.Org, strings.Join(allowed, ", "))
		}
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// GeneratePassword returns a random password of 26 characters (128 bits,
// base32), enough to be unguessable and still typeable from a screen.
func GeneratePassword() string { return rand.Text() }
