package bff

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/realguardio/realguardio/internal/policy"
)

// accessReview is the answer of GET /securitysystems/{id}/access (API.md).
type accessReview struct {
	SecuritySystemID string       `json:"securitySystemId"`
	Users            []accessUser `json:"users"`
	NextCursor       *string      `json:"nextCursor"`
}

// accessUser is one user of an access review: what their grants give
// (Actions), what the rule allows at this instant (AllowedNow), and why.
type accessUser struct {
	UserID     string           `json:"userId"`
	Username   string           `json:"username"`
	Actions    []string         `json:"actions"`
	AllowedNow []string         `json:"allowedNow"`
	Grants     []policy.Grant   `json:"grants"`
	Schedule   *policy.Schedule `json:"schedule"`
}

// explainLookups bounds the concurrent access reviews one dashboard page
// asks for.
const explainLookups = 8

// explainRows asks the access review for the user alone (?userId=me) of
// each system on the page the user can do nothing with now, and explains
// it. The API has no review of several systems at once, so this is one call
// per such row: bounded by the page size (dashboardPageSize), made
// concurrently (explainLookups at a time), and skipped for rows with a
// button, which need no explanation, and for the platform administrator's
// rows without actions, which the rule itself explains. A review that cannot be read leaves
// its row with the plain "view only".
func (s *Service) explainRows(ctx context.Context, sess *session, v *viewer, systems []securitySystem, locNames map[string]string) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, explainLookups)
	admin := v != nil && slices.Contains(v.Roles, roleAdmin)
	for _, ss := range systems {
		if len(usefulActions(ss.Actions, ss.State)) > 0 {
			continue
		}
		if admin && len(ss.Actions) == 0 {
			// AUTHZ.md: the platform administrator views every system and
			// may arm or disarm none, and that is not a grant, so the
			// review would list nothing to explain it with.
			out[ss.ID] = explainAccess(ss, nil, true, locNames)
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var rev accessReview
			if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(ss.ID)+"/access?userId=me", &rev); err != nil {
				return
			}
			why := explainAccess(ss, rev.Users, admin, locNames)
			mu.Lock()
			out[ss.ID] = why
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// usefulActions are the actions that change the system's state: the
// services allow arming an armed system as a no-op, but offering it only
// confuses.
func usefulActions(actions []string, state string) []string {
	var out []string
	for _, a := range actions {
		if (a == "ARM" && state == "ARMED") || (a == "DISARM" && state == "DISARMED") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// explainAccess says in words why the user, whose access review entries
// are users (none or one), can do nothing with ss now.
func explainAccess(ss securitySystem, users []accessUser, platformAdmin bool, locNames map[string]string) string {
	if len(users) == 0 {
		if platformAdmin {
			return "View only: as platform administrator you see every system and may arm or disarm none."
		}
		return "View only: no role of yours gives more."
	}
	u := users[0]
	grants := describeGrants(u.Grants, locNames)
	canEver := slices.Contains(u.Actions, "ARM") || slices.Contains(u.Actions, "DISARM")
	canNow := slices.Contains(u.AllowedNow, "ARM") || slices.Contains(u.AllowedNow, "DISARM")
	var why string
	switch {
	case canEver && !canNow && u.Schedule != nil:
		why = "Outside your shift: " + describeSchedule(*u.Schedule)
		if grants != "" {
			why += " (" + grants + ")"
		}
	case !canEver:
		why = "View only"
		if grants != "" {
			why += ": " + grants
		}
	default:
		if ss.State == "DISARMED" {
			why = "Already disarmed; you may " + verbs(u.AllowedNow) + " but not arm"
		} else {
			why = "Already armed; you may " + verbs(u.AllowedNow) + " but not disarm"
		}
		if grants != "" {
			why += ". " + capitalize(grants)
		}
	}
	if canNow && u.Schedule != nil {
		why += ". Your shift: " + describeSchedule(*u.Schedule)
	}
	return why + "."
}

// capitalize upper-cases the first letter of a sentence.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// verbs names the state-changing actions for a sentence.
func verbs(actions []string) string {
	var out []string
	for _, a := range actions {
		switch a {
		case "ARM":
			out = append(out, "arm")
		case "DISARM":
			out = append(out, "disarm")
		}
	}
	return strings.Join(out, " and ")
}

// describeGrants names each grant as people say it: "role VIEWER at Lab",
// "granted through team Night Watch (DISARMER)".
func describeGrants(gs []policy.Grant, locNames map[string]string) string {
	var out []string
	for _, g := range gs {
		role := strings.TrimPrefix(g.Role, "SECURITY_SYSTEM_")
		name := g.Name
		if name == "" {
			name = locNames[g.ID]
		}
		if name == "" {
			name = shortID(g.ID)
		}
		var s string
		switch g.Via {
		case policy.ViaTeam:
			s = "granted through team " + name + " (" + role + ")"
		case policy.ViaLocation:
			s = "role " + role + " at " + name
		case policy.ViaCustomer:
			s = "role " + role + " in " + name
		case policy.ViaDealer:
			s = "role " + role + " at dealer " + name
		case policy.ViaMonitoringProvider:
			s = "role " + role + " at monitoring provider " + name
		default:
			s = "role " + role + " via " + string(g.Via) + " " + name
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// weekdayNames are the short names people read, in policy.Weekdays order.
var weekdayNames = map[string]string{"SUN": "Sun", "MON": "Mon", "TUE": "Tue", "WED": "Wed", "THU": "Thu", "FRI": "Fri", "SAT": "Sat"}

// describeSchedule writes a schedule as "Mon–Fri 09:00–17:00 Europe/Berlin",
// shifts separated by commas, runs of three or more consecutive days as a
// range.
func describeSchedule(sc policy.Schedule) string {
	var shifts []string
	for _, sh := range sc.Shifts {
		shifts = append(shifts, describeDays(sh.Weekdays)+" "+sh.Start+"–"+sh.End)
	}
	return strings.Join(shifts, ", ") + " " + sc.TimeZone
}

// describeDays writes weekdays in week order (Monday first), with ranges.
func describeDays(days []string) string {
	order := []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}
	var idx []int
	for i, d := range order {
		if slices.Contains(days, d) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 7 {
		return "Every day"
	}
	var out []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			out = append(out, weekdayNames[order[idx[i]]]+"–"+weekdayNames[order[idx[j]]])
		default:
			for k := i; k <= j; k++ {
				out = append(out, weekdayNames[order[idx[k]]])
			}
		}
		i = j + 1
	}
	return strings.Join(out, ", ")
}

// emptyHelp explains an empty dashboard by what the user's roles allow,
// so an administrator does not read "nothing" as a fault.
func emptyHelp(v *viewer) string {
	if v == nil {
		return ""
	}
	switch {
	case slices.Contains(v.Roles, roleAdmin):
		return "There are no security systems yet. As platform administrator you see every system (and may arm or disarm none); they are created through the API or the CLI."
	case v.Org != nil && v.Org.isAdmin():
		return "As administrator of your " + v.Org.KindLabel() + " you manage its employees and their roles; that alone shows no security system. Seeing or operating one needs a role such as VIEWER, ARMER or DISARMER, in the organization or at a location" + teamHint(v.Org) + ": grant it on the My organization page."
	case v.Org != nil:
		return "None of your roles lets you view a security system yet. Your organization's administrator can grant you VIEWER, ARMER or DISARMER" + teamHint(v.Org) + "."
	}
	return "None of your roles lets you view a security system."
}

// teamHint mentions teams where they exist: only customers have them.
func teamHint(m *orgMembership) string {
	if m.Kind == string(policy.OrgCustomer) {
		return " (directly or through a team)"
	}
	return ""
}

// dashboardLocationNames resolves the page's location ids to names: a
// customer's employees read their customer's locations, the platform
// administrator every customer's (when there are few enough customers);
// for others the page shows shortened ids.
func (s *Service) dashboardLocationNames(ctx context.Context, sess *session, v *viewer) map[string]string {
	if names := s.locationNames(ctx, sess, v.Org); names != nil {
		return names
	}
	if !slices.Contains(v.Roles, roleAdmin) {
		return nil
	}
	d := &directory{}
	s.loadAllLocations(ctx, sess, d)
	out := map[string]string{}
	for _, o := range d.Options("location") {
		out[o.Value] = o.Label
	}
	return out
}

// withLocationNames adds to names (a new map when nil) the names of the
// ids it lacks, asked of the Customer Service in one call
// (GET /location-names), which answers those the user may see: a dealer's
// or monitoring provider's employee sees the names of the locations they
// reach, a customer's employee those beyond the first page of its
// customer's locations. A failure leaves the ids unnamed.
func (s *Service) withLocationNames(ctx context.Context, sess *session, names map[string]string, ids []string) map[string]string {
	var missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		if _, ok := names[id]; !ok && id != "" && !seen[id] {
			seen[id] = true
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return names
	}
	var body struct {
		Locations []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"locations"`
	}
	if _, err := s.backendJSON(ctx, sess, s.cfg.CustomerURL, "/location-names?"+url.Values{"ids": {strings.Join(missing, ",")}}.Encode(), &body); err != nil {
		return names
	}
	if names == nil {
		names = map[string]string{}
	}
	for _, l := range body.Locations {
		names[l.ID] = l.Name
	}
	return names
}
