// Package tokenclaims is the format of the provide strategy's authorization
// claims (docs/provide.md): the IAM Service encodes a user's subject facts
// into them and the Security System Service decodes them from the access
// token. Both sides use this one package, so the format cannot drift, and
// it depends on nothing but the rule's vocabulary (internal/policy), so a
// resource server importing it pulls in nothing of the IAM.
//
// The claims are compact because they travel in every request's
// Authorization header: one-letter organization kinds and role letters,
// location roles as a map from location id to a string of letters.
package tokenclaims

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/policy"
)

// Claim names.
const (
	// ClaimVersion ("az") is the format version; the IAM puts it in every
	// user token when it runs the provide strategy, also for users without
	// any facts, so a resource server can tell "no facts" from "the IAM
	// does not provide them".
	ClaimVersion = "az"
	// ClaimOrg ("org") is the employing organization:
	// {"t":"c|d|m","id":"<uuid>","r":"<role letters>"}.
	ClaimOrg = "org"
	// ClaimLocations ("loc") maps a location id to the letters of the
	// roles held there, directly or through teams (customer employees only).
	ClaimLocations = "loc"
	// ClaimSchedule ("sch") is the schedule:
	// {"tz":"<IANA zone>","s":[["MON,TUE","09:00","17:00"], ...]}.
	ClaimSchedule = "sch"
)

// Version is the only format version this package reads and writes.
const Version = 1

// Names lists every claim of the format.
var Names = []string{ClaimVersion, ClaimOrg, ClaimLocations, ClaimSchedule}

// Role letters. X is the organization's administrator role, whose name
// depends on the kind of organization.
const (
	letterAdmin    = 'X'
	letterArmer    = 'A'
	letterDisarmer = 'D'
	letterViewer   = 'V'
)

// letterOrder is the canonical order of letters in an encoded role set.
const letterOrder = "XADV"

var kindLetters = map[policy.OrgKind]string{
	policy.OrgCustomer:           "c",
	policy.OrgDealer:             "d",
	policy.OrgMonitoringProvider: "m",
}

// ErrAbsent is returned by Decode for claims without ClaimVersion: the
// token was not issued by an IAM running the provide strategy.
var ErrAbsent = errors.New("the token carries no provide claims")

// Facts are the subject facts carried by the claims.
type Facts struct {
	// Org is the employing organization, nil when none.
	Org *policy.Membership
	// LocationRoles maps a location id to the roles held there.
	LocationRoles map[string][]string
	// Schedule is nil when unrestricted.
	Schedule *policy.Schedule
}

// Apply adds the facts to s, which holds the token's sub and application
// roles.
func (f Facts) Apply(s *policy.Subject) {
	s.Org, s.LocationRoles, s.Schedule = f.Org, f.LocationRoles, f.Schedule
}

// Encode returns the claims of s's organization, location roles and
// schedule, ready to be marshalled into a token. It fails on a role or
// kind outside the vocabulary, or an invalid schedule, rather than dropping
// it: a token must carry exactly the owner's facts.
func Encode(s policy.Subject) (map[string]any, error) {
	out := map[string]any{ClaimVersion: Version}
	if s.Org != nil {
		t, ok := kindLetters[s.Org.Kind]
		if !ok {
			return nil, fmt.Errorf("encode: unknown organization kind %q", s.Org.Kind)
		}
		r, err := letters(s.Org.Kind, s.Org.Roles)
		if err != nil {
			return nil, err
		}
		out[ClaimOrg] = map[string]any{"t": t, "id": s.Org.ID, "r": r}
	}
	if len(s.LocationRoles) > 0 {
		loc := make(map[string]any, len(s.LocationRoles))
		for id, roles := range s.LocationRoles {
			if len(roles) == 0 {
				continue
			}
			r, err := letters("", roles)
			if err != nil {
				return nil, err
			}
			loc[id] = r
		}
		if len(loc) > 0 {
			out[ClaimLocations] = loc
		}
	}
	if s.Schedule != nil {
		if err := s.Schedule.Validate(); err != nil {
			return nil, fmt.Errorf("encode: schedule: %w", err)
		}
		shifts := make([]any, 0, len(s.Schedule.Shifts))
		for _, sh := range s.Schedule.Shifts {
			shifts = append(shifts, []any{strings.Join(sh.Weekdays, ","), sh.Start, sh.End})
		}
		out[ClaimSchedule] = map[string]any{"tz": s.Schedule.TimeZone, "s": shifts}
	}
	return out, nil
}

// letters encodes a role set in canonical order; kind "" means location
// roles, which cannot include an administrator role.
func letters(kind policy.OrgKind, roles []string) (string, error) {
	var set [4]bool
	for _, r := range roles {
		switch {
		case r == policy.RoleArmer:
			set[1] = true
		case r == policy.RoleDisarmer:
			set[2] = true
		case r == policy.RoleViewer:
			set[3] = true
		case kind != "" && r == adminRole(kind):
			set[0] = true
		default:
			return "", fmt.Errorf("encode: role %q cannot be held here", r)
		}
	}
	var b strings.Builder
	for i, on := range set {
		if on {
			b.WriteByte(letterOrder[i])
		}
	}
	return b.String(), nil
}

func adminRole(kind policy.OrgKind) string {
	switch kind {
	case policy.OrgCustomer:
		return policy.RoleCustomerEmployeeAdministrator
	case policy.OrgDealer:
		return policy.RoleDealerEmployeeAdministrator
	case policy.OrgMonitoringProvider:
		return policy.RoleMonitoringProviderEmployeeAdministrator
	}
	return ""
}

// Decode reads the claims of a validated token strictly: ErrAbsent when
// the token has no ClaimVersion, another error when anything is malformed
// (an unknown version, kind, letter or member, a location role without a
// customer, an invalid schedule). Claims are signed by the IAM, so a
// malformed one is a bug or a version mismatch, never something to guess
// around.
func Decode(claims map[string]any) (Facts, error) {
	v, present := claims[ClaimVersion]
	if !present {
		return Facts{}, ErrAbsent
	}
	if n, ok := v.(float64); !ok || n != Version {
		if i, ok := v.(int); !ok || i != Version {
			return Facts{}, fmt.Errorf("claim %s: unsupported version %v", ClaimVersion, v)
		}
	}
	var f Facts
	if raw, ok := claims[ClaimOrg]; ok {
		org, err := decodeOrg(raw)
		if err != nil {
			return Facts{}, err
		}
		f.Org = org
	}
	if raw, ok := claims[ClaimLocations]; ok {
		if f.Org == nil || f.Org.Kind != policy.OrgCustomer {
			return Facts{}, fmt.Errorf("claim %s: only a customer's employee holds location roles", ClaimLocations)
		}
		m, ok := raw.(map[string]any)
		if !ok {
			return Facts{}, fmt.Errorf("claim %s: not an object", ClaimLocations)
		}
		f.LocationRoles = make(map[string][]string, len(m))
		for id, rv := range m {
			if !isUUID(id) {
				return Facts{}, fmt.Errorf("claim %s: %q is not a location id", ClaimLocations, id)
			}
			s, ok := rv.(string)
			if !ok || s == "" {
				return Facts{}, fmt.Errorf("claim %s: roles of %s are not a non-empty string", ClaimLocations, id)
			}
			roles, err := decodeLetters("", s)
			if err != nil {
				return Facts{}, fmt.Errorf("claim %s: %s: %w", ClaimLocations, id, err)
			}
			f.LocationRoles[id] = roles
		}
	}
	if raw, ok := claims[ClaimSchedule]; ok {
		s, err := decodeSchedule(raw)
		if err != nil {
			return Facts{}, err
		}
		f.Schedule = s
	}
	return f, nil
}

func decodeOrg(raw any) (*policy.Membership, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("claim %s: not an object", ClaimOrg)
	}
	if err := onlyKeys(m, ClaimOrg, "t", "id", "r"); err != nil {
		return nil, err
	}
	t, _ := m["t"].(string)
	var kind policy.OrgKind
	for k, l := range kindLetters {
		if l == t {
			kind = k
		}
	}
	if kind == "" {
		return nil, fmt.Errorf("claim %s: unknown kind %q", ClaimOrg, t)
	}
	id, _ := m["id"].(string)
	if !isUUID(id) {
		return nil, fmt.Errorf("claim %s: id is not an organization id", ClaimOrg)
	}
	r, ok := m["r"].(string)
	if !ok {
		return nil, fmt.Errorf("claim %s: roles are not a string", ClaimOrg)
	}
	roles, err := decodeLetters(kind, r)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", ClaimOrg, err)
	}
	return &policy.Membership{Kind: kind, ID: id, Roles: roles}, nil
}

func decodeLetters(kind policy.OrgKind, s string) ([]string, error) {
	roles := make([]string, 0, len(s))
	seen := map[rune]bool{}
	for _, c := range s {
		if seen[c] {
			return nil, fmt.Errorf("role letter %q repeated", c)
		}
		seen[c] = true
		switch {
		case c == letterArmer:
			roles = append(roles, policy.RoleArmer)
		case c == letterDisarmer:
			roles = append(roles, policy.RoleDisarmer)
		case c == letterViewer:
			roles = append(roles, policy.RoleViewer)
		case c == letterAdmin && kind != "":
			roles = append(roles, adminRole(kind))
		default:
			return nil, fmt.Errorf("unknown role letter %q", c)
		}
	}
	return roles, nil
}

func decodeSchedule(raw any) (*policy.Schedule, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("claim %s: not an object", ClaimSchedule)
	}
	if err := onlyKeys(m, ClaimSchedule, "tz", "s"); err != nil {
		return nil, err
	}
	tz, _ := m["tz"].(string)
	list, ok := m["s"].([]any)
	if !ok {
		return nil, fmt.Errorf("claim %s: shifts are not an array", ClaimSchedule)
	}
	s := &policy.Schedule{TimeZone: tz, Shifts: make([]policy.Shift, 0, len(list))}
	for i, raw := range list {
		parts, ok := raw.([]any)
		if !ok || len(parts) != 3 {
			return nil, fmt.Errorf("claim %s: shift %d is not [days, start, end]", ClaimSchedule, i)
		}
		var str [3]string
		for j, p := range parts {
			if str[j], ok = p.(string); !ok {
				return nil, fmt.Errorf("claim %s: shift %d has a non-string member", ClaimSchedule, i)
			}
		}
		s.Shifts = append(s.Shifts, policy.Shift{Weekdays: strings.Split(str[0], ","), Start: str[1], End: str[2]})
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("claim %s: %w", ClaimSchedule, err)
	}
	return s, nil
}

func onlyKeys(m map[string]any, claim string, keys ...string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("claim %s: unknown member %q", claim, k)
		}
	}
	return nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
