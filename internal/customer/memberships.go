package customer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/policy"
)

// RelayMemberships learns which dealer and monitoring provider a user
// works for from the Dealer and Monitoring Provider Services' subject
// facts (GET /authz/subjects/{userId}, docs/fetch-api.md), presenting the
// user's own token: a user may read their own facts, so this service needs
// no right to read anybody else's. An empty URL skips that service.
type RelayMemberships struct {
	DealerURL, MonitoringURL string
	// HTTP is the client of the calls (10 s timeout when nil).
	HTTP *http.Client
}

var _ app.Memberships = RelayMemberships{}

// Of asks both services at once; a service that does not answer is an
// apperr.Unavailable.
func (r RelayMemberships) Of(ctx context.Context, bearer, userID string) (app.Membership, error) {
	var out app.Membership
	var wg sync.WaitGroup
	var derr, merr error
	if r.DealerURL != "" {
		wg.Go(func() { out.DealerID, derr = r.organization(ctx, r.DealerURL, policy.OrgDealer, bearer, userID) })
	}
	if r.MonitoringURL != "" {
		wg.Go(func() {
			out.MonitoringProviderID, merr = r.organization(ctx, r.MonitoringURL, policy.OrgMonitoringProvider, bearer, userID)
		})
	}
	wg.Wait()
	if derr != nil {
		return app.Membership{}, derr
	}
	return out, merr
}

// organization returns the id of the organization of kind that userID
// works for at base, "" when none.
func (r RelayMemberships) organization(ctx context.Context, base string, kind policy.OrgKind, bearer, userID string) (string, error) {
	c := r.HTTP
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, Transport: telemetry.Transport(http.DefaultTransport)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/authz/subjects/"+url.PathEscape(userID), nil)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "build the subject facts request")
	}
	req.Header.Set("Authorization", bearer)
	resp, err := c.Do(req)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Unavailable, "the %s service is not reachable", kind)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return "", apperr.New(apperr.Unavailable, "the %s service answered %d to the caller's subject facts", kind, resp.StatusCode)
	}
	var body struct {
		Organization *struct {
			Kind policy.OrgKind `json:"kind"`
			ID   string         `json:"id"`
		} `json:"organization"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", apperr.Wrap(err, apperr.Unavailable, "the %s service's subject facts", kind)
	}
	if body.Organization == nil {
		return "", nil
	}
	if body.Organization.Kind != kind {
		return "", apperr.New(apperr.Unavailable, "the %s service named an organization of kind %q", kind, body.Organization.Kind)
	}
	return body.Organization.ID, nil
}
