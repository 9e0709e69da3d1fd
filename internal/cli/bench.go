package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	l.Bool(&jsonOut, "json", false, "print the report as JSON instead of tables")
	l.String(&logLevel, "log-level", "warn", "level of the system's own log on stderr: debug, info, warn or error")
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
