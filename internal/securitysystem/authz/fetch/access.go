package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

var _ authz.AccessFactsSource = (*Authorizer)(nil)

// locationAccess is the answer of the Customer Service's
// GET /authz/locations/{id}/access.
type locationAccess struct {
	LocationID   string  `json:"locationId"`
	LocationName string  `json:"locationName"`
	CustomerID   string  `json:"customerId"`
	CustomerName string  `json:"customerName"`
	DealerID     *string `json:"dealerId"`
	Users        []struct {
		UserID            string   `json:"userId"`
		Username          string   `json:"username"`
		OrganizationRoles []string `json:"organizationRoles"`
		LocationRoles     []string `json:"locationRoles"`
		Teams             []struct {
			TeamID string   `json:"teamId"`
			Name   string   `json:"name"`
			Roles  []string `json:"roles"`
		} `json:"teams"`
		Schedule *policy.Schedule `json:"schedule"`
	} `json:"users"`
	More bool `json:"more"`
}

// roleHolders is the answer of GET /authz/organizations/{id}/role-holders.
type roleHolders struct {
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
	Users          []struct {
		UserID   string           `json:"userId"`
		Username string           `json:"username"`
		Roles    []string         `json:"roles"`
		Schedule *policy.Schedule `json:"schedule"`
	} `json:"users"`
	More bool `json:"more"`
}

func pageQuery(p authz.AccessPage) string {
	v := url.Values{"limit": {strconv.Itoa(p.Limit)}}
	if p.After.UserID != "" {
		v.Set("afterUsername", p.After.Username)
		v.Set("afterUserId", p.After.UserID)
	}
	if p.UserID != "" {
		v.Set("userId", p.UserID)
	}
	return "?" + v.Encode()
}

// AccessFacts asks the owners who holds roles that may reach the systems
// at locationID: the Customer Service for the location (its customer,
// dealer, names, and the holders at it and in the customer), then the
// Dealer Service for the dealer's holders and its monitoring provider in
// parallel, then the Monitoring Provider Service for the provider's
// holders. That is at most three rounds and four calls per page, whatever
// the number of users; each owner answers at most p.Limit users after
// p.After.
func (a *Authorizer) AccessFacts(ctx context.Context, locationID string, p authz.AccessPage) (authz.AccessFactsPage, error) {
	q := pageQuery(p)
	var out authz.AccessFactsPage
	var loc locationAccess
	err := a.r.call(ctx, depCustomer, http.MethodGet, "/authz/locations/"+url.PathEscape(locationID)+"/access"+q, nil, &loc)
	if errors.Is(err, errNotFound) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Found = true
	f := &out.Facts
	f.Resource = policy.Resource{LocationID: locationID, CustomerID: loc.CustomerID, DealerID: deref(loc.DealerID)}
	f.LocationName, f.CustomerName = loc.LocationName, loc.CustomerName
	// An owner that had more users than it answered knows nothing of the
	// users after its last one: the page must end there.
	horizon := func(more bool, users int, last func() authz.Position) {
		if !more || users == 0 {
			return
		}
		if l := last(); out.Horizon == nil || l.Compare(*out.Horizon) < 0 {
			out.Horizon = &l
		}
	}
	for _, u := range loc.Users {
		h := policy.Holder{UserID: u.UserID, Username: u.Username, LocationRoles: u.LocationRoles, Schedule: u.Schedule,
			Org: &policy.Membership{Kind: policy.OrgCustomer, ID: loc.CustomerID, Roles: u.OrganizationRoles}}
		for _, t := range u.Teams {
			h.Teams = append(h.Teams, policy.TeamRoles{ID: t.TeamID, Name: t.Name, Roles: t.Roles})
		}
		f.Holders = append(f.Holders, h)
	}
	horizon(loc.More, len(loc.Users), func() authz.Position {
		u := loc.Users[len(loc.Users)-1]
		return authz.Position{Username: u.Username, UserID: u.UserID}
	})
	if f.Resource.DealerID == "" {
		return out, nil
	}
	var dealerHolders roleHolders
	var dealer *dealerFacts
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return a.holders(gctx, depDealer, f.Resource.DealerID, q, &dealerHolders)
	})
	g.Go(func() error {
		var err error
		dealer, err = a.dealer(gctx, f.Resource.DealerID)
		return err
	})
	if err := g.Wait(); err != nil {
		return authz.AccessFactsPage{}, err
	}
	f.DealerName = dealerHolders.Name
	a.addHolders(f, policy.OrgDealer, f.Resource.DealerID, dealerHolders, horizon)
	if dealer == nil || deref(dealer.MonitoringProviderID) == "" {
		return out, nil
	}
	f.Resource.MonitoringProviderID = deref(dealer.MonitoringProviderID)
	var providerHolders roleHolders
	if err := a.holders(ctx, depMonitoring, f.Resource.MonitoringProviderID, q, &providerHolders); err != nil {
		return authz.AccessFactsPage{}, err
	}
	f.MonitoringProviderName = providerHolders.Name
	a.addHolders(f, policy.OrgMonitoringProvider, f.Resource.MonitoringProviderID, providerHolders, horizon)
	return out, nil
}

// holders reads one page of an organization's role holders. An
// organization the owner does not know (a dealer removed meanwhile) holds
// nobody.
func (a *Authorizer) holders(ctx context.Context, dep, orgID, query string, out *roleHolders) error {
	err := a.r.call(ctx, dep, http.MethodGet, "/authz/organizations/"+url.PathEscape(orgID)+"/role-holders"+query, nil, out)
	if errors.Is(err, errNotFound) {
		*out = roleHolders{}
		return nil
	}
	return err
}

func (a *Authorizer) addHolders(f *policy.AccessFacts, kind policy.OrgKind, orgID string, rh roleHolders, horizon func(bool, int, func() authz.Position)) {
	for _, u := range rh.Users {
		f.Holders = append(f.Holders, policy.Holder{UserID: u.UserID, Username: u.Username, Schedule: u.Schedule,
			Org: &policy.Membership{Kind: kind, ID: orgID, Roles: u.Roles}})
	}
	horizon(rh.More, len(rh.Users), func() authz.Position {
		u := rh.Users[len(rh.Users)-1]
		return authz.Position{Username: u.Username, UserID: u.UserID}
	})
}
