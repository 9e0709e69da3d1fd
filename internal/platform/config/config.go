// Package config binds command-line flags to REALGUARDIO_* environment
// variables in one place, so every setting has one name, one default and one
// validation, and no code reads the environment on its own.
//
// A flag --foo-bar is also read from REALGUARDIO_FOO_BAR; a flag given on the
// command line wins over the environment. Errors name the flag or variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// EnvPrefix prefixes every environment variable of RealGuardIO.
const EnvPrefix = "REALGUARDIO_"

// EnvName returns the environment variable bound to the flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Loader defines flags on a FlagSet and fills them from the environment.
type Loader struct {
	FS     *flag.FlagSet
	Getenv func(string) string
}

// NewLoader returns a loader for fs reading variables through getenv (os.Getenv
// in production, a map in tests).
func NewLoader(fs *flag.FlagSet, getenv func(string) string) *Loader {
	return &Loader{FS: fs, Getenv: getenv}
}

func (l *Loader) usage(name, usage string) string {
	return usage + " (env " + EnvName(name) + ")"
}

// String defines a string setting.
func (l *Loader) String(p *string, name, def, usage string) {
	l.FS.StringVar(p, name, def, l.usage(name, usage))
}

// Int defines an integer setting.
func (l *Loader) Int(p *int, name string, def int, usage string) {
	l.FS.IntVar(p, name, def, l.usage(name, usage))
}

// Bool defines a boolean setting.
func (l *Loader) Bool(p *bool, name string, def bool, usage string) {
	l.FS.BoolVar(p, name, def, l.usage(name, usage))
}

// Duration defines a duration setting (Go syntax: 5m, 90s).
func (l *Loader) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	l.FS.DurationVar(p, name, def, l.usage(name, usage))
}

// Parse parses args, then applies each variable whose flag was not given on
// the command line. A bad value names the variable it came from.
func (l *Loader) Parse(args []string) error {
	if err := l.FS.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	l.FS.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	l.FS.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := EnvName(f.Name)
		v := l.Getenv(env)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid value %q: %v", env, v, err))
		}
	})
	return errors.Join(errs...)
}

// Problems collects validation failures, each naming its setting, so that a
// misconfigured start reports everything wrong at once.
type Problems struct{ errs []error }

// Addf records a problem with the named setting.
func (p *Problems) Addf(setting, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("--%s (%s): %s", setting, EnvName(setting), fmt.Sprintf(format, args...)))
}

// Err returns nil when no problem was recorded, else all of them joined.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  %w", errors.Join(p.errs...))
}

// CheckHTTPURL records a problem when value is not an absolute http(s) URL.
func (p *Problems) CheckHTTPURL(setting, value string) {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Addf(setting, "must be an absolute http(s) URL, got %q", value)
	}
}

// CheckAddr records a problem when value is not a host:port listen address.
func (p *Problems) CheckAddr(setting, value string) {
	i := strings.LastIndexByte(value, ':')
	if i < 0 || i == len(value)-1 {
		p.Addf(setting, "must be a listen address host:port (host may be empty), got %q", value)
	}
}

// CheckOneOf records a problem when value is not one of allowed.
func (p *Problems) CheckOneOf(setting, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.Addf(setting, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
}
