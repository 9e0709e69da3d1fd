package fetch

import (
	"context"
	"net/url"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/contract/facts"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

var _ authz.AccessFactsSource = (*Authorizer)(nil)

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
	loc, err := a.c.LocationAccess(ctx, locationID, q)
	if err != nil || loc == nil {
		return out, err
	}
	out.Found = true
	f := &out.Facts
	f.Resource = policy.Resource{LocationID: locationID, CustomerID: loc.CustomerID, DealerID: facts.Deref(loc.DealerID)}
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
	var dealerHolders facts.RoleHolders
	var dealer *facts.Dealer
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		dealerHolders, err = a.c.RoleHolders(gctx, policy.OrgDealer, f.Resource.DealerID, q)
		return err
	})
	g.Go(func() error {
		var err error
		dealer, err = a.c.Dealer(gctx, f.Resource.DealerID)
		return err
	})
	if err := g.Wait(); err != nil {
		return authz.AccessFactsPage{}, err
	}
	f.DealerName = dealerHolders.Name
	a.addHolders(f, policy.OrgDealer, f.Resource.DealerID, dealerHolders, horizon)
	if dealer == nil || facts.Deref(dealer.MonitoringProviderID) == "" {
		return out, nil
	}
	f.Resource.MonitoringProviderID = facts.Deref(dealer.MonitoringProviderID)
	providerHolders, err := a.c.RoleHolders(ctx, policy.OrgMonitoringProvider, f.Resource.MonitoringProviderID, q)
	if err != nil {
		return authz.AccessFactsPage{}, err
	}
	f.MonitoringProviderName = providerHolders.Name
	a.addHolders(f, policy.OrgMonitoringProvider, f.Resource.MonitoringProviderID, providerHolders, horizon)
	return out, nil
}

func (a *Authorizer) addHolders(f *policy.AccessFacts, kind policy.OrgKind, orgID string, rh facts.RoleHolders, horizon func(bool, int, func() authz.Position)) {
	for _, u := range rh.Users {
		f.Holders = append(f.Holders, policy.Holder{UserID: u.UserID, Username: u.Username, Schedule: u.Schedule,
			Org: &policy.Membership{Kind: kind, ID: orgID, Roles: u.Roles}})
	}
	horizon(rh.More, len(rh.Users), func() authz.Position {
		u := rh.Users[len(rh.Users)-1]
		return authz.Position{Username: u.Username, UserID: u.UserID}
	})
}
