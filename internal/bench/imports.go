package bench

import (
	"context"
	"fmt"

	"github.com/realguardio/realguardio/internal/apiclient"
)

// importBatch is the number of items the loader sends per bulk import,
// API.md's maximum.
const importBatch = 10000

// batches calls fn with consecutive index ranges [lo, hi) of at most
// importBatch of n items.
func batches(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += importBatch {
		if err := fn(lo, min(lo+importBatch, n)); err != nil {
			return err
		}
	}
	return nil
}

// importLocations creates every World location through the customers'
// bulk import (POST /customers/{id}/locations/import), one request per
// customer and 10 000 locations, as a customer onboarding its sites would.
// A location's dealer is known to the Customer Service from events, so a
// request naming a dealer just created is retried.
func (r *runner) importLocations(ctx context.Context, l *loaded) error {
	byCustomer := map[string][]int{}
	var order []string
	for i, loc := range l.w.Locations {
		if _, ok := byCustomer[loc.CustomerID]; !ok {
			order = append(order, loc.CustomerID)
		}
		byCustomer[loc.CustomerID] = append(byCustomer[loc.CustomerID], i)
	}
	for _, cust := range order {
		idx := byCustomer[cust]
		err := batches(len(idx), func(lo, hi int) error {
			items := make([]map[string]any, 0, hi-lo)
			for _, i := range idx[lo:hi] {
				item := map[string]any{"name": fmt.Sprintf("location %d", i)}
				if d := l.w.Locations[i].DealerID; d != "" {
					item["dealerId"] = l.real[d]
				}
				items = append(items, item)
			}
			var out struct {
				IDs []string `json:"ids"`
			}
			err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
				_, err := l.orgAdmins[cust].Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+l.real[cust]+"/locations/import",
					map[string]any{"locations": items}, &out)
				return err
			})
			if err != nil {
				return fmt.Errorf("import %d locations: %w", hi-lo, err)
			}
			if len(out.IDs) != hi-lo {
				return fmt.Errorf("import of %d locations answered %d ids", hi-lo, len(out.IDs))
			}
			for k, i := range idx[lo:hi] {
				l.real[l.w.Locations[i].ID] = out.IDs[k]
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// importLocationRoles grants every World employee location role through
// the customers' bulk import (POST /customers/{id}/location-roles/import).
func (r *runner) importLocationRoles(ctx context.Context, l *loaded) error {
	byCustomer := map[string][]map[string]any{}
	var order []string
	for _, lr := range l.w.EmployeeLocationRoles {
		loc, _ := l.w.Location(lr.LocationID)
		if _, ok := byCustomer[loc.CustomerID]; !ok {
			order = append(order, loc.CustomerID)
		}
		byCustomer[loc.CustomerID] = append(byCustomer[loc.CustomerID], map[string]any{
			"locationId": l.real[lr.LocationID], "employeeId": l.employee[lr.UserID], "roles": lr.Roles})
	}
	for _, cust := range order {
		grants := byCustomer[cust]
		err := batches(len(grants), func(lo, hi int) error {
			_, err := l.orgAdmins[cust].Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+l.real[cust]+"/location-roles/import",
				map[string]any{"grants": grants[lo:hi]}, nil)
			if err != nil {
				return fmt.Errorf("import %d location roles: %w", hi-lo, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// importSecuritySystems creates every World system through POST
// /securitysystems/import (API.md, "Bulk import"). A Security System
// Service without that endpoint (404 or 405) gets them one by one, so the
// benchmark runs against either. The service knows new locations from
// events, so a request naming one is retried.
func (r *runner) importSecuritySystems(ctx context.Context, l *loaded) error {
	systems := l.w.SecuritySystems
	return batches(len(systems), func(lo, hi int) error {
		items := make([]map[string]any, 0, hi-lo)
		for i := lo; i < hi; i++ {
			items = append(items, map[string]any{"locationId": l.real[systems[i].LocationID], "name": fmt.Sprintf("system %d", i)})
		}
		var out struct {
			IDs []string `json:"ids"`
		}
		err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			_, err := r.admin.Do(ctx, apiclient.ServiceSecuritySystem, "POST", "/securitysystems/import", map[string]any{"securitySystems": items}, &out)
			return err
		})
		if missingEndpoint(err) {
			return r.createSecuritySystems(ctx, l, lo, hi)
		}
		if err != nil {
			return fmt.Errorf("import %d security systems: %w", hi-lo, err)
		}
		if len(out.IDs) != hi-lo {
			return fmt.Errorf("import of %d security systems answered %d ids", hi-lo, len(out.IDs))
		}
		for k := range out.IDs {
			l.real[systems[lo+k].ID] = out.IDs[k]
		}
		return nil
	})
}

// createSecuritySystems creates systems lo to hi one request each.
func (r *runner) createSecuritySystems(ctx context.Context, l *loaded, lo, hi int) error {
	for i := lo; i < hi; i++ {
		ss := l.w.SecuritySystems[i]
		var created apiclient.SecuritySystem
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			var err error
			created, err = r.admin.CreateSecuritySystem(ctx, l.real[ss.LocationID], fmt.Sprintf("system %d", i))
			return err
		}); err != nil {
			return fmt.Errorf("create security system %d: %w", i, err)
		}
		l.real[ss.ID] = created.ID
	}
	return nil
}
