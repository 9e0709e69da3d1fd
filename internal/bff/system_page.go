package bff

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
)

// accessPageSize is how many users one page of a system's access review
// shows.
const accessPageSize = 25

// systemData is what the system page shows.
type systemData struct {
	System       securitySystem
	LocationName string
	// NoView is set when the user may review the system's access (a
	// customer administrator) but not view the system itself.
	NoView bool
	// Why explains, when the user can do nothing with the system now, why.
	Why string
	// Review is the access review: everyone's for those who may read it
	// (the platform administrator, the customer's administrators), else
	// the user's own entry (Own).
	Review        []accessRow
	Own           bool
	ReviewProblem string
	// NextURL and FirstURL page the review.
	NextURL, FirstURL string
}

// accessRow is one user of the review as the page shows it.
type accessRow struct {
	User       accessUser
	Grants     string
	Schedule   string
	Restricted bool // the schedule takes away something the grants give, now
}

// pageSystem is /securitysystems/{id}: the system's state, location and
// the actions the user may take now, and who may do what with it and why
// (the access review, paged).
func (s *Service) pageSystem(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	id := r.PathValue("id")
	if !validID(id) {
		s.renderErrorPage(w, r, apperr.New(apperr.NotFound, "there is no security system %q", id), p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	d := &systemData{}
	if status, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id), &d.System); err != nil {
		// A customer's administrator reviews the access to its systems
		// without holding a role that shows them: the page then shows
		// the review alone.
		if status != http.StatusForbidden && status != http.StatusNotFound {
			s.renderErrorPage(w, r, systemProblem(err), p)
			return
		}
		var probe accessReview
		if _, perr := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id)+"/access?limit=1", &probe); perr != nil {
			s.renderErrorPage(w, r, systemProblem(err), p)
			return
		}
		d.NoView = true
		d.System = securitySystem{ID: id}
	}
	names := make(chan map[string]string, 1)
	go func() { names <- s.dashboardLocationNames(ctx, sess, p.User) }()

	cursor := r.URL.Query().Get("cursor")
	q := url.Values{"limit": {strconv.Itoa(accessPageSize)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var rev accessReview
	status, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id)+"/access?"+q.Encode(), &rev)
	if status == http.StatusForbidden {
		// Only administrators read everyone's access; anyone who may view
		// the system reads their own.
		d.Own = true
		rev = accessReview{}
		status, err = s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id)+"/access?userId=me", &rev)
	}
	_ = status
	locNames := <-names
	if err != nil {
		d.ReviewProblem = describeProblem(err)
	} else {
		for _, u := range rev.Users {
			row := accessRow{User: u, Grants: capitalize(describeGrants(u.Grants, locNames))}
			if u.Schedule != nil {
				row.Schedule = describeSchedule(*u.Schedule)
				row.Restricted = len(u.AllowedNow) < len(u.Actions)
			}
			d.Review = append(d.Review, row)
		}
		if rev.NextCursor != nil && *rev.NextCursor != "" && !d.Own {
			d.NextURL = "/securitysystems/" + url.PathEscape(id) + "?cursor=" + url.QueryEscape(*rev.NextCursor)
		}
		if cursor != "" {
			d.FirstURL = "/securitysystems/" + url.PathEscape(id)
		}
	}
	if !d.NoView {
		locNames = s.withLocationNames(ctx, sess, locNames, []string{d.System.LocationID})
	}
	d.LocationName = locNames[d.System.LocationID]
	if d.LocationName == "" {
		d.LocationName = locationFromGrants(rev.Users, d.System.LocationID)
	}
	if !d.NoView && len(usefulActions(d.System.Actions, d.System.State)) == 0 {
		mine := rev.Users
		if !d.Own {
			mine = slices.DeleteFunc(slices.Clone(rev.Users), func(u accessUser) bool { return u.UserID != sess.Subject })
		}
		d.Why = explainAccess(d.System, mine, slices.Contains(p.User.Roles, roleAdmin), locNames)
		if !d.Own && len(mine) == 0 && cursor == "" && rev.NextCursor != nil {
			// The user may be on a later page of the review: ask for them.
			var own accessReview
			if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems/"+url.PathEscape(id)+"/access?userId=me", &own); err == nil {
				d.Why = explainAccess(d.System, own.Users, slices.Contains(p.User.Roles, roleAdmin), locNames)
			}
		}
	}
	p.Title = d.System.Name
	if d.NoView {
		p.Title = "Access to a security system"
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "system", p)
}

// locationFromGrants finds the location's name among the review's location
// grants, which carry it.
func locationFromGrants(users []accessUser, locationID string) string {
	for _, u := range users {
		for _, g := range u.Grants {
			if g.Via == policy.ViaLocation && g.ID == locationID && g.Name != "" {
				return g.Name
			}
		}
	}
	return ""
}

// systemProblem turns the Security System Service's refusal of one system
// into the page's error: a system the user may not view looks like one that
// does not exist, as the API answers.
func systemProblem(err error) error {
	if bp, ok := err.(*backendProblem); ok {
		switch bp.Status {
		case http.StatusNotFound, http.StatusForbidden:
			return apperr.New(apperr.NotFound, "there is no security system here that you may view")
		case http.StatusServiceUnavailable:
			return apperr.New(apperr.Unavailable, "the authorization service is unavailable; try again in a moment")
		}
		if bp.Problem.Detail != "" {
			return apperr.New(apperr.Internal, "%s", bp.Problem.Detail)
		}
	}
	if e := apperr.As(err); e != nil {
		return e
	}
	return apperr.New(apperr.Unavailable, "the security system service is not reachable; try again in a moment")
}
