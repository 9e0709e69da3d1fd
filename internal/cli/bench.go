package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/bench"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/logging"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// runBench runs `realguardio bench`: every strategy in turn on the same
// generated organization, on 127.0.0.1 only, then prints the report
// (a table, or JSON with --json) on stdout. Progress and the system's
// warnings go to stderr, so the report can be redirected alone.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("realguardio bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	l := config.NewLoader(fs, getenv)
	def := bench.DefaultConfig()
	var (
		strategies, size, tokenSizes, logLevel string
		scale, plotFile, reports, cpuProfile   string
		pageLimit                              int
		seed                                   int
		jsonOut                                bool
		cfg                                    = def
	)
	l.String(&strategies, "strategies", strings.Join(def.Strategies, ","), "comma-separated strategies to measure, in order; none is the no-authorization baseline the ratios use")
	l.String(&size, "size", def.Size.String(), "size of the generated organization: small or medium")
	l.Int(&seed, "seed", int(def.Seed), "seed of the generated organization")
	l.Int(&cfg.Requests, "requests", def.Requests, "disarm requests per strategy (after a short warm-up)")
	l.Int(&cfg.ListRequests, "list-requests", def.ListRequests, "list requests per strategy")
	l.Int(&cfg.Concurrency, "concurrency", def.Concurrency, "concurrent workers sending requests")
	l.Int(&cfg.Revocations, "revocations", def.Revocations, "revocation trials per strategy")
	l.Duration(&cfg.PollInterval, "poll-interval", def.PollInterval, "pause between two polls of a decision in a revocation trial")
	l.String(&tokenSizes, "token-sizes", "1,10,100,1000", "comma-separated numbers of location roles whose provide access token is measured (empty: none)")
	l.Duration(&cfg.AccessTokenLifetime, "access-token-lifetime", 5*time.Minute, "lifetime of access tokens (the provide strategy's staleness bound)")
	l.Int(&cfg.MaxAccessTokenBytes, "max-access-token-bytes", 8192, "largest access token the IAM signs")
	l.Duration(&cfg.StrategyTimeout, "strategy-timeout", def.StrategyTimeout, "bound on everything done for one strategy")
	l.Duration(&cfg.OpenFGATimeout, "openfga-timeout", 0, "bound on each call to OpenFGA under delegate (0: up's default, 2s); a busy shared machine may need more")
	l.Bool(&jsonOut, "json", false, "print the report as JSON instead of tables")
	l.String(&scale, "scale", "", "comma-separated platform sizes in security systems, ascending (e.g. 1000,10000,100000): run the scale benchmark instead, one platform per strategy grown through the bulk imports")
	l.String(&plotFile, "plot", "", "with --scale, write an SVG of latency against platform size, one line per strategy, to this file")
	l.Int(&pageLimit, "page-limit", 50, "with --scale, the page size of the first-page lists")
	l.String(&reports, "scale-reports", "", "comma-separated files of earlier bench --scale --json runs (one strategy each, say): print their merged table, and --plot, without running anything")
	l.String(&logLevel, "log-level", "warn", "level of the system's own log on stderr: debug, info, warn or error")
	l.String(&cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run (every service of the system and the clients) to this file, for go tool pprof")
	if err := l.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "realguardio bench: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	var problems config.Problems
	cfg.Strategies = splitList(strategies)
	cfg.Seed = int64(seed)
	var err error
	if cfg.Size, err = policytest.ParseSize(size); err != nil || cfg.Size == policytest.Large {
		// Large takes far too long to load through the public APIs.
		problems.Addf("size", "must be small or medium, got %q", size)
	}
	cfg.TokenSizeRoles = nil
	for _, s := range splitList(tokenSizes) {
		n, err := strconv.Atoi(s)
		if err != nil {
			problems.Addf("token-sizes", "%q is not a number", s)
			continue
		}
		cfg.TokenSizeRoles = append(cfg.TokenSizeRoles, n)
	}
	var worlds []int
	for _, s := range splitList(scale) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 || n > 10_000_000 || (len(worlds) > 0 && n <= worlds[len(worlds)-1]) {
			problems.Addf("scale", "%q: sizes must be ascending numbers from 10 to 10000000", s)
			continue
		}
		worlds = append(worlds, n)
	}
	if reports != "" {
		if worlds != nil {
			problems.Addf("scale-reports", "cannot be combined with --scale")
		}
		if err := problems.Err(); err != nil {
			fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
			return ExitUsage
		}
		rep, err := mergeScaleReports(splitList(reports))
		if err != nil {
			fmt.Fprintf(stderr, "realguardio bench: --scale-reports: %v\n", err)
			return ExitUsage
		}
		return writeScale(rep, plotFile, jsonOut, stdout, stderr)
	}
	if plotFile != "" && worlds == nil {
		problems.Addf("plot", "needs --scale or --scale-reports")
	}
	if pageLimit < 1 || pageLimit > 500 {
		problems.Addf("page-limit", "must be between 1 and 500, got %d", pageLimit)
	}
	level, err := logging.ParseLevel(logLevel)
	if err != nil {
		problems.Addf("log-level", "%v", err)
	}
	if err := problems.Err(); err != nil {
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitUsage
	}
	logger, err := logging.New(stderr, logging.Text, level)
	if err != nil {
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitUsage
	}
	// Libraries that log through slog's default (zitadel's provider) then
	// keep to the same level instead of printing their start-up notices.
	slog.SetDefault(logger)
	cfg.Logger, cfg.Progress = logger, stderr

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "realguardio bench: --cpu-profile: %v\n", err)
			return ExitUsage
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "realguardio bench: --cpu-profile: %v\n", err)
			return ExitFailure
		}
		defer pprof.StopCPUProfile()
	}
	if worlds != nil {
		return runScale(ctx, bench.ScaleConfig{Config: cfg, Worlds: worlds, PageLimit: pageLimit}, plotFile, jsonOut, stdout, stderr)
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitFailure
	}
	if jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "realguardio bench: write the report: %v\n", err)
		return ExitFailure
	}
	for _, s := range rep.Strategies {
		if s.Error != "" {
			return ExitFailure
		}
	}
	return ExitOK
}

// runScale runs the scale benchmark and writes its report, and its plot
// when plotFile is set.
func runScale(ctx context.Context, cfg bench.ScaleConfig, plotFile string, jsonOut bool, stdout, stderr io.Writer) int {
	rep, err := bench.RunScale(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "realguardio bench: %v\n", err)
		return ExitFailure
	}
	return writeScale(rep, plotFile, jsonOut, stdout, stderr)
}

// mergeScaleReports reads the JSON scale reports of files and merges them
// into one, so strategies measured in separate runs (in parallel, or one
// long run apart) appear in one table and one plot: the points in file
// order, the union of the world sizes, the first run's machine and start,
// the summed durations.
func mergeScaleReports(files []string) (*bench.ScaleReport, error) {
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	var out *bench.ScaleReport
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r bench.ScaleReport
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: not a scale report: %w", f, err)
		}
		if out == nil {
			out = &bench.ScaleReport{Started: r.Started, Machine: r.Machine}
		}
		out.Points = append(out.Points, r.Points...)
		out.Duration += r.Duration
		for _, w := range r.Worlds {
			if !slices.Contains(out.Worlds, w) {
				out.Worlds = append(out.Worlds, w)
			}
		}
	}
	slices.Sort(out.Worlds)
	return out, nil
}

// writeScale writes a scale report as a table (or JSON) and its plot.
func writeScale(rep *bench.ScaleReport, plotFile string, jsonOut bool, stdout, stderr io.Writer) int {
	var err error
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		bench.WriteScaleTable(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "realguardio bench: write the report: %v\n", err)
		return ExitFailure
	}
	if plotFile != "" {
		var buf bytes.Buffer
		if err := bench.PlotScale(&buf, rep); err != nil {
			fmt.Fprintf(stderr, "realguardio bench: plot: %v\n", err)
			return ExitFailure
		}
		if err := os.WriteFile(plotFile, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "realguardio bench: write the plot: %v\n", err)
			return ExitFailure
		}
	}
	for _, p := range rep.Points {
		if p.Error != "" {
			return ExitFailure
		}
	}
	return ExitOK
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
