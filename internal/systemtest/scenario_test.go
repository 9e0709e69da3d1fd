package systemtest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/system"
)

// strategies are the strategies every system test runs with. Adding one
// is one line here.
var strategies = []string{
	"fetch",
	"replicate",
	"delegate",
	"provide",
}

// forEachSystem runs fn as a subtest per strategy and store. A strategy
// `up` rejects by configuration is skipped with the reason; one it accepts
// but cannot start fails.
func forEachSystem(t *testing.T, fn func(t *testing.T, opts Options)) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			if err := ValidateStrategy(strategy); err != nil {
				t.Skipf("SKIPPED: `up` rejects --authz=%s by configuration: %v", strategy, err)
			}
			for _, store := range []Store{StoreSQLite, StorePostgres} {
				t.Run(string(store), func(t *testing.T) {
					fn(t, Options{Strategy: strategy, Store: store})
				})
			}
		})
	}
}

// TestFixedCases runs AUTHZ.md's fixed cases through `up` for every
// strategy: the organizations are created through the public API, the
// users log in through the OIDC flow, and every allow and deny (with its
// reason) is checked with the real requests, including the revocations.
func TestFixedCases(t *testing.T) {
	forEachSystem(t, testFixedCases)
}

func testFixedCases(t *testing.T, opts Options) {
	ctx := context.Background()
	s := Start(t, opts)
	id := policytest.FixedID

	// The fixed cases' schedules, moved to the real clock: frank's day shift
	// in Berlin and grace's night shift past midnight, each once around now
	// and once excluding it, with hours of margin on every edge.
	now := time.Now()
	frankIn, frankOut := berlinShifts(t, now)
	graceIn, graceOut := nightShifts(t, now)

	w := policytest.FixedWorld()
	for user, sch := range map[string]policy.Schedule{"frank": frankIn, "grace": graceIn} {
		must(t, w.Apply(policytest.Change{Kind: policytest.ChangeSchedule, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id(user), Schedule: &sch}))
	}
	started := time.Now()
	l, err := LoadWorld(ctx, s, w, LoadOptions{BootstrapAdmin: true})
	must(t, err)
	t.Logf("fixed world loaded in %v", time.Since(started).Round(time.Millisecond))
	s.MustConverge()

	// The fixed cases without a change before them and without a schedule
	// instant, as real requests; the schedule cases follow at the real
	// clock.
	var after []policytest.FixedCase
	for _, fc := range policytest.FixedCases() {
		c := fc.Case
		switch {
		case len(fc.Before) > 0:
			after = append(after, fc)
			continue
		case !slices.Equal(c.AppRoles, w.AppRoles(c.UserID)):
			continue // alice with REALGUARDIO_ADMIN: at the end, by changing her roles
		case c.Op != policy.OpView && (c.UserID == id("frank") || c.UserID == id("grace")):
			continue // at the real clock below
		}
		checkCase(t, l, fc.Name, c.UserID, c.Op, c.SecuritySystemID, fc.Want)
	}
	allow := policy.Decision{Allowed: true}
	noRole := policy.Decision{Reason: policy.ReasonNoRole}
	outside := policy.Decision{Reason: policy.ReasonOutsideSchedule}
	checkCase(t, l, "frank disarms ss1 within his Berlin shift", id("frank"), policy.OpDisarm, id("ss1"), allow)
	checkCase(t, l, "frank may not arm ss1 within his shift", id("frank"), policy.OpArm, id("ss1"), noRole)
	checkCase(t, l, "grace arms ss1 within her night shift, past midnight", id("grace"), policy.OpArm, id("ss1"), allow)
	checkCase(t, l, "grace may not disarm ss1", id("grace"), policy.OpDisarm, id("ss1"), noRole)
	compare(t, l, "fixed world")

	// Outside the shifts: arm and disarm are refused with
	// outside_schedule, view is not restricted.
	must(t, l.Apply(ctx, policytest.Change{Kind: policytest.ChangeSchedule, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("frank"), Schedule: &frankOut}))
	must(t, l.Apply(ctx, policytest.Change{Kind: policytest.ChangeSchedule, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("grace"), Schedule: &graceOut}))
	s.MustConverge()
	checkCase(t, l, "frank may not disarm ss1 outside his shift", id("frank"), policy.OpDisarm, id("ss1"), outside)
	checkCase(t, l, "frank views ss1 outside his shift", id("frank"), policy.OpView, id("ss1"), allow)
	checkCase(t, l, "grace may not arm ss1 after her night shift ended", id("grace"), policy.OpArm, id("ss1"), outside)
	checkCase(t, l, "grace views ss1 outside her shift", id("grace"), policy.OpView, id("ss1"), allow)

	// The revocations: every case with a change before it, after making
	// those changes through the API.
	applied := map[string]bool{}
	for _, fc := range after {
		for _, c := range fc.Before {
			if key := c.String(); !applied[key] {
				applied[key] = true
				must(t, l.Apply(ctx, c))
			}
		}
	}
	s.MustConverge()
	for _, fc := range after {
		checkCase(t, l, fc.Name, fc.Case.UserID, fc.Case.Op, fc.Case.SecuritySystemID, fc.Want)
	}
	// charlie keeps no other way to ss1; dave and erin lost theirs with d1.
	checkCase(t, l, "charlie removed from t1 may not view ss1", id("charlie"), policy.OpView, id("ss1"), noRole)
	checkCase(t, l, "dave may not view ss1 once loc1 is d2's", id("dave"), policy.OpView, id("ss1"), noRole)
	checkCase(t, l, "alice still disarms ss1", id("alice"), policy.OpDisarm, id("ss1"), allow)
	compare(t, l, "fixed world after the revocations")

	// A refreshed session keeps its rights: the refresh grant of the real
	// client library, then the same decisions.
	alice := l.Users[id("alice")]
	must(t, alice.Client.Session().Refresh(ctx))
	checkCase(t, l, "alice disarms ss1 with a refreshed token", id("alice"), policy.OpDisarm, id("ss1"), allow)

	// The last fixed case: alice also holding REALGUARDIO_ADMIN may view
	// ss2 of foo (and still not disarm it). The roles are the IAM's; a new
	// login carries them. Done last: the World's tokens no longer match.
	admin := s.MustAdmin()
	_, r := admin.SetUserRoles(ctx, alice.Subject, []string{"CUSTOMER_EMPLOYEE", policy.AppRoleAdmin})
	r.Want(t, http.StatusOK)
	alice.Client = s.Client(s.MustLogin(alice.Username, alice.Password))
	checkCase(t, l, "alice, also holding REALGUARDIO_ADMIN, views ss2 of foo", id("alice"), policy.OpView, id("ss2"), allow)
	checkCase(t, l, "alice, also holding REALGUARDIO_ADMIN, may not disarm ss2", id("alice"), policy.OpDisarm, id("ss2"), noRole)
	checkCase(t, l, "alice, also holding REALGUARDIO_ADMIN, still disarms ss1", id("alice"), policy.OpDisarm, id("ss1"), allow)

	checkUnauthenticated(t, s, l.Real(id("ss1")))
}

// checkUnauthenticated asks every backend without a token and with a
// token that is not one. A bad token must get 401 with WWW-Authenticate
// naming invalid_token (API.md, "Conventions"). A missing token gets 401
// with a Bearer challenge: the services deliberately leave out the error
// code there (RFC 6750 §3.1), while API.md's sentence names invalid_token
// for a missing token too; that discrepancy is reported to the lead, not
// decided here.
func checkUnauthenticated(t *testing.T, s *System, ss1 string) {
	t.Helper()
	ctx := context.Background()
	paths := map[string]string{
		system.ServiceSecuritySystem: "/securitysystems/" + ss1,
		system.ServiceCustomer:       "/profiles",
		system.ServiceDealer:         "/dealers",
		system.ServiceMonitoring:     "/monitoring-providers",
	}
	for service, path := range paths {
		r := s.WithToken("").Do(ctx, service, "GET", path, nil, nil)
		if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s without a token: want 401 with a Bearer challenge, got %s (WWW-Authenticate %q)", service, path, r, r.Header.Get("WWW-Authenticate"))
		}
		r = s.WithToken("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.").Do(ctx, service, "GET", path, nil, nil)
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s %s with a forged token: want 401 with WWW-Authenticate Bearer error=\"invalid_token\", got %s (WWW-Authenticate %q)",
				service, path, r, r.Header.Get("WWW-Authenticate"))
		}
	}
}

// checkCase makes the request for op (GET for view, PUT for arm and
// disarm) as user and checks the answer: 200 (and the new state) when
// allowed, 403 with the reason when denied.
func checkCase(t *testing.T, l *Loaded, name, user string, op policy.Op, system string, want policy.Decision) {
	t.Helper()
	u := l.Users[user]
	r := u.Client.Act(context.Background(), op, l.Real(system))
	wantText := "allow"
	if !want.Allowed {
		wantText = "403 " + want.Reason
	}
	ok := r.Err == nil
	switch {
	case !ok:
	case want.Allowed:
		ok = r.Status == http.StatusOK
		if ok && op != policy.OpView {
			var state string
			if op == policy.OpArm {
				state = "ARMED"
			} else {
				state = "DISARMED"
			}
			var ss SecuritySystem
			ok = json.Unmarshal(r.Body, &ss) == nil && ss.State == state
		}
	default:
		ok = r.Status == http.StatusForbidden && r.Reason() == want.Reason
	}
	if !ok {
		t.Errorf("%s: %s %s %s: want %s, got %s", name, l.Name(user), op, l.Name(system), wantText, r)
		return
	}
	t.Logf("ok: %s (%s)", name, wantText)
}

// compare runs the whole-matrix comparison and reports every mismatch.
func compare(t *testing.T, l *Loaded, what string) {
	t.Helper()
	started := time.Now()
	res, err := l.Compare(context.Background())
	must(t, err)
	for _, m := range res.Mismatches {
		t.Errorf("%s: decision differs from the reference: %s", what, l.Describe(m))
	}
	t.Logf("%s: %d decisions compared with the reference (%d skipped at a shift edge), %d mismatches, in %v",
		what, res.Checked, res.Skipped, len(res.Mismatches), time.Since(started).Round(time.Millisecond))
}

// berlinShifts returns frank's schedules in Europe/Berlin: a shift from
// two hours before now to two hours after, on the weekday it starts (a
// night shift when it crosses midnight), and one from three to five hours
// after now, which excludes now.
func berlinShifts(t *testing.T, now time.Time) (in, out policy.Schedule) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	must(t, err)
	shift := func(from, to time.Time) policy.Schedule {
		from, to = from.In(berlin), to.In(berlin)
		return policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
			{Weekdays: []string{policy.Weekdays[from.Weekday()]}, Start: from.Format("15:04"), End: to.Format("15:04")},
		}}
	}
	in = shift(now.Add(-2*time.Hour), now.Add(2*time.Hour))
	out = shift(now.Add(3*time.Hour), now.Add(5*time.Hour))
	checkSchedules(t, now, in, out)
	return in, out
}

// nightShifts returns grace's schedules: the classic night shift 22:00 to
// 06:00 in a zone where now is between 02:00 and 03:00 the next morning
// (UTC itself when the clock allows; else a fixed-offset Etc zone), so now
// falls in the part past midnight, as Sunday 05:59 does in AUTHZ.md; and
// the same shift ending at 01:00, which is over by now, as at 06:00.
func nightShifts(t *testing.T, now time.Time) (in, out policy.Schedule) {
	offset := 2 - now.UTC().Hour() // hours east of UTC putting now at 02:xx
	if offset < -12 {
		offset += 24
	}
	zone := "UTC"
	switch {
	case offset > 0:
		zone = "Etc/GMT-" + strconv.Itoa(offset) // the Etc names have the sign reversed
	case offset < 0:
		zone = "Etc/GMT+" + strconv.Itoa(-offset)
	}
	loc, err := time.LoadLocation(zone)
	must(t, err)
	startDay := policy.Weekdays[now.In(loc).Add(-4*time.Hour).Weekday()]
	in = policy.Schedule{TimeZone: zone, Shifts: []policy.Shift{{Weekdays: []string{startDay}, Start: "22:00", End: "06:00"}}}
	out = policy.Schedule{TimeZone: zone, Shifts: []policy.Shift{{Weekdays: []string{startDay}, Start: "22:00", End: "01:00"}}}
	if h := now.In(loc).Hour(); h != 2 {
		t.Fatalf("zone %s puts now at %02d:xx, want 02:xx", zone, h)
	}
	checkSchedules(t, now, in, out)
	return in, out
}

// checkSchedules makes sure, by the reference rule, that in covers and out
// excludes the whole next hour, so the test's requests cannot cross an
// edge.
func checkSchedules(t *testing.T, now time.Time, in, out policy.Schedule) {
	t.Helper()
	for d := time.Duration(0); d <= time.Hour; d += time.Minute {
		if !in.Covers(now.Add(d)) || out.Covers(now.Add(d)) {
			t.Fatalf("schedules built around %s do not hold for the next hour: in %+v, out %+v", now.UTC().Format(time.RFC3339), in, out)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
