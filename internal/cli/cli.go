// Package cli implements the realguardio command line: parsing, the
// subcommands and their exit codes. It reads the environment only through
// the getenv function it is given, so tests run it without touching the
// process environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/logging"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/system"
)

// Exit codes of the command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

const usage = `realguardio runs RealGuardIO, the alarm-system platform of the article
"Authentication and authorization in a microservice architecture".

Usage:
  realguardio up [flags]              run the whole system in one process
  realguardio serve <service> [flags] run one service (%s)
  realguardio rebuild-replica [flags] rebuild the Security System Service's
                                      replica by replaying the event streams
                                      (with the service stopped)
  realguardio rebuild-openfga [flags] rebuild the delegate strategy's OpenFGA
                                      tuples by replaying the event streams
                                      (with the authorization sync stopped)
  realguardio rotate-keys [flags]     add a new IAM signing key now (published
                                      ahead, signing after --key-publish-ahead)
  realguardio bench [flags]           measure the authorization strategies
                                      side by side on 127.0.0.1
  realguardio login [flags]           log in with a browser (the session is
                                      kept in ~/.config/realguardio)
  realguardio logout                  end that session
  realguardio whoami                  who you are logged in as (works offline)
  realguardio systems [--limit N|--all] list the security systems you may view
  realguardio arm SYSTEM, disarm SYSTEM arm or disarm a security system, named
                                      by its id or its name
  realguardio access SYSTEM [--me]    who may view, arm or disarm it, and why
  realguardio reset-password USER-ID  as an administrator: a one-time password
                                      reset code and link for that account
  realguardio version                 print the version

The user commands take --json, remember the IAM and Security System Service
URLs of the login, and exit with 0 ok, 1 error, 2 usage, 3 denied, 4 not
found, 5 unavailable.

Run "realguardio up -h" for the settings; every flag --foo-bar can also be
given as the environment variable REALGUARDIO_FOO_BAR.
`

// Main runs the command with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, strings.Join(system.ServiceNames(), ", "))
		return ExitUsage
	}
	switch args[0] {
	case "up":
		return run(ctx, "up", "", args[1:], stdout, stderr, getenv)
	case "serve":
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprintf(stderr, "realguardio serve: name the service to run, one of %s\n", strings.Join(system.ServiceNames(), ", "))
			return ExitUsage
		}
		return run(ctx, "serve "+args[1], args[1], args[2:], stdout, stderr, getenv)
	case "rebuild-replica":
		return run(ctx, "rebuild-replica", "", args[1:], stdout, stderr, getenv)
	case "rebuild-openfga":
		return run(ctx, "rebuild-openfga", "", args[1:], stdout, stderr, getenv)
	case "rotate-keys":
		return run(ctx, "rotate-keys", "", args[1:], stdout, stderr, getenv)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr, getenv)
	case "version":
		if len(args) > 1 && args[1] == "--json" {
			_ = writeJSON(stdout, map[string]string{"version": version()})
			return ExitOK
		}
		fmt.Fprintln(stdout, version())
		return ExitOK
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, strings.Join(system.ServiceNames(), ", "))
		return ExitOK
	default:
		if code, ok := runUser(ctx, args, stdout, stderr, getenv); ok {
			return code
		}
		fmt.Fprintf(stderr, "realguardio: unknown command %q\n\n", args[0])
		fmt.Fprintf(stderr, usage, strings.Join(system.ServiceNames(), ", "))
		return ExitUsage
	}
}

// run parses the system settings and runs either every service (only == "")
// or one.
func run(ctx context.Context, name, only string, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("realguardio "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	loader := config.NewLoader(fs, getenv)
	var cfg system.Config
	cfg.Bind(loader)
	var logLevel, logFormat string
	loader.String(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	loader.String(&logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	if err := loader.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "realguardio %s: unexpected argument %q\n", name, fs.Arg(0))
		return ExitUsage
	}
	level, err := logging.ParseLevel(logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "realguardio %s: --log-level (REALGUARDIO_LOG_LEVEL): %v\n", name, err)
		return ExitUsage
	}
	logger, err := logging.New(stderr, logging.Format(logFormat), level)
	if err != nil {
		fmt.Fprintf(stderr, "realguardio %s: --log-format (REALGUARDIO_LOG_FORMAT): %v\n", name, err)
		return ExitUsage
	}
	// Libraries that log through slog's default (zitadel's provider) then
	// share the system's format and level.
	slog.SetDefault(logger)
	warnSecretFlags(fs, logger)
	if only != "" {
		cfg.Only = only
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	// The standard OpenTelemetry variables turn OTLP export on; the SDK
	// reads the rest of them (headers, sampler, ...) itself.
	if cfg.Telemetry, err = telemetry.FromEnv(getenv); err != nil {
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	if getenv("OTEL_TRACES_EXPORTER") == "console" {
		cfg.Trace = true // the console of `up` is its trace file
	}
	if name == "rotate-keys" {
		if err := system.RotateKeys(ctx, cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "realguardio rotate-keys: %v\n", err)
			return ExitFailure
		}
		return ExitOK
	}
	if name == "rebuild-replica" {
		if err := system.RebuildReplica(ctx, cfg, logger, stdout); err != nil {
			fmt.Fprintf(stderr, "realguardio rebuild-replica: %v\n", err)
			return ExitFailure
		}
		return ExitOK
	}
	if name == "rebuild-openfga" {
		if err := system.RebuildOpenFGA(ctx, cfg, logger, stdout); err != nil {
			fmt.Fprintf(stderr, "realguardio rebuild-openfga: %v\n", err)
			return ExitFailure
		}
		return ExitOK
	}
	if err := system.Run(ctx, cfg, logger, stdout); err != nil {
		logger.Error("realguardio stopped with an error", "err", err)
		return ExitFailure
	}
	return ExitOK
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "realguardio (unknown version)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return "realguardio " + v + " " + info.GoVersion
}

// secretFlags are the settings that carry secrets.
var secretFlags = []string{"admin-password", "client-secrets", "session-keys", "openfga-token", "nats-password"}

// warnSecretFlags warns when a secret was given on the command line, where
// every local user can read it (/proc/<pid>/cmdline, ps); the environment
// variable keeps it private to the process.
func warnSecretFlags(fs *flag.FlagSet, logger *slog.Logger) {
	fs.Visit(func(f *flag.Flag) {
		for _, name := range secretFlags {
			if f.Name == name {
				logger.Warn("a secret was given as a command-line flag, which other local users can read; prefer the environment variable",
					"flag", "--"+name, "variable", config.EnvName(name))
			}
		}
	})
}
