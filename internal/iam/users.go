package iam

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// minPasswordLen is the shortest password accepted.
const minPasswordLen = 8

// maxPasswordLen bounds the work a single password costs to hash.
const maxPasswordLen = 1024

// usersAPI is the HTTP API on IAM accounts, used by the organization
// services (client credentials, users:write) and by administrators.
//
// A REALGUARDIO_ADMIN user manages every account. A service is confined to
// the employees it provisions (ClientConfig.ProvisionableRoles): it creates
// users with its own employee role only, sees, disables and enables only
// the users it created, and never changes roles. Otherwise any one
// organization service could mint platform administrators or lock out
// every account.
type usersAPI struct{ s *Service }

// reasonNotProvisionable is the denial reason of a service creating a user
// with a role it may not give.
const reasonNotProvisionable = "role_not_provisionable"

type createUserBody struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	// PasswordChangeRequired makes the user replace the password at the
	// first login, before any code is issued: the creator chose it.
	PasswordChangeRequired bool `json:"passwordChangeRequired"`
}

type userView struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	Enabled  bool     `json:"enabled"`
}

func viewOf(u *user) userView {
	return userView{ID: u.ID, Username: u.Username, Roles: u.Roles, Enabled: u.Enabled}
}

func validateUsername(s string) error {
	n := utf8.RuneCountInString(s)
	if n < 3 || n > 254 {
		return apperr.InvalidField("username", "must be 3 to 254 characters")
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return apperr.InvalidField("username", "must not contain whitespace or control characters")
	}
	return nil
}

func validatePassword(s string) error {
	if utf8.RuneCountInString(s) < minPasswordLen {
		return apperr.InvalidField("password", "must be at least %d characters", minPasswordLen)
	}
	if len(s) > maxPasswordLen {
		return apperr.InvalidField("password", "must be at most %d bytes", maxPasswordLen)
	}
	return nil
}

// normalizeRoles checks roles against the closed set and removes
// duplicates, keeping a stable order.
func normalizeRoles(roles []string) ([]string, error) {
	out := []string{}
	for _, r := range roles {
		if !auth.IsApplicationRole(r) {
			return nil, apperr.InvalidField("roles", "unknown application role %q", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CreateUser is the use case behind POST /api/users. created reports
// whether a new user was made (201) or an idempotent replay answered (200).
func (s *Service) createUser(ctx context.Context, caller *auth.Caller, in createUserBody) (u *user, created bool, err error) {
	if in.ID != "" {
		if _, perr := uuid.Parse(in.ID); perr != nil || len(in.ID) != 36 {
			return nil, false, apperr.InvalidField("id", "must be a UUID")
		}
		in.ID = strings.ToLower(in.ID)
	}
	if err := validateUsername(in.Username); err != nil {
		return nil, false, err
	}
	if err := validatePassword(in.Password); err != nil {
		return nil, false, err
	}
	roles, err := normalizeRoles(in.Roles)
	if err != nil {
		return nil, false, err
	}
	if caller.IsService {
		// Checked before anything is looked up, so that the idempotent
		// replay below cannot be used to widen an existing account either.
		c := s.clients[caller.ClientID]
		if c == nil || !c.mayProvision(roles) {
			var allowed []string
			if c != nil {
				allowed = c.cfg.ProvisionableRoles
			}
			return nil, false, apperr.Denied(reasonNotProvisionable, "client %s may give the users it creates only the roles %v", caller.ClientID, allowed)
		}
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return nil, false, apperr.Wrap(err, apperr.Internal, "hash password")
	}
	creator := caller.ClientID
	if !caller.IsService {
		// An administrator's creations are not replayable by a service.
		creator = "user:" + caller.Subject
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if in.ID != "" {
			existing, err := s.store.userByID(ctx, tx, in.ID)
			switch {
			case err == nil:
				// Idempotent create: the same creator retrying the same
				// (id, username) gets the user back with the password and
				// roles of this request, so a half-finished employee
				// creation can be completed without a duplicate account.
				if caller.IsService && existing.CreatedByClient == creator && usernameKey(existing.Username) == usernameKey(in.Username) {
					if err := s.store.updateCredentials(ctx, tx, existing.ID, hash, roles, now); err != nil {
						return err
					}
					if err := s.store.setMustChangePassword(ctx, tx, existing.ID, in.PasswordChangeRequired, now); err != nil {
						return err
					}
					existing.Roles = roles
					u = existing
					return nil
				}
				return apperr.New(apperr.Conflict, "a different user with this id already exists")
			case !errors.Is(err, errNotFound):
				return err
			}
		} else {
			in.ID = uuid.NewString()
		}
		if _, err := s.store.userByUsername(ctx, tx, in.Username); err == nil {
			return apperr.New(apperr.Conflict, "the username %q is taken", in.Username)
		} else if !errors.Is(err, errNotFound) {
			return err
		}
		nu := &user{ID: in.ID, Username: in.Username, PasswordHash: hash, Roles: roles, Enabled: true, CreatedByClient: creator}
		if err := s.store.insertUser(ctx, tx, nu, now); err != nil {
			return err
		}
		if in.PasswordChangeRequired {
			if err := s.store.setMustChangePassword(ctx, tx, nu.ID, true, now); err != nil {
				return err
			}
		}
		u, created = nu, true
		return nil
	})
	if err != nil {
		if apperr.As(err) == nil {
			err = apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable")
		}
		return nil, false, err
	}
	return u, created, nil
}

func (a *usersAPI) create(w http.ResponseWriter, r *http.Request) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var in createUserBody
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	u, created, err := a.s.createUser(r.Context(), caller, in)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/users/"+u.ID)
	}
	httpx.WriteJSON(w, status, viewOf(u))
}

// load reads the user named by the path for the caller. A service gets
// only the users it created; any other is answered exactly like an unknown
// id, so that a service cannot even learn which accounts exist.
func (a *usersAPI) load(w http.ResponseWriter, r *http.Request) (*user, bool) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return nil, false
	}
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		httpx.WriteError(w, r, err)
		return nil, false
	}
	u, err := a.s.store.userByID(r.Context(), a.s.db, id.String())
	if errors.Is(err, errNotFound) || (err == nil && caller.IsService && u.CreatedByClient != caller.ClientID) {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such user"))
		return nil, false
	}
	if err != nil {
		httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
		return nil, false
	}
	return u, true
}

func (a *usersAPI) get(w http.ResponseWriter, r *http.Request) {
	if u, ok := a.load(w, r); ok {
		httpx.WriteJSON(w, http.StatusOK, viewOf(u))
	}
}

// setRoles replaces a user's application roles. Only an administrator may:
// a service's employees keep the role they were created with, and letting
// a service change roles would let it grant any role to any account it
// created.
func (a *usersAPI) setRoles(w http.ResponseWriter, r *http.Request) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if caller.IsService {
		httpx.WriteError(w, r, apperr.Denied("no_role", "changing a user's roles needs role %s", auth.RoleAdmin))
		return
	}
	var in struct {
		Roles []string `json:"roles"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if in.Roles == nil {
		httpx.WriteError(w, r, apperr.InvalidField("roles", "is required (use [] to remove every role)"))
		return
	}
	roles, err := normalizeRoles(in.Roles)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	u, ok := a.load(w, r)
	if !ok {
		return
	}
	if err := a.s.store.setRoles(r.Context(), u.ID, roles, a.s.now()); err != nil {
		httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
		return
	}
	u.Roles = roles
	httpx.WriteJSON(w, http.StatusOK, viewOf(u))
}

func (a *usersAPI) disable(w http.ResponseWriter, r *http.Request) { a.setEnabled(w, r, false) }
func (a *usersAPI) enable(w http.ResponseWriter, r *http.Request)  { a.setEnabled(w, r, true) }

// setEnabled switches an account. Disabling takes effect at the next login
// or refresh, both of which check the flag, and ends the account's
// browser sessions and refresh tokens at once; access tokens already
// issued run out within their short lifetime.
func (a *usersAPI) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	u, ok := a.load(w, r)
	if !ok {
		return
	}
	if err := a.s.store.setEnabled(r.Context(), u.ID, enabled, a.s.now()); err != nil {
		httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
		return
	}
	if !enabled {
		if err := a.s.store.endUserSessions(r.Context(), a.s.db, u.ID, ""); err != nil {
			httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
			return
		}
		// The user's live sessions at the clients end now, not at their
		// next refresh (backchannel.go).
		a.s.backchannel.logout(r.Context(), u.ID, "", "")
	}
	u.Enabled = enabled
	httpx.WriteJSON(w, http.StatusOK, viewOf(u))
}
