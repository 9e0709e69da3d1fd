package bff

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

func init() {
	// dict passes several values to a template ("actions"); useful says
	// whether any action would change the system's state.
	funcs["dict"] = func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	}
	funcs["useful"] = func(actions []string, state string) bool { return len(usefulActions(actions, state)) > 0 }
}

// securitySystem is one item of GET /securitysystems.
type securitySystem struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	LocationID string   `json:"locationId"`
	State      string   `json:"state"`
	Actions    []string `json:"actions"`
}

type dashboardData struct {
	Systems []securitySystem
	Problem string
	Loaded  bool
	// LocationNames maps location ids to names when the user may read
	// their customer's locations; otherwise the page shows shortened ids.
	LocationNames map[string]string
	// Filter is the search the page shows; Locations the choices of its
	// location filter (empty when the names are unknown).
	Filter    dashboardFilter
	Locations []option
	// NextURL is the link to the next page (empty on the last one);
	// FirstURL the link back to the first page (empty on the first one).
	NextURL, FirstURL string
	// Why explains, by system id, each row the user can do nothing with
	// now (view only, or no action that changes its state), from the
	// access review of the user (GET /securitysystems/{id}/access?userId=me).
	Why map[string]string
	// EmptyHelp explains an empty, unfiltered list by what the user's
	// roles allow.
	EmptyHelp string
	// IDs are the page's systems, comma separated, for its live stream.
	IDs string
}

// dashboardFilter is the dashboard's search: the query parameters of
// GET /securitysystems (API.md "Lists") that the page offers.
type dashboardFilter struct {
	Q, State, LocationID, Cursor string
}

// maxSearchLen bounds the search text; a name is at most 200 characters.
const maxSearchLen = 200

// parseDashboardFilter reads the page's query, dropping what the Security
// System Service would refuse (an unknown state, a search longer than any
// name), so that a hand-edited URL shows the page rather than an error.
func parseDashboardFilter(q url.Values) dashboardFilter {
	f := dashboardFilter{
		Q:          strings.TrimSpace(q.Get("q")),
		State:      q.Get("state"),
		LocationID: strings.TrimSpace(q.Get("locationId")),
		Cursor:     q.Get("cursor"),
	}
	if len(f.Q) > maxSearchLen {
		f.Q = f.Q[:maxSearchLen]
	}
	if f.State != "ARMED" && f.State != "DISARMED" {
		f.State = ""
	}
	return f
}

// query returns the filter as query parameters, without the cursor unless
// withCursor.
func (f dashboardFilter) query(withCursor bool) url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"q": f.Q, "state": f.State, "locationId": f.LocationID} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if withCursor && f.Cursor != "" {
		v.Set("cursor", f.Cursor)
	}
	return v
}

// Active reports whether the page is filtered, for the empty-result text
// and the "Clear" link.
func (f dashboardFilter) Active() bool { return f.Q != "" || f.State != "" || f.LocationID != "" }

// dashboardPageSize is how many systems one dashboard page shows.
const dashboardPageSize = 50

// pageDashboard shows the security systems, or a sign-in page to anonymous
// visitors (including those whose cookie did not open).
func (s *Service) pageDashboard(w http.ResponseWriter, r *http.Request) {
	sess, err := s.currentSession(w, r)
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			s.render(w, r, http.StatusOK, "welcome", &page{Title: "Sign in", Strategy: s.cfg.Strategy})
			return
		}
		s.renderError(w, r, err)
		return
	}
	p := s.newPage(r.Context(), "dashboard", sess)
	p.Title = "Security systems"
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	var body struct {
		SecuritySystems []securitySystem `json:"securitySystems"`
		NextCursor      string           `json:"nextCursor"`
	}
	data := &dashboardData{Filter: parseDashboardFilter(r.URL.Query())}
	list := data.Filter.query(true)
	list.Set("limit", strconv.Itoa(dashboardPageSize))
	// The names are a second read from another service; doing it alongside
	// keeps the page as fast as the slower of the two.
	names := make(chan map[string]string, 1)
	go func() { names <- s.dashboardLocationNames(ctx, sess, p.User) }()
	if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems?"+list.Encode(), &body); err != nil {
		data.Problem = describeProblem(err)
	} else {
		data.Systems, data.Loaded = body.SecuritySystems, true
		if body.NextCursor != "" {
			next := data.Filter.query(false)
			next.Set("cursor", body.NextCursor)
			data.NextURL = "/?" + next.Encode()
		}
		if data.Filter.Cursor != "" {
			data.FirstURL = "/"
			if q := data.Filter.query(false).Encode(); q != "" {
				data.FirstURL += "?" + q
			}
		}
	}
	data.LocationNames = <-names
	if data.Loaded {
		locIDs := make([]string, len(data.Systems))
		for i, ss := range data.Systems {
			locIDs[i] = ss.LocationID
		}
		data.LocationNames = s.withLocationNames(ctx, sess, data.LocationNames, locIDs)
	}
	if data.Loaded {
		data.Why = s.explainRows(ctx, sess, p.User, data.Systems, data.LocationNames)
		ids := make([]string, len(data.Systems))
		for i, ss := range data.Systems {
			ids[i] = ss.ID
		}
		data.IDs = strings.Join(ids, ",")
		if len(data.Systems) == 0 && !data.Filter.Active() {
			data.EmptyHelp = emptyHelp(p.User)
		}
	}
	for id, name := range data.LocationNames {
		data.Locations = append(data.Locations, option{Value: id, Label: name})
	}
	slices.SortFunc(data.Locations, func(a, b option) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Label), strings.ToLower(b.Label)), strings.Compare(a.Value, b.Value))
	})
	p.Data = data
	s.render(w, r, http.StatusOK, "dashboard", p)
}

// describeProblem turns a backend failure into a sentence for the page.
func describeProblem(err error) string {
	if bp, ok := err.(*backendProblem); ok {
		switch {
		case bp.Status == http.StatusServiceUnavailable:
			return "The authorization service is unavailable; try again in a moment."
		case bp.Problem.Detail != "":
			return bp.Problem.Detail
		}
		return http.StatusText(bp.Status)
	}
	if e := apperr.As(err); e != nil && e.Code == apperr.Unavailable {
		return "The security system service is not reachable; try again in a moment."
	}
	return "The security systems could not be loaded."
}
