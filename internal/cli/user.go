package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/policy"
)

// Exit codes of the user commands beyond ExitOK, ExitFailure and
// ExitUsage, so that scripts can tell a refusal from an outage.
const (
	ExitDenied      = 3 // the service refused: 403
	ExitNotFound    = 4 // no such security system (404, or no system of that name)
	ExitUnavailable = 5 // the system is down or a dependency is (503, no answer)
)

// userSettings are the settings of the commands a user runs against a
// running system (login, logout, whoami, systems, arm, disarm, access).
// They share the names of `up`'s settings, so REALGUARDIO_IAM_URL points
// both at the same IAM. The URLs default to the session's, then to `up`'s
// defaults.
type userSettings struct {
	iamURL, securitySystemURL string
	openBrowser               bool
	loginTimeout              time.Duration
	json                      bool
	limit                     int
	all, me                   bool
	stderr                    io.Writer
}

// The defaults are `up`'s default URLs (API.md, "Default ports").
const (
	defaultIAMURL            = "http://localhost:9000"
	defaultSecuritySystemURL = "http://localhost:3001"
)

// errUsage marks a mistake in the command's arguments found only after
// asking the service (an ambiguous name): exit code 2.
var errUsage = errors.New("usage")

// errNoSuchSystem is a name that matches no system the user may view.
var errNoSuchSystem = errors.New("no such security system")

// userCommand parses the settings of a user command and runs it with the
// remaining arguments; wantArgs is the number of positional arguments.
func userCommand(ctx context.Context, name string, wantArgs int, argsUsage string, args []string, stdout, stderr io.Writer, getenv func(string) string,
	st sessionStore, stErr error, run func(ctx context.Context, s userSettings, args []string) error) int {
	fs := flag.NewFlagSet("realguardio "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: realguardio %s [flags]%s\n", name, argsUsage)
		fs.PrintDefaults()
	}
	l := config.NewLoader(fs, getenv)
	s := userSettings{stderr: stderr}
	l.String(&s.iamURL, "iam-url", defaultIAMURL, "base URL (issuer) of the IAM Service (default: the session's)")
	l.String(&s.securitySystemURL, "securitysystem-url", defaultSecuritySystemURL, "base URL of the Security System Service (default: the session's)")
	fs.BoolVar(&s.json, "json", false, "print the answer as JSON")
	switch name {
	case "login":
		l.Bool(&s.openBrowser, "open-browser", true, "try to open the authorization URL in a browser (xdg-open or open)")
		l.Duration(&s.loginTimeout, "login-timeout", 5*time.Minute, "how long to wait for the login in the browser")
	case "systems":
		fs.IntVar(&s.limit, "limit", 0, "at most this many systems (1-500; default: the service's page size)")
		fs.BoolVar(&s.all, "all", false, "every system, page after page")
	case "access":
		fs.BoolVar(&s.me, "me", false, "only your own access")
	}
	if err := l.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, n := range []string{"iam-url", "securitysystem-url"} {
		if getenv(config.EnvName(n)) != "" {
			given[n] = true
		}
	}
	// Remember where the session was made: the IAM and the service URL
	// need not be repeated on every command.
	if ss, err := st.load(); stErr == nil && err == nil && name != "login" {
		if !given["iam-url"] && ss.Issuer != "" {
			s.iamURL = ss.Issuer
		}
		if !given["securitysystem-url"] && ss.SecuritySystemURL != "" {
			s.securitySystemURL = ss.SecuritySystemURL
		}
	}
	var p config.Problems
	p.CheckHTTPURL("iam-url", s.iamURL)
	p.CheckHTTPURL("securitysystem-url", s.securitySystemURL)
	if s.limit < 0 || s.limit > 500 {
		p.Addf("limit", "must be between 1 and 500")
	}
	if s.all && s.limit != 0 {
		p.Addf("all", "--all and --limit exclude each other")
	}
	if err := p.Err(); err != nil {
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	if fs.NArg() != wantArgs {
		fmt.Fprintf(stderr, "realguardio %s: want %d argument(s)%s, got %d\n", name, wantArgs, argsUsage, fs.NArg())
		return ExitUsage
	}
	s.iamURL = strings.TrimRight(s.iamURL, "/")
	s.securitySystemURL = strings.TrimRight(s.securitySystemURL, "/")
	err := stErr
	if err == nil {
		err = run(ctx, s, fs.Args())
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	msg := describe(err, s)
	if s.json {
		body := map[string]any{"error": msg, "exitCode": code}
		var ae *apiclient.Error
		if errors.As(err, &ae) {
			body["status"] = ae.Status()
			if p := ae.Problem(); p != nil {
				body["problem"] = p
			}
		}
		b, _ := json.Marshal(body)
		fmt.Fprintf(stderr, "%s\n", b)
	} else {
		fmt.Fprintf(stderr, "realguardio %s: %s\n", name, msg)
	}
	if apiclient.StatusOf(err) == 401 || errors.Is(err, errNotLoggedIn) {
		fmt.Fprintln(stderr, "Log in with: realguardio login")
	}
	return code
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage):
		return ExitUsage
	case errors.Is(err, errNoSuchSystem):
		return ExitNotFound
	case isUnreachable(err):
		return ExitUnavailable
	}
	switch apiclient.StatusOf(err) {
	case 403:
		return ExitDenied
	case 404:
		return ExitNotFound
	case 502, 503, 504:
		return ExitUnavailable
	}
	return ExitFailure
}

// isUnreachable reports whether err is a call that got no answer: the
// service is down, the address wrong, or it did not answer in time.
func isUnreachable(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ue) && (errors.As(err, &ne) || ue.Timeout())) || errors.Is(err, context.DeadlineExceeded)
}

// describe turns err into a sentence for a person: the problem's detail
// rather than the method, URL and status, and no raw "dial tcp".
func describe(err error, s userSettings) string {
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		detail := ""
		if p := ae.Problem(); p != nil {
			detail = p.Detail
		}
		switch ae.Status() {
		case 401:
			return "your session is no longer accepted"
		case 403:
			if detail == "" {
				detail = "you may not do this"
			}
			return "not allowed: " + detail
		case 404:
			if detail == "" {
				detail = "it does not exist"
			}
			return "not found: " + detail
		case 502, 503, 504:
			if detail == "" {
				detail = "the service cannot answer now"
			}
			return "unavailable: " + detail + "; nothing was changed, try again later"
		}
		if detail != "" {
			return detail
		}
		return err.Error()
	}
	if isUnreachable(err) {
		where := s.securitySystemURL
		var ue *url.Error
		if errors.As(err, &ue) {
			if u, perr := url.Parse(ue.URL); perr == nil {
				where = u.Scheme + "://" + u.Host
			}
		}
		return fmt.Sprintf("RealGuardIO does not answer at %s; is it running (realguardio up)? Nothing was changed", where)
	}
	return err.Error()
}

// writeJSON prints v indented, for --json.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func client(ctx context.Context, s userSettings, st sessionStore) (*apiclient.Client, error) {
	ts, err := resume(ctx, s, st)
	if err != nil {
		return nil, err
	}
	return apiclient.New(apiclient.Endpoints{IAM: s.iamURL, SecuritySystem: s.securitySystemURL}, ts, nil), nil
}

// cmdWhoami summarizes the stored session from its access token, decoded
// but not verified (the services verify it), without asking anyone: it
// works while the system is down. The token itself and its signature are
// never printed.
func cmdWhoami(s userSettings, stdout io.Writer, st sessionStore, now time.Time) error {
	ss, err := st.load()
	if err != nil {
		return err
	}
	parts := strings.Split(ss.AccessToken, ".")
	if len(parts) != 3 {
		return errors.New("the stored access token is not a JWT; log in again")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil {
		return fmt.Errorf("the stored access token's claims cannot be read (%v); log in again", err)
	}
	var roles []string
	if rs, ok := claims["roles"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	expired := !now.Before(ss.Expiry)
	if s.json {
		return writeJSON(stdout, map[string]any{"username": ss.Username, "subject": ss.Subject, "issuer": ss.Issuer,
			"securitySystemUrl": s.securitySystemURL, "roles": nonNil(roles), "accessTokenExpiry": ss.Expiry.UTC(),
			"accessTokenExpired": expired, "refreshable": ss.RefreshToken != "", "claims": claims})
	}
	who := ss.Username
	if who == "" {
		who = ss.Subject
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "You are logged in as %s.\n", who)
	fmt.Fprintf(tw, "  user id\t%s\n", ss.Subject)
	if len(roles) == 0 {
		fmt.Fprintf(tw, "  application roles\tnone (what you may do comes from your organization)\n")
	} else {
		fmt.Fprintf(tw, "  application roles\t%s\n", strings.Join(roles, ", "))
	}
	fmt.Fprintf(tw, "  IAM\t%s\n", ss.Issuer)
	fmt.Fprintf(tw, "  security systems\t%s\n", s.securitySystemURL)
	switch d := ss.Expiry.Sub(now).Round(time.Second); {
	case !expired:
		fmt.Fprintf(tw, "  access token\tvalid for %s more\n", d)
	case ss.RefreshToken != "":
		fmt.Fprintf(tw, "  access token\texpired %s ago; the next command refreshes it\n", -d)
	default:
		fmt.Fprintf(tw, "  access token\texpired %s ago; log in again\n", -d)
	}
	return tw.Flush()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// cmdSystems lists the systems the user may view, with what they may do:
// one page (--limit, else the service's page size) or, with --all, every
// page.
func cmdSystems(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore) error {
	c, err := client(ctx, s, st)
	if err != nil {
		return err
	}
	q := apiclient.SystemQuery{Limit: s.limit}
	var list []apiclient.SecuritySystem
	var next *string
	for {
		page, err := c.SearchSecuritySystems(ctx, q)
		if err != nil {
			return err
		}
		list = append(list, page.SecuritySystems...)
		next = page.NextCursor
		if !s.all || next == nil || *next == "" {
			break
		}
		q.Cursor = *next
	}
	if list == nil {
		list = []apiclient.SecuritySystem{}
	}
	if s.json {
		return writeJSON(stdout, map[string]any{"securitySystems": list, "nextCursor": next})
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No security systems you may view.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tYOU MAY")
	for _, ss := range list {
		may := strings.ToLower(strings.Join(ss.Actions, ", "))
		if may == "" {
			may = "view"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ss.ID, ss.Name, ss.State, may)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != nil && *next != "" {
		fmt.Fprintln(stdout, "There are more: add --all to list every system.")
	}
	return nil
}

// resolve turns a system's id or name into its id. A name must match
// exactly one system the user may view, ignoring case; several are
// refused with the candidates, none is errNoSuchSystem.
func resolve(ctx context.Context, c *apiclient.Client, arg string) (string, error) {
	if id, err := uuid.Parse(arg); err == nil {
		return id.String(), nil
	}
	q := apiclient.SystemQuery{Q: arg, Limit: 500}
	var exact, similar []apiclient.SecuritySystem
	for pages := 0; pages < 20; pages++ {
		page, err := c.SearchSecuritySystems(ctx, q)
		if err != nil {
			return "", err
		}
		for _, ss := range page.SecuritySystems {
			switch {
			case strings.EqualFold(strings.TrimSpace(ss.Name), strings.TrimSpace(arg)):
				exact = append(exact, ss)
			case strings.Contains(strings.ToLower(ss.Name), strings.ToLower(arg)):
				similar = append(similar, ss)
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		q.Cursor = *page.NextCursor
	}
	switch len(exact) {
	case 1:
		return exact[0].ID, nil
	case 0:
		hint := ""
		if len(similar) > 0 {
			hint = "; did you mean " + candidates(similar) + "?"
		}
		return "", fmt.Errorf("%w: you may view no security system named %q%s", errNoSuchSystem, arg, hint)
	}
	return "", fmt.Errorf("%w: %d security systems are named %q; name one by its id: %s", errUsage, len(exact), arg, candidates(exact))
}

func candidates(list []apiclient.SecuritySystem) string {
	var out []string
	for i, ss := range list {
		if i == 10 {
			out = append(out, fmt.Sprintf("and %d more", len(list)-i))
			break
		}
		out = append(out, fmt.Sprintf("%q (%s)", ss.Name, ss.ID))
	}
	return strings.Join(out, ", ")
}

// cmdAct arms or disarms one system, named by id or name.
func cmdAct(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore, action, arg string) error {
	c, err := client(ctx, s, st)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, c, arg)
	if err != nil {
		return err
	}
	var ss apiclient.SecuritySystem
	if action == apiclient.ActionArm {
		ss, err = c.Arm(ctx, id)
	} else {
		ss, err = c.Disarm(ctx, id)
	}
	if err != nil {
		return err
	}
	if s.json {
		ss.Actions = nil
		return writeJSON(stdout, map[string]any{"id": ss.ID, "name": ss.Name, "locationId": ss.LocationID, "state": ss.State})
	}
	fmt.Fprintf(stdout, "%s (%s) is %s.\n", ss.Name, ss.ID, ss.State)
	return nil
}

// cmdResetPassword issues a one-time password reset code for the account
// userID as the logged-in administrator and prints it with its link, for
// the administrator to hand to the user; no password is chosen or printed.
func cmdResetPassword(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore, userID string) error {
	if _, err := uuid.Parse(userID); err != nil {
		return fmt.Errorf("%w: %q is not an account id (a UUID)", errUsage, userID)
	}
	c, err := client(ctx, s, st)
	if err != nil {
		return err
	}
	r, err := c.ResetUserPassword(ctx, userID)
	if err != nil {
		return err
	}
	if s.json {
		return writeJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "One-time password reset code for %s, valid until %s:\n\n    %s\n\nThe user opens\n\n    %s\n\nand chooses a new password there (it also removes the account's second factor and signs it out everywhere). Give the code to the user only; a newer code voids it.\n",
		r.UserID, r.ExpiresAt.Local().Format(time.RFC1123), r.Code, r.ResetURL)
	return nil
}

// cmdAccess prints who may view, arm or disarm a system and why (every
// page of the access review), or with --me the user's own access.
func cmdAccess(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore, arg string) error {
	c, err := client(ctx, s, st)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, c, arg)
	if err != nil {
		return err
	}
	q := apiclient.AccessQuery{Limit: 500}
	if s.me {
		q.UserID = "me"
	}
	rev, err := c.AccessAll(ctx, id, q)
	if err != nil {
		return err
	}
	if rev.Users == nil {
		rev.Users = []apiclient.AccessUser{}
	}
	if s.json {
		return writeJSON(stdout, map[string]any{"securitySystemId": rev.SecuritySystemID, "users": rev.Users})
	}
	if len(rev.Users) == 0 {
		if s.me {
			fmt.Fprintln(stdout, "You hold no role on this system (a platform administrator views every system without one).")
		} else {
			fmt.Fprintln(stdout, "Nobody holds a role that reaches this system.")
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMAY\tNOW\tWHY")
	for _, u := range rev.Users {
		now := strings.ToLower(strings.Join(u.AllowedNow, ", "))
		if u.Schedule != nil && len(u.AllowedNow) < len(u.Actions) {
			now += " (outside " + scheduleText(u.Schedule) + ")"
		} else if u.Schedule != nil {
			now += " (shift " + scheduleText(u.Schedule) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, strings.ToLower(strings.Join(u.Actions, ", ")), now, grantsText(u.Grants))
	}
	return tw.Flush()
}

// grantsText says how each grant reaches the system, in words.
func grantsText(gs []policy.Grant) string {
	var out []string
	for _, g := range gs {
		role := strings.TrimPrefix(g.Role, "SECURITY_SYSTEM_")
		var where string
		switch g.Via {
		case policy.ViaLocation:
			where = "at location " + g.Name
		case policy.ViaTeam:
			where = "through team " + g.Name
		case policy.ViaCustomer:
			where = "in customer " + g.Name
		case policy.ViaDealer:
			where = "in dealer " + g.Name
		case policy.ViaMonitoringProvider:
			where = "in monitoring provider " + g.Name
		default:
			where = string(g.Via) + " " + g.Name
		}
		out = append(out, role+" "+where)
	}
	return strings.Join(out, "; ")
}

// scheduleText writes a schedule as "MON,TUE 09:00-17:00 Europe/Berlin".
func scheduleText(s *policy.Schedule) string {
	var shifts []string
	for _, sh := range s.Shifts {
		shifts = append(shifts, strings.Join(sh.Weekdays, ",")+" "+sh.Start+"–"+sh.End)
	}
	return strings.Join(shifts, "; ") + " " + s.TimeZone
}

// runUser dispatches the user commands; ok is false for another command.
func runUser(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int, ok bool) {
	st, stErr := newSessionStore(getenv)
	name, rest := args[0], args[1:]
	cmd := func(want int, argsUsage string, run func(ctx context.Context, s userSettings, args []string) error) int {
		return userCommand(ctx, name, want, argsUsage, rest, stdout, stderr, getenv, st, stErr, run)
	}
	switch name {
	case "login":
		return cmd(0, "", func(ctx context.Context, s userSettings, _ []string) error { return cmdLogin(ctx, s, stdout, st) }), true
	case "logout":
		return cmd(0, "", func(ctx context.Context, s userSettings, _ []string) error { return cmdLogout(ctx, s, stdout, st) }), true
	case "whoami":
		return cmd(0, "", func(_ context.Context, s userSettings, _ []string) error { return cmdWhoami(s, stdout, st, time.Now()) }), true
	case "systems":
		return cmd(0, "", func(ctx context.Context, s userSettings, _ []string) error { return cmdSystems(ctx, s, stdout, st) }), true
	case "arm", "disarm":
		action := apiclient.ActionArm
		if name == "disarm" {
			action = apiclient.ActionDisarm
		}
		return cmd(1, " SYSTEM (its id or name)", func(ctx context.Context, s userSettings, args []string) error {
			return cmdAct(ctx, s, stdout, st, action, args[0])
		}), true
	case "access":
		return cmd(1, " SYSTEM (its id or name)", func(ctx context.Context, s userSettings, args []string) error {
			return cmdAccess(ctx, s, stdout, st, args[0])
		}), true
	case "reset-password":
		return cmd(1, " USER-ID (the IAM account's id)", func(ctx context.Context, s userSettings, args []string) error {
			return cmdResetPassword(ctx, s, stdout, st, args[0])
		}), true
	}
	return 0, false
}
