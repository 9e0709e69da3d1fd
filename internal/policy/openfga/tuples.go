package openfga

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/realguardio/realguardio/internal/policy"
)

// Object types and relations of model.fga that callers name.
const (
	TypeUser               = "user"
	TypePlatform           = "platform"
	TypeCustomer           = "customer"
	TypeDealer             = "dealer"
	TypeMonitoringProvider = "monitoring_provider"
	TypeTeam               = "team"
	TypeLocation           = "location"
	TypeSecuritySystem     = "security_system"

	// PlatformID is the id of the one platform object.
	PlatformID = "realguardio"

	// ScheduleConditionName is the condition on a scheduled user's on_duty
	// tuple.
	ScheduleConditionName = "in_schedule"
	// ContextCurrentTime is the Check context parameter holding the instant
	// of the decision.
	ContextCurrentTime = "current_time"
)

// RelationCanCreateSecuritySystem is the location relation deciding
// POST /securitysystems at the location (CreateCheckRequest).
const RelationCanCreateSecuritySystem = "can_create_security_system"

// roleRelations maps a role to its relation on customer, dealer,
// monitoring_provider and location. The security system roles exist on all
// of them; the customer's administrator only on customer (OrgRoles).
var roleRelations = map[string]string{
	policy.RoleArmer:                         "armer",
	policy.RoleDisarmer:                      "disarmer",
	policy.RoleViewer:                        "viewer",
	policy.RoleCustomerEmployeeAdministrator: "administrator",
}

// Object returns "type:id", OpenFGA's object (and user) notation.
func Object(typ, id string) string { return typ + ":" + id }

func user(userID string) string { return Object(TypeUser, userID) }

func tuple(object, relation, u string) *openfgav1.TupleKey {
	return &openfgav1.TupleKey{Object: object, Relation: relation, User: u}
}

// orgType maps an organization kind to its type in the model.
func orgType(kind policy.OrgKind) (string, error) {
	switch kind {
	case policy.OrgCustomer:
		return TypeCustomer, nil
	case policy.OrgDealer:
		return TypeDealer, nil
	case policy.OrgMonitoringProvider:
		return TypeMonitoringProvider, nil
	}
	return "", fmt.Errorf("openfga: unknown organization kind %q", kind)
}

// roleTuples maps the roles in held that are also in known to tuples on
// object for u, in the order of known, so equal sets give equal slices.
// Roles outside known are skipped: they are not in the model.
func roleTuples(object, u string, known, held []string) []*openfgav1.TupleKey {
	out := []*openfgav1.TupleKey{}
	for _, r := range known {
		if slices.Contains(held, r) {
			out = append(out, tuple(object, roleRelations[r], u))
		}
	}
	return out
}

// OrgRoles returns the organization roles of kind that the model holds, in
// the order of policy.OrganizationRoles: the SECURITY_SYSTEM_* roles, and
// for a customer also CUSTOMER_EMPLOYEE_ADMINISTRATOR (which decides the
// creation of security systems). The administrators of dealers and
// providers are decided by their own services only, so they have no
// relation. A sync replacing a role set deletes the tuples of the OrgRoles
// not held; one removing an employee deletes those of all of them.
func OrgRoles(kind policy.OrgKind) []string {
	var out []string
	for _, r := range policy.OrganizationRoles(kind) {
		if policy.IsLocationRole(r) || (kind == policy.OrgCustomer && r == policy.RoleCustomerEmployeeAdministrator) {
			out = append(out, r)
		}
	}
	return out
}

// OrgRoleTuples returns the tuples of an employee's organization roles in
// the organization (kind, orgID): one per role of roles that is in
// OrgRoles(kind); other roles give none. To replace a role set, delete
// Diff's deletes and write its writes between the tuples of the old and
// the new set, or write the tuples of the new set and delete those of the
// other OrgRoles.
func OrgRoleTuples(kind policy.OrgKind, orgID, userID string, roles []string) ([]*openfgav1.TupleKey, error) {
	typ, err := orgType(kind)
	if err != nil {
		return nil, err
	}
	return roleTuples(Object(typ, orgID), user(userID), OrgRoles(kind), roles), nil
}

// OnDutyTuple returns an employee's one on_duty tuple: unconditioned when
// schedule is nil (unrestricted), else conditioned by ScheduleCondition.
// Every employee needs it, or they can never arm or disarm. Because the
// tuple key is the same either way, setting or clearing a schedule is a
// delete of the old tuple (WithoutCondition) followed by a write.
func OnDutyTuple(userID string, schedule *policy.Schedule) (*openfgav1.TupleKey, error) {
	t := tuple(Object(TypePlatform, PlatformID), "on_duty", user(userID))
	if schedule == nil {
		return t, nil
	}
	cond, err := ScheduleCondition(*schedule)
	if err != nil {
		return nil, err
	}
	t.Condition = cond
	return t, nil
}

// AdminTuple returns the tuple making userID a REALGUARDIO_ADMIN. CheckRequest
// sends it as a contextual tuple when the token carries the role, so it
// normally needs not be stored.
func AdminTuple(userID string) *openfgav1.TupleKey {
	return tuple(Object(TypePlatform, PlatformID), "admin", user(userID))
}

// LocationTuples returns the tuples of a location's customer and, when
// dealerID is not empty, of its dealer. Changing the dealer deletes the old
// dealer tuple (LocationDealerTuple) and writes the new one.
func LocationTuples(locationID, customerID, dealerID string) []*openfgav1.TupleKey {
	out := []*openfgav1.TupleKey{tuple(Object(TypeLocation, locationID), "customer", Object(TypeCustomer, customerID))}
	if dealerID != "" {
		out = append(out, LocationDealerTuple(locationID, dealerID))
	}
	return out
}

// LocationDealerTuple returns the tuple "dealerID services locationID".
func LocationDealerTuple(locationID, dealerID string) *openfgav1.TupleKey {
	return tuple(Object(TypeLocation, locationID), "dealer", Object(TypeDealer, dealerID))
}

// DealerProviderTuple returns the tuple "dealerID uses monitoring provider
// providerID".
func DealerProviderTuple(dealerID, providerID string) *openfgav1.TupleKey {
	return tuple(Object(TypeDealer, dealerID), "monitoring_provider", Object(TypeMonitoringProvider, providerID))
}

// EmployeeLocationRoleTuples returns the tuples of the roles a customer
// employee holds directly at a location ([] gives none).
func EmployeeLocationRoleTuples(locationID, userID string, roles []string) []*openfgav1.TupleKey {
	return roleTuples(Object(TypeLocation, locationID), user(userID), policy.SecuritySystemRoles, roles)
}

// TeamLocationRoleTuples returns the tuples of the roles a team holds at a
// location; they reach the team's members through team#member.
func TeamLocationRoleTuples(locationID, teamID string, roles []string) []*openfgav1.TupleKey {
	return roleTuples(Object(TypeLocation, locationID), Object(TypeTeam, teamID)+"#member", policy.SecuritySystemRoles, roles)
}

// TeamMemberTuple returns the tuple "userID is a member of teamID".
func TeamMemberTuple(teamID, userID string) *openfgav1.TupleKey {
	return tuple(Object(TypeTeam, teamID), "member", user(userID))
}

// SecuritySystemTuples returns the tuples placing a system at its location
// and linking it to the platform (for admin view and the on-duty check).
func SecuritySystemTuples(securitySystemID, locationID string) []*openfgav1.TupleKey {
	o := Object(TypeSecuritySystem, securitySystemID)
	return []*openfgav1.TupleKey{
		tuple(o, "location", Object(TypeLocation, locationID)),
		tuple(o, "platform", Object(TypePlatform, PlatformID)),
	}
}

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// ScheduleCondition returns the in_schedule condition of a schedule: its
// time zone and the minutes of the week (Sunday 00:00 = 0, on the zone's
// wall clock) its shifts cover, as half_hours: for each half-hour of the
// week with a covered minute, its index as a decimal string mapped to a
// bit mask of the covered minutes. A shift covers start (inclusive) to end
// (exclusive) on each of its weekdays; a night or 24-hour shift (end not
// after start) runs to end on the next day, Saturday's into Sunday. The
// schedule must be valid (policy.Schedule.Validate).
func ScheduleCondition(s policy.Schedule) (*openfgav1.RelationshipCondition, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("openfga: %w", err)
	}
	var covered [minutesPerWeek]bool
	for _, sh := range s.Shifts {
		start, end := clockMinutes(sh.Start), clockMinutes(sh.End)
		if end <= start {
			end += minutesPerDay
		}
		for _, wd := range sh.Weekdays {
			day := slices.Index(policy.Weekdays, wd) * minutesPerDay
			for m := day + start; m < day+end; m++ {
				covered[m%minutesPerWeek] = true
			}
		}
	}
	halfHours := map[string]any{}
	for m, ok := range covered {
		if ok {
			k := strconv.Itoa(m / 30)
			mask, _ := halfHours[k].(float64)
			halfHours[k] = mask + float64(int(1)<<(m%30))
		}
	}
	ctx, err := structpb.NewStruct(map[string]any{"timezone": s.TimeZone, "half_hours": halfHours})
	if err != nil {
		return nil, fmt.Errorf("openfga: schedule context: %w", err)
	}
	return &openfgav1.RelationshipCondition{Name: ScheduleConditionName, Context: ctx}, nil
}

// clockMinutes converts a validated "HH:MM" to minutes after midnight.
func clockMinutes(s string) int {
	return (int(s[0]-'0')*10+int(s[1]-'0'))*60 + int(s[3]-'0')*10 + int(s[4]-'0')
}

// Relation returns the security_system relation that decides op
// (can_view, can_arm, can_disarm), or "" for an unknown op.
func Relation(op policy.Op) string {
	switch op {
	case policy.OpView:
		return "can_view"
	case policy.OpArm:
		return "can_arm"
	case policy.OpDisarm:
		return "can_disarm"
	}
	return ""
}

// GrantedRelation returns the relation telling whether the user holds a
// role for op regardless of the schedule (arm_granted, disarm_granted;
// can_view for view, which no schedule restricts). When Relation(op) is
// denied, a Check of GrantedRelation(op) tells ReasonOutsideSchedule (held)
// from ReasonNoRole (not held).
func GrantedRelation(op policy.Op) string {
	switch op {
	case policy.OpArm:
		return "arm_granted"
	case policy.OpDisarm:
		return "disarm_granted"
	}
	return Relation(op)
}

// CheckRequest returns the Check of "may userID do op on the system at
// now" (relation Relation(op)); the caller sets StoreId and
// AuthorizationModelId. now goes in the context as current_time.
// REALGUARDIO_ADMIN in appRoles (the token's roles claim) becomes a
// contextual AdminTuple, so the application role needs no synchronization
// and is exactly as fresh as the token, as in the rule.
func CheckRequest(userID string, appRoles []string, op policy.Op, securitySystemID string, now time.Time) *openfgav1.CheckRequest {
	return checkRequest(Relation(op), userID, appRoles, securitySystemID, now)
}

// GrantedCheckRequest is CheckRequest for GrantedRelation(op): after a
// denial it tells whether the user holds the role, which DecisionOf turns
// into the denial's reason.
func GrantedCheckRequest(userID string, appRoles []string, op policy.Op, securitySystemID string, now time.Time) *openfgav1.CheckRequest {
	return checkRequest(GrantedRelation(op), userID, appRoles, securitySystemID, now)
}

// OnDutyCheckRequest returns the Check of "is userID on duty at now":
// platform:realguardio#on_duty, with now in the context as current_time
// for the schedule condition. Every security system links to the one
// platform object, so can_arm on any system is exactly arm_granted on it
// and this one answer (likewise can_disarm): a list asks it once instead
// of once per system and action, where each ask would read the on_duty
// tuple, decode its schedule and evaluate the condition again.
func OnDutyCheckRequest(userID string, now time.Time) *openfgav1.CheckRequest {
	return &openfgav1.CheckRequest{
		TupleKey: &openfgav1.CheckRequestTupleKey{
			Object:   Object(TypePlatform, PlatformID),
			Relation: "on_duty",
			User:     user(userID),
		},
		Context: currentTime(now),
	}
}

// LocationPlatformTuple returns the tuple linking a location to the
// platform object, through which a REALGUARDIO_ADMIN may create systems
// there. It is a constant of the model rather than a fact an owner
// publishes, so it is never stored: CreateCheckRequest sends it as a
// contextual tuple.
func LocationPlatformTuple(locationID string) *openfgav1.TupleKey {
	return tuple(Object(TypeLocation, locationID), "platform", Object(TypePlatform, PlatformID))
}

// CreateCheckRequest returns the Check of "may userID create a security
// system at locationID" (RelationCanCreateSecuritySystem, AUTHZ.md's rule
// for POST /securitysystems); the caller sets StoreId and
// AuthorizationModelId. When appRoles (the token's roles claim) contain
// REALGUARDIO_ADMIN, AdminTuple and LocationPlatformTuple are contextual,
// as for view. An allowed answer does not prove the location exists (an
// admin is allowed anywhere): the caller tells an unknown location by its
// missing customer tuple.
func CreateCheckRequest(userID string, appRoles []string, locationID string) *openfgav1.CheckRequest {
	req := &openfgav1.CheckRequest{TupleKey: &openfgav1.CheckRequestTupleKey{
		Object:   Object(TypeLocation, locationID),
		Relation: RelationCanCreateSecuritySystem,
		User:     user(userID),
	}}
	if slices.Contains(appRoles, policy.AppRoleAdmin) {
		req.ContextualTuples = &openfgav1.ContextualTupleKeys{TupleKeys: []*openfgav1.TupleKey{
			AdminTuple(userID), LocationPlatformTuple(locationID),
		}}
	}
	return req
}

// DecisionOf combines the results of CheckRequest (allowed) and
// GrantedCheckRequest (granted, needed only when not allowed) into the
// rule's decision: allowed, or denied outside_schedule when the role is
// held, or no_role.
func DecisionOf(allowed, granted bool) policy.Decision {
	switch {
	case allowed:
		return policy.Decision{Allowed: true}
	case granted:
		return policy.Decision{Reason: policy.ReasonOutsideSchedule}
	}
	return policy.Decision{Reason: policy.ReasonNoRole}
}

func checkRequest(relation, userID string, appRoles []string, securitySystemID string, now time.Time) *openfgav1.CheckRequest {
	req := &openfgav1.CheckRequest{
		TupleKey: &openfgav1.CheckRequestTupleKey{
			Object:   Object(TypeSecuritySystem, securitySystemID),
			Relation: relation,
			User:     user(userID),
		},
		Context: currentTime(now),
	}
	if slices.Contains(appRoles, policy.AppRoleAdmin) {
		req.ContextualTuples = &openfgav1.ContextualTupleKeys{TupleKeys: []*openfgav1.TupleKey{AdminTuple(userID)}}
	}
	return req
}

// currentTime is the Check context carrying the instant of the decision.
func currentTime(now time.Time) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		// A timestamp parameter is an RFC 3339 string in the context.
		ContextCurrentTime: structpb.NewStringValue(now.UTC().Format(time.RFC3339Nano)),
	}}
}

// WithoutCondition returns the key of t for a delete, which names a tuple
// without its condition.
func WithoutCondition(t *openfgav1.TupleKey) *openfgav1.TupleKeyWithoutCondition {
	return &openfgav1.TupleKeyWithoutCondition{Object: t.GetObject(), Relation: t.GetRelation(), User: t.GetUser()}
}

// Diff returns the tuples to write and to delete to go from the tuples old
// to the tuples new (for example two OrgRoleTuples results). Tuples are
// compared by key: a changed condition on the same key is a delete and a
// write, since OpenFGA keeps one tuple per key.
func Diff(old, new []*openfgav1.TupleKey) (writes []*openfgav1.TupleKey, deletes []*openfgav1.TupleKeyWithoutCondition) {
	key := func(t *openfgav1.TupleKey) string {
		return strings.Join([]string{t.GetObject(), t.GetRelation(), t.GetUser()}, "\x00")
	}
	same := func(a, b *openfgav1.TupleKey) bool {
		return key(a) == key(b) && proto.Equal(a.GetCondition(), b.GetCondition())
	}
	for _, o := range old {
		if !slices.ContainsFunc(new, func(n *openfgav1.TupleKey) bool { return same(o, n) }) {
			deletes = append(deletes, WithoutCondition(o))
		}
	}
	for _, n := range new {
		if !slices.ContainsFunc(old, func(o *openfgav1.TupleKey) bool { return same(o, n) }) {
			writes = append(writes, n)
		}
	}
	return writes, deletes
}
