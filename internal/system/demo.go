package system

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/demo"
)

// demoTimeout bounds loading the demo: a few dozen calls and logins, each
// well under a second.
const demoTimeout = 2 * time.Minute

// LoadDemo loads the demo organizations through the public API (package
// demo) and prints their logins to out, or why it did not. A failure is
// reported, not returned: the system keeps running without the demo.
func (s *System) LoadDemo(ctx context.Context, out io.Writer) {
	if s.cfg.Only != "" {
		fmt.Fprintln(out, "\n--demo needs every service: it works with `realguardio up`, not `serve`; not loading the demo.")
		return
	}
	// The admin's password: only the configured one will do. A generated
	// one must be replaced at the first login, in a browser, before the
	// demo could log in with it; and a later start knows none.
	password := s.cfg.AdminPassword
	if password == "" {
		fmt.Fprintln(out, "\n--demo needs --admin-password (REALGUARDIO_ADMIN_PASSWORD): the demo is loaded as admin, and a generated admin password must be replaced at the first login. Not loading the demo; RealGuardIO keeps running.")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	fmt.Fprintln(out, "\nLoading the demo organizations…")
	res, err := demo.Load(ctx, demo.Options{Endpoints: apiclient.EndpointsFrom(s.URLs), AdminPassword: password})
	if err != nil {
		s.logger.Error("loading the demo failed; RealGuardIO keeps running", "err", err)
		fmt.Fprintf(out, "Loading the demo failed: %v\n", err)
		return
	}
	demo.Print(out, res, s.URLs[ServiceBFF]+"/")
}
