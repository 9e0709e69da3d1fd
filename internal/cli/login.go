package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/fsperm"
)

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
	Issuer string `json:"issuer"`
	// SecuritySystemURL is where the login's commands reach the Security
	// System Service; later commands use it unless told otherwise.
	SecuritySystemURL string    `json:"securitysystem_url,omitempty"`
	Username          string    `json:"username,omitempty"`
	Subject           string    `json:"subject"`
	AccessToken       string    `json:"access_token"`
	RefreshToken      string    `json:"refresh_token,omitempty"`
	TokenType         string    `json:"token_type,omitempty"`
	Expiry            time.Time `json:"expiry"`
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

func stored(issuer, ssURL, username, subject string, t *oauth2.Token) storedSession {
	return storedSession{Issuer: issuer, SecuritySystemURL: ssURL, Username: username, Subject: subject,
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

// resume loads the stored session for the configured IAM and returns a
// token source for its calls. While the access token is fresh it is used
// as it is, so commands work without asking the IAM anything; an expiring
// one is refreshed through the IAM, and the rotated tokens are stored.
func resume(ctx context.Context, s userSettings, st sessionStore) (apiclient.TokenSource, error) {
	ss, err := st.load()
	if err != nil {
		return nil, err
	}
	if ss.Issuer != s.iamURL {
		return nil, fmt.Errorf("%w at %s (the stored session is for %s)", errNotLoggedIn, s.iamURL, ss.Issuer)
	}
	if ss.AccessToken != "" && time.Until(ss.Expiry) > freshFor {
		return apiclient.StaticToken(ss.AccessToken), nil
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
		saveErr = st.save(stored(ss.Issuer, ss.SecuritySystemURL, ss.Username, ss.Subject, t))
	})
	// Refresh now rather than on the first call, so a failed save is
	// reported before the old refresh token is the only one on disk.
	if _, err := se.AccessToken(ctx); err != nil {
		if isUnreachable(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the session could not be refreshed: %v", errNotLoggedIn, err)
	}
	if saveErr != nil {
		return nil, fmt.Errorf("store the refreshed session in %s: %w", st.path, saveErr)
	}
	return se, nil
}

// freshFor is how long a stored access token must still be valid to be
// used without a refresh: a command's calls take far less.
const freshFor = 30 * time.Second

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
	prompt := stdout
	if s.json {
		prompt = s.stderr // stdout carries only the JSON answer
	}
	// The IAM's pages do every step in the browser: a first login with
	// a password someone else chose (an initial or generated one) asks
	// for a new password there before the redirect comes back here.
	fmt.Fprintf(prompt, "Open this URL in a browser and log in:\n\n%s\n\n"+
		"If your password was given to you (a new account, or one an administrator set), the browser asks you to choose a new password first.\n"+
		"Waiting for the login…\n", pl.URL)
	if s.openBrowser {
		openBrowser(pl.URL)
	}
	wctx, cancel := context.WithTimeout(ctx, s.loginTimeout)
	defer cancel()
	se, err := pl.Wait(wctx, "")
	if err != nil {
		return err
	}
	if err := st.save(stored(s.iamURL, s.securitySystemURL, se.Username, se.Subject, se.Token())); err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	who := se.Username
	if who == "" {
		who = se.Subject
	}
	if s.json {
		return writeJSON(stdout, map[string]any{"username": se.Username, "subject": se.Subject, "issuer": s.iamURL,
			"securitySystemUrl": s.securitySystemURL, "sessionFile": st.path})
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
		if s.json {
			return writeJSON(stdout, map[string]any{"loggedOut": true, "wasLoggedIn": false})
		}
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
	if s.json {
		return writeJSON(stdout, map[string]any{"loggedOut": true, "wasLoggedIn": true})
	}
	fmt.Fprintln(stdout, "Logged out.")
	return nil
}
