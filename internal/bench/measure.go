package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
)

func flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// trialBound bounds each wait of a revocation trial; a strategy whose
// decision has not flipped by then fails the trial rather than the run.
const trialBound = 30 * time.Second

// bounds are AUTHZ.md's staleness bounds, in words for the report.
func bound(strategy string, lifetime time.Duration) string {
	switch strategy {
	case "provide":
		return fmt.Sprintf("access-token lifetime %s (an unrefreshed token keeps the role until it expires)", lifetime)
	case "fetch":
		return "none: the owners are asked at every decision"
	case "replicate":
		return "event propagation delay (owner outbox → NATS → replica)"
	case "delegate":
		return "event propagation delay (owner outbox → NATS → sync → OpenFGA)"
	}
	return ""
}

// mayDisarm asks the Security System Service whether the revocation
// employee may disarm the trials' system now: GET /securitysystems/{id}
// and its actions, which are decided by the same rule as the PUT but
// change nothing, so polling it fast leaves no trace but audit-free reads.
// A 403 is a denial; any other failure is an error.
func mayDisarm(ctx context.Context, fx *fixtures) (bool, error) {
	ss, err := fx.revokeClient.GetSecuritySystem(ctx, fx.revokeSystem)
	if apiclient.StatusOf(err) == http.StatusForbidden {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(ss.Actions, apiclient.ActionDisarm), nil
}

// revocations runs the revocation trials: grant DISARMER at the location
// and wait until it is decided, revoke it (PUT [] in the Customer
// Service), and time from the revoke's 200 to the first denied decision,
// polling every PollInterval. Under provide the token is refreshed right
// after the revoke (and before each poll while granting), since the facts
// travel in the token: the figure is then "first 403 after a refresh",
// and the bound without one is the token's lifetime.
func (r *runner) revocations(ctx context.Context, fx *fixtures) Revocation {
	refresh := r.strategy == "provide"
	out := Revocation{Trials: r.cfg.Revocations, Refresh: refresh, Bound: bound(r.strategy, r.cfg.AccessTokenLifetime)}
	var samples []time.Duration
	var polls, errs int
	failed := func(err error) {
		errs++
		if out.FirstError == "" {
			out.FirstError = err.Error()
		}
	}
	set := func(roles []string) error {
		return fx.revokeAdmin.SetLocationEmployeeRoles(ctx, fx.revokeCustomer, fx.revokeLocation, fx.revokeEmployee, roles)
	}
	for range r.cfg.Revocations {
		if ctx.Err() != nil {
			break
		}
		if err := set([]string{policy.RoleDisarmer}); err != nil {
			failed(fmt.Errorf("grant: %w", err))
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, trialBound)
		var lastErr error
		err := poll(gctx, r.cfg.PollInterval, func() bool {
			if refresh {
				if lastErr = fx.revokeSession.Refresh(gctx); lastErr != nil {
					return false
				}
			}
			var ok bool
			ok, lastErr = mayDisarm(gctx, fx)
			return ok
		})
		cancel()
		if err != nil {
			failed(fmt.Errorf("the grant was not decided within %s (last error: %v)", trialBound, lastErr))
			continue
		}

		if err := set([]string{}); err != nil {
			failed(fmt.Errorf("revoke: %w", err))
			continue
		}
		t0 := time.Now()
		pctx, cancel := context.WithTimeout(ctx, trialBound)
		n := 0
		var trialErr error
		if refresh {
			trialErr = fx.revokeSession.Refresh(pctx)
		}
		if trialErr == nil {
			lastErr = nil
			if err := poll(pctx, r.cfg.PollInterval, func() bool {
				n++
				var ok bool
				ok, lastErr = mayDisarm(pctx, fx)
				return lastErr == nil && !ok
			}); err != nil {
				trialErr = lastErr
				if trialErr == nil {
					trialErr = fmt.Errorf("still allowed %s after the revoke", trialBound)
				}
			}
		}
		d := time.Since(t0)
		cancel()
		if trialErr != nil {
			failed(trialErr)
			continue
		}
		samples = append(samples, d)
		polls += n
	}
	out.Summary = Summarize(samples, errs)
	if len(samples) > 0 {
		out.Polls = float64(polls) / float64(len(samples))
	}
	return out
}

// tokenSizes creates, in a customer of its own, one employee per entry of
// TokenSizeRoles holding DISARMER at that many locations (no organization
// role, no schedule), logs each in through the OIDC flow and records the
// size of the access token the IAM issued, or its refusal when the token
// would exceed MaxAccessTokenBytes.
func (r *runner) tokenSizes(ctx context.Context) ([]TokenSize, error) {
	counts := r.cfg.TokenSizeRoles
	most := slices.Max(counts)
	email := emailOf("admin-tokens", 0)
	cust, err := r.admin.CreateCustomer(ctx, "bench token sizes", apiclient.NewEmployee{Email: email, FirstName: "Token", LastName: "Admin", Password: r.initialFor(email)})
	if err != nil {
		return nil, fmt.Errorf("create the customer: %w", err)
	}
	oa, _, err := r.login(ctx, email, r.password)
	if err != nil {
		return nil, err
	}
	locs := make([]string, most)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range most {
		g.Go(func() error {
			loc, err := oa.CreateLocation(gctx, cust.ID, fmt.Sprintf("token location %d", i), "")
			locs[i] = loc.ID
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("create the locations: %w", err)
	}
	emails := make([]string, len(counts))
	for k, n := range counts {
		emails[k] = emailOf(fmt.Sprintf("tokens-%d", n), k)
		emp, err := oa.CreateEmployee(ctx, policy.OrgCustomer, cust.ID, apiclient.NewEmployee{Email: emails[k], FirstName: "Token", LastName: fmt.Sprint(n), Password: r.initialFor(emails[k])})
		if err != nil {
			return nil, fmt.Errorf("create the employee with %d location roles: %w", n, err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for _, loc := range locs[:n] {
			g.Go(func() error {
				return oa.SetLocationEmployeeRoles(gctx, cust.ID, loc, emp.ID, []string{policy.RoleDisarmer})
			})
		}
		if err := g.Wait(); err != nil {
			return nil, fmt.Errorf("grant %d location roles: %w", n, err)
		}
	}
	out := make([]TokenSize, len(counts))
	for k, n := range counts {
		ts := TokenSize{Locations: n}
		_, se, err := r.login(ctx, emails[k], r.password)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			ts.Refused, ts.Message = true, refusal(err)
		} else {
			ts.Bytes = len(se.Token().AccessToken)
		}
		out[k] = ts
	}
	return out, nil
}

// refusal keeps the OAuth error of a refused login ("server_error: the
// authorization data is too large ...") without the wrapping that names
// the login steps.
func refusal(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "server_error"); i >= 0 {
		return msg[i:]
	}
	return msg
}
