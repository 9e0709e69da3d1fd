package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one `realguardio bench` run measured, with the
// settings and the machine, so that a figure is never read without them.
type Report struct {
	// Started is when the run began (UTC).
	Started time.Time `json:"started"`
	// Duration is the wall time of the whole run, setup included.
	Duration time.Duration `json:"durationNs"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
	// Settings are the options of the run.
	Settings Settings `json:"settings"`
	// World describes the generated organization every strategy was given.
	World WorldInfo `json:"world"`
	// Strategies holds one result per strategy, in run order.
	Strategies []StrategyResult `json:"strategies"`
	// TokenSizes are the provide strategy's access-token sizes by the
	// number of location roles of the user; empty when provide did not run.
	TokenSizes []TokenSize `json:"tokenSizes,omitempty"`
	// Note reminds the reader how to compare the figures.
	Note string `json:"note"`
}

// Machine describes the computer the run used.
type Machine struct {
	// OS and Arch are runtime.GOOS and runtime.GOARCH.
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// CPUs is the number of logical CPUs, GOMAXPROCS how many of them Go
	// may use at once: the figures scale with the second.
	CPUs       int `json:"cpus"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// GoVersion is the Go release the binary was built with.
	GoVersion string `json:"goVersion"`
}

// Settings are the options a run used.
type Settings struct {
	// Strategies are the strategies measured, in run order.
	Strategies []string `json:"strategies"`
	// Size and Seed chose the generated organization.
	Size string `json:"size"`
	Seed int64  `json:"seed"`
	// Requests and ListRequests are the timed requests per strategy,
	// Warmup the untimed disarm requests before them.
	Requests     int `json:"requests"`
	ListRequests int `json:"listRequests"`
	Warmup       int `json:"warmup"`
	// Concurrency is the number of workers sending requests.
	Concurrency int `json:"concurrency"`
	// Revocations is the number of revocation trials per strategy.
	Revocations int `json:"revocations"`
	// PollInterval is the pause between two decision polls in a
	// revocation trial: the resolution of that figure.
	PollInterval time.Duration `json:"pollIntervalNs"`
	// AccessTokenLifetime is the IAM's access-token lifetime: the provide
	// strategy's staleness bound.
	AccessTokenLifetime time.Duration `json:"accessTokenLifetimeNs"`
	// MaxAccessTokenBytes is the largest access token the IAM signs.
	MaxAccessTokenBytes int `json:"maxAccessTokenBytes"`
	// TokenSizeRoles are the location-role counts of the token-size users.
	TokenSizeRoles []int `json:"tokenSizeRoles"`
	// Store is where the services keep their data.
	Store string `json:"store"`
}

// WorldInfo counts what the generated organization holds and which parts
// the load uses.
type WorldInfo struct {
	// Customers ... SecuritySystems count the entities of each kind.
	Customers           int `json:"customers"`
	Dealers             int `json:"dealers"`
	MonitoringProviders int `json:"monitoringProviders"`
	Locations           int `json:"locations"`
	Employees           int `json:"employees"`
	Teams               int `json:"teams"`
	SecuritySystems     int `json:"securitySystems"`
	// DisarmSystems and DisarmUsers are the (system, user) pairs the
	// disarm load uses: users allowed to arm and disarm, unrestricted by a
	// schedule. Workers sharing a system take turns on it.
	DisarmSystems int `json:"disarmSystems"`
	DisarmUsers   int `json:"disarmUsers"`
	// ListUser is who lists, ListVisible how many systems it sees.
	ListUser    string `json:"listUser"`
	ListVisible int    `json:"listVisible"`
}

// StrategyResult is what one strategy measured.
type StrategyResult struct {
	// Strategy is the --authz value measured ("none" is the baseline).
	Strategy string `json:"strategy"`
	// Setup is the time to start the system, load the world, log the
	// users in and converge: not a benchmark figure, but it explains how
	// long the run took.
	Setup time.Duration `json:"setupNs"`
	// Disarm is the PUT /securitysystems/{id} load.
	Disarm Throughput `json:"disarm"`
	// List is the GET /securitysystems load.
	List Throughput `json:"list"`
	// Revocation is the revoke → first denial latency; nil for none.
	Revocation *Revocation `json:"revocation,omitempty"`
	// Error is set when the strategy could not be measured; the other
	// strategies still run.
	Error string `json:"error,omitempty"`
}

// Revocation is the latency from a revoke's 200 to the first denied
// decision, over several trials.
type Revocation struct {
	Summary
	// Trials is the number of trials asked for.
	Trials int `json:"trials"`
	// Polls is the mean number of decision polls until the denial.
	Polls float64 `json:"polls"`
	// Refresh says the access token was refreshed right after the revoke
	// (provide), so the figure is "time to first 403 after a refresh".
	Refresh bool `json:"refresh"`
	// Bound is the strategy's documented worst case (AUTHZ.md's staleness
	// bound) in words.
	Bound string `json:"bound"`
	// FirstError describes the first failed trial.
	FirstError string `json:"firstError,omitempty"`
}

// TokenSize is the size of a provide access token of a customer employee
// with Locations location roles, or the IAM's refusal to sign it.
type TokenSize struct {
	// Locations is the number of location roles the user holds.
	Locations int `json:"locations"`
	// Bytes is the size of the access token the IAM issued.
	Bytes int `json:"bytes,omitempty"`
	// Refused is set when the IAM would not sign it (over the limit).
	Refused bool `json:"refused"`
	// Message is the IAM's error description when it refused.
	Message string `json:"message,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// baseline returns the none result, if it ran and succeeded.
func (r *Report) baseline() *StrategyResult {
	for i := range r.Strategies {
		if s := &r.Strategies[i]; s.Strategy == StrategyNone && s.Error == "" {
			return s
		}
	}
	return nil
}

// WriteText writes the report as readable tables, each headed by the
// settings its figures depend on.
func (r *Report) WriteText(out io.Writer) error {
	var b strings.Builder
	s, m, wi := r.Settings, r.Machine, r.World
	fmt.Fprintf(&b, "RealGuardIO benchmark, %s, %s in all\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s\n", m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.GoVersion)
	fmt.Fprintf(&b, "system:  every service in this process on 127.0.0.1, %s, embedded NATS (and OpenFGA for delegate); access tokens live %s\n",
		s.Store, s.AccessTokenLifetime)
	fmt.Fprintf(&b, "world:   policytest.Generate(seed %d, %s): %s, %s, %s, %s, %s, %s, %s\n", s.Seed, s.Size,
		count(wi.Customers, "customer"), count(wi.Dealers, "dealer"), count(wi.MonitoringProviders, "monitoring provider"),
		count(wi.Locations, "location"), count(wi.Employees, "employee"), count(wi.Teams, "team"), count(wi.SecuritySystems, "security system"))
	fmt.Fprintf(&b, "\n%s\n", r.Note)

	base := r.baseline()
	ratio := func(v, b float64) string {
		if x := Ratio(v, b); x > 0 {
			return fmt.Sprintf("%.2f×", x)
		}
		return "–"
	}
	msf := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	load := func(title string, pick func(*StrategyResult) Throughput) {
		var bt Throughput // zero without a baseline: every ratio prints "–"
		if base != nil {
			bt = pick(base)
		}
		b.WriteString("\n" + title + "\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "strategy\treq/s\tvs none\tp50 ms\tp90 ms\tp99 ms\tp50 vs none\tp99 vs none\terrors\t")
		for i := range r.Strategies {
			st := &r.Strategies[i]
			if st.Error != "" {
				fmt.Fprintf(tw, "%s\tfailed\t\t\t\t\t\t\t\t\n", st.Strategy)
				continue
			}
			t := pick(st)
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", st.Strategy, t.PerSecond, ratio(t.PerSecond, bt.PerSecond),
				msf(t.P50), msf(t.P90), msf(t.P99), ratio(float64(t.P50), float64(bt.P50)), ratio(float64(t.P99), float64(bt.P99)), t.Errors)
		}
		tw.Flush()
		for i := range r.Strategies {
			if st := &r.Strategies[i]; st.Error == "" && pick(st).FirstError != "" {
				fmt.Fprintf(&b, "  %s: %d errors, the first: %s\n", st.Strategy, pick(st).Errors, pick(st).FirstError)
			}
		}
	}
	load(fmt.Sprintf("Disarm: PUT /securitysystems/{id}, ARM and DISARM alternating so every request decides and changes the state\n"+
		"  %d requests after %d warm-up, concurrency %d, %s and %s allowed to arm and disarm them (workers sharing a system take turns)",
		s.Requests, s.Warmup, s.Concurrency, count(wi.DisarmSystems, "system"), count(wi.DisarmUsers, "user")), func(st *StrategyResult) Throughput { return st.Disarm })
	load(fmt.Sprintf("List: GET /securitysystems with the actions of each system\n  %d requests, concurrency %d, as %s, who sees %d systems",
		s.ListRequests, s.Concurrency, wi.ListUser, wi.ListVisible), func(st *StrategyResult) Throughput { return st.List })

	if s.Revocations > 0 {
		r.writeRevocations(&b, msf)
	}
	r.writeTokenSizes(&b)

	b.WriteString("\nsetup per strategy (start, load, log in, converge; not a benchmark figure):")
	for _, st := range r.Strategies {
		fmt.Fprintf(&b, " %s %s;", st.Strategy, st.Setup.Round(100*time.Millisecond))
	}
	b.WriteString("\n")
	for _, st := range r.Strategies {
		if st.Error != "" {
			fmt.Fprintf(&b, "%s failed: %s\n", st.Strategy, st.Error)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// count spells n things with the noun in the right number.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeRevocations writes the revocation table and each strategy's bound.
func (r *Report) writeRevocations(b *strings.Builder, msf func(time.Duration) string) {
	s := r.Settings
	fmt.Fprintf(b, "\nRevocation → first denial: PUT .../employee-roles/{employeeId} [] in the Customer Service, then GET /securitysystems/{id} every %s\n"+
		"  until DISARM is no longer allowed; time from the revoke's 200 to that answer, %d trials\n", s.PollInterval, s.Revocations)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tp50 ms\tp99 ms\tmax ms\tpolls\terrors\t")
	var bounds strings.Builder
	for _, st := range r.Strategies {
		switch rv := st.Revocation; {
		case st.Error != "":
			fmt.Fprintf(tw, "%s\tfailed\t\t\t\t\t\n", st.Strategy)
		case rv == nil && st.Strategy == StrategyNone:
			fmt.Fprintf(tw, "%s\tn/a\t\t\t\t\t\n", st.Strategy)
			fmt.Fprintf(&bounds, "  %s: no authorization, nothing to revoke\n", st.Strategy)
		case rv == nil:
			fmt.Fprintf(tw, "%s\tnot measured\t\t\t\t\t\n", st.Strategy)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%d\t\n", st.Strategy, msf(rv.P50), msf(rv.P99), msf(rv.Max), rv.Polls, rv.Errors)
			if rv.Refresh {
				fmt.Fprintf(&bounds, "  %s: measured with a token refresh right after the revoke (time to first 403 after refresh); bound: %s\n", st.Strategy, rv.Bound)
			} else {
				fmt.Fprintf(&bounds, "  %s: bound: %s\n", st.Strategy, rv.Bound)
			}
			if rv.FirstError != "" {
				fmt.Fprintf(&bounds, "  %s: first error: %s\n", st.Strategy, rv.FirstError)
			}
		}
	}
	tw.Flush()
	b.WriteString(bounds.String())
}

// writeTokenSizes writes the provide strategy's access-token sizes.
func (r *Report) writeTokenSizes(b *strings.Builder) {
	if len(r.TokenSizes) == 0 {
		return
	}
	fmt.Fprintf(b, "\nAccess-token size under provide: a customer employee with n location roles, logged in through the OIDC flow\n"+
		"  (the IAM signs at most %d bytes)\n", r.Settings.MaxAccessTokenBytes)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "location roles\taccess token")
	for _, t := range r.TokenSizes {
		if t.Refused {
			fmt.Fprintf(tw, "%d\trefused: %s\n", t.Locations, t.Message)
		} else {
			fmt.Fprintf(tw, "%d\t%d bytes\n", t.Locations, t.Bytes)
		}
	}
	tw.Flush()
}
