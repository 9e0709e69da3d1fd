package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/fsperm"
)

// userSettings are the settings of the commands a user runs against a
// running system (login, logout, whoami, systems, arm, disarm). They share
// the names of `up`'s settings, so REALGUARDIO_IAM_URL points both at the
// same IAM; only the two URLs these commands need are bound, so that
// `realguardio login -h` lists nothing irrelevant.
type userSettings struct {
	iamURL, securitySystemURL string
	openBrowser               bool
	loginTimeout              time.Duration
}

// The defaults are `up`'s default URLs (API.md, "Default ports").
const (
	defaultIAMURL            = "http://localhost:9000"
	defaultSecuritySystemURL = "http://localhost:3001"
)

// userCommand parses the settings of a user command and runs it with the
// remaining arguments; wantArgs is the number of positional arguments.
func userCommand(ctx context.Context, name string, wantArgs int, argsUsage string, args []string, stdout, stderr io.Writer, getenv func(string) string,
	run func(ctx context.Context, s userSettings, args []string) error) int {
	fs := flag.NewFlagSet("realguardio "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: realguardio %s [flags]%s\n", name, argsUsage)
		fs.PrintDefaults()
	}
	l := config.NewLoader(fs, getenv)
	var s userSettings
	l.String(&s.iamURL, "iam-url", defaultIAMURL, "base URL (issuer) of the IAM Service")
	l.String(&s.securitySystemURL, "securitysystem-url", defaultSecuritySystemURL, "base URL of the Security System Service")
	if name == "login" {
		l.Bool(&s.openBrowser, "open-browser", true, "try to open the authorization URL in a browser (xdg-open or open)")
		l.Duration(&s.loginTimeout, "login-timeout", 5*time.Minute, "how long to wait for the login in the browser")
	}
	if err := l.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		return ExitUsage
	}
	var p config.Problems
	p.CheckHTTPURL("iam-url", s.iamURL)
	p.CheckHTTPURL("securitysystem-url", s.securitySystemURL)
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
	if err := run(ctx, s, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "realguardio %s: %v\n", name, err)
		if apiclient.StatusOf(err) == 401 || errors.Is(err, errNotLoggedIn) {
			fmt.Fprintln(stderr, "Log in with: realguardio login")
		}
		return ExitFailure
	}
	return ExitOK
}

// sessionStore is the file holding the tokens of the CLI's login.
type sessionStore struct{ path string }

// newSessionStore finds the file: $XDG_CONFIG_HOME/realguardio/session.json
// or ~/.config/realguardio/session.json, through getenv like every other
// setting.
func newSessionStore(getenv func(string) string) (sessionStore, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return sessionStore{}, errors.New("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the session")
		}
		dir = filepath.Join(home, ".config")
	}
	return sessionStore{path: filepath.Join(dir, "realguardio", "session.json")}, nil
}

// storedSession is the file's content: the tokens and whom and where they
// are for.
type storedSession struct {
	Issuer       string    `json:"issuer"`
	Username     string    `json:"username,omitempty"`
	Subject      string    `json:"subject"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry"`
}

var errNotLoggedIn = errors.New("not logged in")

func (st sessionStore) load() (storedSession, error) {
	var s storedSession
	// A session file or directory another version or a copy left
	// readable by others is made private before it is used.
	if err := fsperm.File(st.path); err != nil {
		return s, err
	}
	if _, err := os.Stat(filepath.Dir(st.path)); err == nil {
		if err := fsperm.Dir(filepath.Dir(st.path)); err != nil {
			return s, err
		}
	}
	b, err := os.ReadFile(st.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, errNotLoggedIn
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s is not a session file: %w", st.path, err)
	}
	return s, nil
}

// save writes the session with mode 0600 (the tokens are credentials) by
// writing a temporary file and renaming it, so a crash never leaves half a
// file and a reader never sees one.
func (st sessionStore) save(s storedSession) error {
	if err := fsperm.Dir(filepath.Dir(st.path)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(st.path), ".session-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), st.path)
}

func (st sessionStore) remove() error {
	if err := os.Remove(st.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func stored(issuer, username, subject string, t *oauth2.Token) storedSession {
	return storedSession{Issuer: issuer, Username: username, Subject: subject,
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

// resume loads the stored session for the configured IAM and returns it as
// an apiclient session that stores the rotated tokens after every refresh.
func resume(ctx context.Context, s userSettings, st sessionStore) (*apiclient.Session, error) {
	ss, err := st.load()
	if err != nil {
		return nil, err
	}
	if ss.Issuer != s.iamURL {
		return nil, fmt.Errorf("%w at %s (the stored session is for %s)", errNotLoggedIn, s.iamURL, ss.Issuer)
	}
	p, err := apiclient.Discover(ctx, s.iamURL, nil)
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: ss.AccessToken, RefreshToken: ss.RefreshToken, TokenType: ss.TokenType, Expiry: ss.Expiry}
	var saveErr error
	se := p.ResumeSession(tok, ss.Username, ss.Subject, func(t *oauth2.Token) {
		// The IAM rotated the refresh token: the old one is spent, so
		// the new pair must reach the file.
		saveErr = st.save(stored(ss.Issuer, ss.Username, ss.Subject, t))
	})
	// Refresh now rather than on the first call, so a failed save is
	// reported before the old refresh token is the only one on disk.
	if _, err := se.AccessToken(ctx); err != nil {
		return nil, fmt.Errorf("%w: the session could not be refreshed: %v", errNotLoggedIn, err)
	}
	if saveErr != nil {
		return nil, fmt.Errorf("store the refreshed session in %s: %w", st.path, saveErr)
	}
	return se, nil
}

// cmdLogin runs the RFC 8252 native-app flow with the public CLI client:
// a loopback listener receives the redirect of the browser in which the
// user logs in.
func cmdLogin(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore) error {
	p, err := apiclient.Discover(ctx, s.iamURL, nil)
	if err != nil {
		return err
	}
	pl, err := p.StartLogin(ctx)
	if err != nil {
		return err
	}
	defer pl.Close()
	fmt.Fprintf(stdout, "Open this URL in a browser and log in:\n\n%s\n\nWaiting for the login…\n", pl.URL)
	if s.openBrowser {
		openBrowser(pl.URL)
	}
	wctx, cancel := context.WithTimeout(ctx, s.loginTimeout)
	defer cancel()
	se, err := pl.Wait(wctx, "")
	if err != nil {
		return err
	}
	if err := st.save(stored(s.iamURL, se.Username, se.Subject, se.Token())); err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	who := se.Username
	if who == "" {
		who = se.Subject
	}
	fmt.Fprintf(stdout, "Logged in as %s. The session is stored in %s.\n", who, st.path)
	return nil
}

// openBrowser tries to open url; failing is fine, the URL is printed.
func openBrowser(url string) {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	cmd := exec.Command(name, url)
	if cmd.Start() == nil {
		go func() { _ = cmd.Wait() }()
	}
}

// cmdLogout revokes the refresh token, which ends the login at the IAM, and
// deletes the file. The file goes even when the IAM cannot be reached: the
// user asked to be logged out here.
func cmdLogout(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore) error {
	ss, err := st.load()
	if errors.Is(err, errNotLoggedIn) {
		fmt.Fprintln(stdout, "Not logged in.")
		return nil
	}
	var revokeErr error
	if err == nil && ss.RefreshToken != "" {
		revokeErr = func() error {
			p, err := apiclient.Discover(ctx, ss.Issuer, nil)
			if err != nil {
				return err
			}
			return p.ResumeSession(&oauth2.Token{RefreshToken: ss.RefreshToken}, ss.Username, ss.Subject, nil).Revoke(ctx)
		}()
	}
	if err := st.remove(); err != nil {
		return err
	}
	if revokeErr != nil {
		return fmt.Errorf("the session file is deleted, but the refresh token could not be revoked: %w", revokeErr)
	}
	fmt.Fprintln(stdout, "Logged out.")
	return nil
}

// cmdWhoami prints the access token's claims, decoded but not verified (the
// services verify them); the token itself and its signature are never
// printed.
func cmdWhoami(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore) error {
	se, err := resume(ctx, s, st)
	if err != nil {
		return err
	}
	tok, err := se.AccessToken(ctx)
	if err != nil {
		return err
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("the stored access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("decode the access token's claims: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return fmt.Errorf("decode the access token's claims: %w", err)
	}
	b, _ := json.MarshalIndent(claims, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return nil
}

func securitySystems(ctx context.Context, s userSettings, st sessionStore) (*apiclient.Client, error) {
	se, err := resume(ctx, s, st)
	if err != nil {
		return nil, err
	}
	return apiclient.New(apiclient.Endpoints{IAM: s.iamURL, SecuritySystem: s.securitySystemURL}, se, nil), nil
}

// cmdSystems lists the systems the user may view, with what they may do.
func cmdSystems(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore) error {
	c, err := securitySystems(ctx, s, st)
	if err != nil {
		return err
	}
	list, err := c.ListSecuritySystems(ctx)
	if err != nil {
		return err
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
	return tw.Flush()
}

// cmdAct arms or disarms one system.
func cmdAct(ctx context.Context, s userSettings, stdout io.Writer, st sessionStore, action, id string) error {
	c, err := securitySystems(ctx, s, st)
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
	fmt.Fprintf(stdout, "%s (%s) is %s.\n", ss.Name, ss.ID, ss.State)
	return nil
}

// runUser dispatches the user commands; ok is false for another command.
func runUser(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int, ok bool) {
	st, stErr := newSessionStore(getenv)
	with := func(f func(ctx context.Context, s userSettings, args []string) error) func(ctx context.Context, s userSettings, args []string) error {
		return func(ctx context.Context, s userSettings, args []string) error {
			if stErr != nil {
				return stErr
			}
			return f(ctx, s, args)
		}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "login":
		return userCommand(ctx, name, 0, "", rest, stdout, stderr, getenv, with(func(ctx context.Context, s userSettings, _ []string) error {
			return cmdLogin(ctx, s, stdout, st)
		})), true
	case "logout":
		return userCommand(ctx, name, 0, "", rest, stdout, stderr, getenv, with(func(ctx context.Context, s userSettings, _ []string) error {
			return cmdLogout(ctx, s, stdout, st)
		})), true
	case "whoami":
		return userCommand(ctx, name, 0, "", rest, stdout, stderr, getenv, with(func(ctx context.Context, s userSettings, _ []string) error {
			return cmdWhoami(ctx, s, stdout, st)
		})), true
	case "systems":
		return userCommand(ctx, name, 0, "", rest, stdout, stderr, getenv, with(func(ctx context.Context, s userSettings, _ []string) error {
			return cmdSystems(ctx, s, stdout, st)
		})), true
	case "arm", "disarm":
		action := apiclient.ActionArm
		if name == "disarm" {
			action = apiclient.ActionDisarm
		}
		return userCommand(ctx, name, 1, " ID", rest, stdout, stderr, getenv, with(func(ctx context.Context, s userSettings, args []string) error {
			return cmdAct(ctx, s, stdout, st, action, args[0])
		})), true
	}
	return 0, false
}
