package orgkit

import (
	"context"
	"errors"
	"github.com/realguardio/realguardio/internal/contract/facts"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
)

// Accounts is the port to the IAM Service the kit needs: creating an
// employee's account, disabling it when the employee leaves, enabling it
// again when the employee is re-hired, and telling whether an account
// exists.
//
// CreateUser must be idempotent for the same id and username (a retry of a
// half-finished creation, or a re-hire, returns success and resets
// password and roles, also of a disabled account), answer an
// apperr.Conflict when the username belongs to another account and an
// apperr.Unavailable when the IAM cannot be reached. The password is an
// initial one (typed by an administrator or generated): the account must
// replace it at its first login. DisableUser and
// EnableUser must succeed for an account already in that state.
// UserExists reports whether the IAM has an account with the id.
// ResetPassword issues a one-time password reset code for the account
// (never a password), voiding its earlier codes.
type Accounts interface {
	CreateUser(ctx context.Context, id, username, password string, roles []string) error
	DisableUser(ctx context.Context, id string) error
	EnableUser(ctx context.Context, id string) error
	UserExists(ctx context.Context, id string) (bool, error)
	ResetPassword(ctx context.Context, id string) (PasswordReset, error)
}

// PasswordReset is a one-time password reset code of an employee's IAM
// account: the employee redeems it at ResetURL (which carries the code)
// before ExpiresAt and chooses a new password there. Redeeming it also
// removes the account's second factor and ends its sessions.
type PasswordReset struct {
	EmployeeID string    `json:"employeeId"`
	UserID     string    `json:"userId"`
	Code       string    `json:"code"`
	ResetURL   string    `json:"resetUrl"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// Outbox is the port through which the kit writes events inside the
// change's transaction; *events.Outbox implements it.
type Outbox interface {
	Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) (events.Event, error)
}

var _ Outbox = (*events.Outbox)(nil)

// ScopeAuthzRead is the scope of the client-credentials token that may read
// every facts endpoint (docs/fetch-api.md).
const ScopeAuthzRead = facts.ScopeRead

// Service holds the kit's use cases for one kind of organization. It is
// safe for concurrent use.
type Service struct {
	kind              Kind
	db                *sqldb.DB
	repo              Repo
	outbox            Outbox
	accounts          Accounts
	logger            *slog.Logger
	now               func() time.Time
	onEmployeeRemoved func(ctx context.Context, tx *sqldb.Tx, e Employee) error
}

// Option customizes a Service at construction.
type Option func(*Service)

// OnEmployeeRemoved makes RemoveEmployee call fn inside the transaction
// that removes an employee, after the kit marked the employee removed,
// deleted its roles and schedule and wrote employee_removed. A service
// uses it to drop what it keeps about the employee beyond the kit's data
// (the customer's location roles and team memberships) and to write the
// events of that, so the removal and everything it implies commit
// together or not at all. An error from fn rolls the whole removal back:
// the IAM account is then already disabled and a retry of the removal
// completes it, as for any failure after disabling.
func OnEmployeeRemoved(fn func(ctx context.Context, tx *sqldb.Tx, e Employee) error) Option {
	return func(s *Service) { s.onEmployeeRemoved = fn }
}

// NewService returns the use cases of kind over db, writing events to
// outbox and provisioning accounts through accounts. A nil logger means
// slog.Default().
func NewService(kind Kind, db *sqldb.DB, outbox Outbox, accounts Accounts, logger *slog.Logger, opts ...Option) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{kind: kind, db: db, outbox: outbox, accounts: accounts, logger: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Kind returns the kind the service manages.
func (s *Service) Kind() Kind { return s.kind }

// DB returns the database, for services that run their own transactions
// around the kit's checks (see Change).
func (s *Service) DB() *sqldb.DB { return s.db }

// Repo returns the repository.
func (s *Service) Repo() Repo { return s.repo }

// Emit appends an event of the kind's aggregate (the organization orgID)
// inside tx. payload is the event's body: for an event of the catalogue
// (package catalog, docs/events.md) the type's payload struct, which
// Kind.Events builds for the kit's own events.
func (s *Service) Emit(ctx context.Context, tx *sqldb.Tx, orgID string, eventType catalog.Type, payload any) error {
	if _, err := s.outbox.Append(ctx, tx, s.kind.Events.AggregateType, orgID, string(eventType), payload); err != nil {
		return apperr.Wrap(err, apperr.Internal, "write event %s", eventType)
	}
	return nil
}

// Payload returns an untyped event payload holding the organization id
// under the kind's key ("dealerId") plus the given pairs, for an event
// outside the catalogue (a test's marker event). The catalogue's events
// are written with their payload structs instead, so that the contract is
// written once.
func (s *Service) Payload(orgID string, kv ...any) map[string]any {
	p := map[string]any{s.kind.Events.IDField: orgID}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return p
}

// AuthorizeAdministrator is the one rule of every change inside an
// organization, for all three kinds: the caller's token carries the kind's
// employee application role (Kind.EmployeeAppRole) and the caller (by
// token sub) is an active employee of the active organization orgID
// holding the kind's administrator role there. An unknown organization is
// NotFound; anything else not allowed is Forbidden with reason "no_role".
// It returns the caller's employee record. Call it inside the change's
// transaction so the decision and the change see the same state.
func (s *Service) AuthorizeAdministrator(ctx context.Context, q sqldb.Querier, caller *auth.Caller, orgID string) (Employee, error) {
	if _, err := s.repo.Organization(ctx, q, orgID); err != nil {
		return Employee{}, err
	}
	// The role comes from the token (RBAC), the membership from this
	// service's data (ReBAC); both must hold.
	if !caller.HasRole(s.kind.EmployeeAppRole) {
		return Employee{}, apperr.Denied(policy.ReasonNoRole, "the application role %s is required", s.kind.EmployeeAppRole)
	}
	denied := apperr.Denied(policy.ReasonNoRole, "only an employee of this organization holding %s may change it", s.kind.AdministratorRole)
	if caller == nil || caller.IsService {
		return Employee{}, denied
	}
	e, err := s.repo.EmployeeByUserID(ctx, q, caller.Subject)
	if apperr.Is(err, apperr.NotFound) || (err == nil && e.OrgID != orgID) {
		return Employee{}, denied
	}
	if err != nil {
		return Employee{}, err
	}
	ok, err := s.repo.HasRole(ctx, q, e.ID, s.kind.AdministratorRole)
	if err != nil {
		return Employee{}, err
	}
	if !ok {
		return Employee{}, denied
	}
	return e, nil
}

// AuthorizeReader checks that the caller may read inside organization
// orgID: an active employee of it (any role) or a REALGUARDIO_ADMIN. An
// unknown organization is NotFound.
func (s *Service) AuthorizeReader(ctx context.Context, q sqldb.Querier, caller *auth.Caller, orgID string) error {
	if _, err := s.repo.Organization(ctx, q, orgID); err != nil {
		return err
	}
	if caller.HasRole(auth.RoleAdmin) {
		return nil
	}
	denied := apperr.Denied(policy.ReasonNoRole, "only employees of this organization may read it")
	if caller == nil || caller.IsService {
		return denied
	}
	e, err := s.repo.EmployeeByUserID(ctx, q, caller.Subject)
	if apperr.Is(err, apperr.NotFound) || (err == nil && e.OrgID != orgID) {
		return denied
	}
	return err
}

// Change runs fn in a transaction after AuthorizeAdministrator allowed the
// caller, passing the caller's employee record. Services build their own
// changes inside an organization (a dealer's monitoring provider, a
// customer's locations) on it, so every change has the same check.
func (s *Service) Change(ctx context.Context, caller *auth.Caller, orgID string, fn func(tx *sqldb.Tx, admin Employee) error) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		admin, err := s.AuthorizeAdministrator(ctx, tx, caller, orgID)
		if err != nil {
			return err
		}
		return fn(tx, admin)
	})
}

// CreatedEmployee is the answer to creating an employee. InitialPassword
// is set only when the password was generated; it is shown once and never
// stored by this service.
type CreatedEmployee struct {
	ID              string `json:"id"`
	UserID          string `json:"userId"`
	InitialPassword string `json:"initialPassword,omitempty"`
}

// CreatedAdministrator is the administrator part of CreatedOrganization.
type CreatedAdministrator struct {
	EmployeeID      string `json:"employeeId"`
	UserID          string `json:"userId"`
	InitialPassword string `json:"initialPassword,omitempty"`
}

// CreatedOrganization is the answer to creating an organization.
type CreatedOrganization struct {
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	Administrator CreatedAdministrator `json:"administrator"`
}

func emailConflict(field string, cause error) error {
	return &apperr.Error{Code: apperr.Conflict, Field: field, Message: field + ": is already used by another account", Cause: cause}
}

// formerEmployeeConflict answers an address of a removed employee of
// another organization. An e-mail address is one IAM account (its
// username), and a former employee's account stays with the organization
// it worked for, which may hire the person again; handing it to another
// organization would hand over whatever sessions and history the account
// has.
func formerEmployeeConflict(field string) error {
	return &apperr.Error{Code: apperr.Conflict, Field: field,
		Message: field + ": belongs to a former employee of another organization (an e-mail address is one account)"}
}

// CreateOrganization creates an organization with its first administrator
// (an employee holding the kind's administrator role) and the
// administrator's IAM account. Only a caller holding the kind's creator
// application role may: that is the whole rule (RBAC, nothing else is
// consulted).
//
// The account is provisioned in three steps so that the employee and the
// account exist together or not at all: a first transaction records the
// organization and the administrator as pending (invisible, no events);
// then the IAM account is created with the pending employee's user id;
// then a second transaction activates both and writes the events. A retry
// with the same administrator e-mail after a failure reuses the pending
// rows and the same user id, which the IAM treats as the same account. An
// address held by an abandoned pending employee (PendingTTL) is reclaimed
// as withReclaim says.
func (s *Service) CreateOrganization(ctx context.Context, caller *auth.Caller, name string, admin NewEmployee) (CreatedOrganization, error) {
	if !caller.HasRole(s.kind.CreatorRole) {
		return CreatedOrganization{}, apperr.Denied(policy.ReasonNoRole, "the application role %s is required", s.kind.CreatorRole)
	}
	name, err := NormalizeName("name", name)
	if err != nil {
		return CreatedOrganization{}, err
	}
	const prefix = "administrator."
	admin, err = admin.Normalize(prefix)
	if err != nil {
		return CreatedOrganization{}, err
	}
	org := Organization{Name: name}
	var emp Employee
	now := s.now()
	err = s.withReclaim(ctx, prefix+"email", func() error {
		return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
			org.ID, emp = "", Employee{}
			return s.claimAdministrator(ctx, tx, &org, &emp, admin, now)
		})
	})
	if err != nil {
		return CreatedOrganization{}, err
	}

	password, generated := admin.Password, false
	if password == "" {
		password, generated = GeneratePassword(), true
	}
	if err := s.createAccount(ctx, emp, password, prefix); err != nil {
		return CreatedOrganization{}, err
	}

	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		activated, err := s.repo.activateOrganization(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		if !activated {
			return s.completedElsewhere(ctx, tx, org.ID, emp.ID)
		}
		if _, err := s.repo.setEmployeeStatus(ctx, tx, emp.ID, StatusPending, StatusActive, s.now()); err != nil {
			return err
		}
		roles := []string{s.kind.AdministratorRole}
		if err := s.repo.SetRoles(ctx, tx, emp.ID, roles); err != nil {
			return err
		}
		ev := s.kind.Events
		if err := s.Emit(ctx, tx, org.ID, ev.Created, ev.CreatedPayload(org.ID, org.Name)); err != nil {
			return err
		}
		if err := s.Emit(ctx, tx, org.ID, ev.EmployeeCreated, s.employeeCreatedPayload(emp)); err != nil {
			return err
		}
		return s.Emit(ctx, tx, org.ID, ev.EmployeeRolesSet, ev.EmployeeRolesSetPayload(eventEmployee(emp), roles))
	})
	if err != nil {
		return CreatedOrganization{}, err
	}
	out := CreatedOrganization{ID: org.ID, Name: org.Name, Administrator: CreatedAdministrator{EmployeeID: emp.ID, UserID: emp.UserID}}
	if generated {
		out.Administrator.InitialPassword = password
	}
	return out, nil
}

// claimAdministrator reserves admin's e-mail address for the first
// administrator of a new organization inside tx, filling in org's id and
// the pending employee emp: a pending administrator of a pending
// organization with the address is the same creation retried and is
// taken over; an abandoned pending employee elsewhere is an
// *abandonedError for withReclaim; any other holder of the address, live
// or former, is a Conflict.
func (s *Service) claimAdministrator(ctx context.Context, tx *sqldb.Tx, org *Organization, emp *Employee, admin NewEmployee, now time.Time) error {
	const prefix = "administrator."
	existing, found, err := s.repo.liveEmployeeByEmail(ctx, tx, admin.Email)
	if err != nil {
		return err
	}
	if found {
		if existing.Status != StatusPending {
			return emailConflict(prefix+"email", nil)
		}
		st, err := s.repo.organizationStatus(ctx, tx, existing.OrgID)
		if err != nil {
			return err
		}
		if st != StatusPending {
			// A pending employee of an existing organization is
			// another, unfinished request's business, until it is
			// abandoned.
			if s.abandoned(existing, now) {
				return &abandonedError{existing}
			}
			return emailConflict(prefix+"email", nil)
		}
		org.ID = existing.OrgID
		*emp = existing.Employee
		emp.FirstName, emp.LastName = admin.FirstName, admin.LastName
		if err := s.repo.updatePendingOrganization(ctx, tx, *org); err != nil {
			return err
		}
		return s.repo.updatePendingEmployee(ctx, tx, *emp, now)
	}
	// A new organization is always another organization than the one a
	// former employee worked for.
	if _, former, err := s.repo.removedEmployeeByEmail(ctx, tx, admin.Email); err != nil {
		return err
	} else if former {
		return formerEmployeeConflict(prefix + "email")
	}
	org.ID = uuid.NewString()
	*emp = Employee{ID: uuid.NewString(), OrgID: org.ID, UserID: uuid.NewString(), Email: admin.Email,
		FirstName: admin.FirstName, LastName: admin.LastName, Status: StatusPending}
	if err := s.repo.insertOrganization(ctx, tx, *org, StatusPending, now); err != nil {
		return err
	}
	if err := s.repo.insertEmployee(ctx, tx, *emp, now); err != nil {
		if errors.Is(err, errEmailTaken) {
			return emailConflict(prefix+"email", err)
		}
		return err
	}
	return nil
}

// PendingTTL is how long a pending employee (an account being
// provisioned) keeps its e-mail address from other organizations after
// its last provisioning attempt. A client that got a 503 retries within
// seconds or minutes; a row older than this was abandoned, and withReclaim
// frees its address for whoever asks for it next. It is far longer than
// any request lives, so a row is never reclaimed under a request still
// provisioning it.
const PendingTTL = time.Hour

// abandoned reports whether the pending employee h was abandoned: its
// last provisioning attempt is older than PendingTTL.
func (s *Service) abandoned(h emailHolder, now time.Time) bool {
	return h.Status == StatusPending && h.updatedAt < sqldb.Micros(now.Add(-PendingTTL))
}

// abandonedError is returned from a claim's transaction (rolling it back)
// when the address is held by an abandoned pending employee of another
// organization, for withReclaim to deal with outside the transaction.
type abandonedError struct{ holder emailHolder }

func (e *abandonedError) Error() string {
	return "e-mail address held by an abandoned pending employee"
}

// withReclaim runs claim, and when the address it wants is held by an
// abandoned pending employee (an *abandonedError) reclaims the address and
// runs claim once more.
//
// Reclaiming asks the IAM whether the abandoned employee's account
// exists. If it does not, no account holds the address: the abandoned
// rows are deleted and the address is free for this request. If it does
// (the abandoned attempt created it and then failed), the address stays
// with it, a Conflict: the account's password was chosen by the other
// organization's request and sessions opened with it cannot be revoked,
// so it must never become another organization's employee. Only a retry
// by the original organization completes such a row, whatever its age.
// The IAM being unreachable is Unavailable, nothing changed.
func (s *Service) withReclaim(ctx context.Context, field string, claim func() error) error {
	err := claim()
	var ab *abandonedError
	if !errors.As(err, &ab) {
		return err
	}
	exists, err := s.accounts.UserExists(ctx, ab.holder.UserID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			return apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not be asked about the account; retry")
		}
		return err
	}
	if exists {
		return emailConflict(field, nil)
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		deleted, err := s.repo.deleteAbandonedEmployee(ctx, tx, ab.holder.ID, ab.holder.updatedAt)
		if err != nil || !deleted {
			return err
		}
		s.logger.InfoContext(ctx, "reclaimed the e-mail address of an abandoned pending employee", "employee_id", ab.holder.ID)
		return s.repo.deletePendingOrganization(ctx, tx, ab.holder.OrgID)
	})
	if err != nil {
		return err
	}
	// Deleted or not (a retry of the original request refreshed the row
	// meanwhile), the claim decides again on the current state; an
	// address abandoned again by then is simply taken.
	err = claim()
	if errors.As(err, &ab) {
		return emailConflict(field, nil)
	}
	return err
}

// completedElsewhere handles the second provisioning transaction finding
// its rows no longer pending: a concurrent retry of the same request
// completed them (and wrote the events), which is success for this request
// too; anything else is a conflict the client may retry.
func (s *Service) completedElsewhere(ctx context.Context, q sqldb.Querier, orgID, employeeID string) error {
	if _, err := s.repo.Employee(ctx, q, orgID, employeeID); err == nil {
		return nil
	}
	return apperr.New(apperr.Conflict, "the employee was changed by a concurrent request; retry")
}

func (s *Service) employeeCreatedPayload(e Employee) any {
	return s.kind.Events.EmployeeCreatedPayload(eventEmployee(e), e.Email, e.FirstName, e.LastName)
}

// eventEmployee is whom an employee event names.
func eventEmployee(e Employee) catalog.Employee {
	return catalog.Employee{OrgID: e.OrgID, EmployeeID: e.ID, UserID: e.UserID}
}

// createAccount creates the IAM account of the pending employee e. When the
// IAM refuses for good (the username belongs to another account, or it
// rejects the input) the pending rows are deleted, so nothing is left
// behind and the address is free again, unless the IAM has an account
// with e's user id: an earlier attempt created it, or e is a former
// employee being re-hired. Those rows are then the only record of an
// account holding the address, so they stay pending and a retry with
// acceptable input completes them. When the IAM cannot be reached the
// pending rows stay: a retry reuses them and the same user id.
func (s *Service) createAccount(ctx context.Context, e Employee, password, prefix string) error {
	err := s.accounts.CreateUser(ctx, e.UserID, e.Email, password, []string{s.kind.EmployeeAppRole})
	if err == nil {
		return nil
	}
	code := apperr.CodeOf(err)
	if code != apperr.Conflict && code != apperr.Invalid {
		if code == apperr.Internal {
			return apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not create the account; retry")
		}
		return err
	}
	// The cleanup must run even when the client has gone away, or a
	// pending row would keep blocking the address until a retry.
	cleanupCtx := context.WithoutCancel(ctx)
	exists, perr := s.accounts.UserExists(cleanupCtx, e.UserID)
	switch {
	case perr != nil:
		s.logger.WarnContext(ctx, "keep pending employee: cannot tell whether its account exists", "employee_id", e.ID, "err", perr)
	case exists:
		s.logger.InfoContext(ctx, "keep pending employee: its account exists", "employee_id", e.ID)
	default:
		if derr := s.db.InTx(cleanupCtx, func(tx *sqldb.Tx) error {
			if err := s.repo.deletePendingEmployee(cleanupCtx, tx, e.ID); err != nil {
				return err
			}
			return s.repo.deletePendingOrganization(cleanupCtx, tx, e.OrgID)
		}); derr != nil {
			s.logger.ErrorContext(ctx, "abandon pending employee", "employee_id", e.ID, "err", derr)
		}
	}
	if code == apperr.Conflict {
		return emailConflict(prefix+"email", err)
	}
	field := prefix + "password"
	if ae := apperr.As(err); ae != nil && ae.Field == "username" {
		field = prefix + "email"
	}
	return &apperr.Error{Code: apperr.Invalid, Field: field, Message: field + ": refused by the IAM Service", Cause: err}
}

// CreateEmployee creates an employee of organization orgID and the
// employee's IAM account, with the provisioning of CreateOrganization:
// pending row, account, activation with the employee_created event. The
// e-mail address decides which employee that is (see claimEmployee): a
// retry completes a pending employee of the same organization, and a
// removed employee of the same organization is re-hired, keeping its
// employee id and user id. An address of any other live employee, or of a
// former employee of another organization, is a Conflict, except that of
// a pending employee of another organization abandoned for longer than
// PendingTTL, which withReclaim deals with.
func (s *Service) CreateEmployee(ctx context.Context, caller *auth.Caller, orgID string, in NewEmployee) (CreatedEmployee, error) {
	in, err := in.Normalize("")
	if err != nil {
		return CreatedEmployee{}, err
	}
	var emp Employee
	err = s.withReclaim(ctx, "email", func() error {
		return s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
			var err error
			emp, err = s.claimEmployee(ctx, tx, orgID, in, s.now())
			return err
		})
	})
	if err != nil {
		return CreatedEmployee{}, err
	}

	password, generated := in.Password, false
	if password == "" {
		password, generated = GeneratePassword(), true
	}
	if err := s.createAccount(ctx, emp, password, ""); err != nil {
		return CreatedEmployee{}, err
	}
	// A re-hired employee's account was disabled at the removal. Enabling
	// is idempotent, so it runs for every creation: a retry cannot tell
	// whether the pending row it completes is a re-hire, and a new
	// account is merely enabled twice.
	if err := s.accounts.EnableUser(ctx, emp.UserID); err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			return CreatedEmployee{}, apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not enable the account; retry")
		}
		return CreatedEmployee{}, err
	}

	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		activated, err := s.repo.setEmployeeStatus(ctx, tx, emp.ID, StatusPending, StatusActive, s.now())
		if err != nil {
			return err
		}
		if !activated {
			return s.completedElsewhere(ctx, tx, orgID, emp.ID)
		}
		return s.Emit(ctx, tx, orgID, s.kind.Events.EmployeeCreated, s.employeeCreatedPayload(emp))
	})
	if err != nil {
		return CreatedEmployee{}, err
	}
	out := CreatedEmployee{ID: emp.ID, UserID: emp.UserID}
	if generated {
		out.InitialPassword = password
	}
	return out, nil
}

// claimEmployee reserves in's e-mail address for an employee of orgID
// inside tx and returns the pending employee to provision:
//
//   - a pending employee of orgID with the address is a retry, completed
//     with this request's names;
//   - a removed employee of orgID with the address is re-hired: the same
//     row (employee id and user id) becomes pending again, because the
//     disabled IAM account still holds the address as its username and
//     only the same id can take it back (the IAM's idempotent create);
//   - otherwise a new pending employee with a new user id.
//
// Any other live employee with the address, and a removed employee of
// another organization (formerEmployeeConflict), is a Conflict.
func (s *Service) claimEmployee(ctx context.Context, tx *sqldb.Tx, orgID string, in NewEmployee, now time.Time) (Employee, error) {
	// Two passes at most: a re-hire that lost a race with a concurrent
	// one finds that request's pending row on the second pass.
	for pass := 0; ; pass++ {
		existing, found, err := s.repo.liveEmployeeByEmail(ctx, tx, in.Email)
		if err != nil {
			return Employee{}, err
		}
		if found {
			if existing.Status == StatusPending && existing.OrgID == orgID {
				e := existing.Employee
				e.FirstName, e.LastName = in.FirstName, in.LastName
				return e, s.repo.updatePendingEmployee(ctx, tx, e, now)
			}
			if existing.OrgID != orgID && s.abandoned(existing, now) {
				return Employee{}, &abandonedError{existing}
			}
			return Employee{}, emailConflict("email", nil)
		}
		former, found, err := s.repo.removedEmployeeByEmail(ctx, tx, in.Email)
		if err != nil {
			return Employee{}, err
		}
		if !found {
			break
		}
		if former.OrgID != orgID {
			return Employee{}, formerEmployeeConflict("email")
		}
		former.FirstName, former.LastName = in.FirstName, in.LastName
		reactivated, err := s.repo.reactivateEmployee(ctx, tx, former, now)
		if errors.Is(err, errEmailTaken) {
			return Employee{}, emailConflict("email", err)
		}
		if err != nil {
			return Employee{}, err
		}
		if reactivated {
			former.Status = StatusPending
			return former, nil
		}
		if pass > 0 {
			return Employee{}, apperr.New(apperr.Conflict, "the employee was changed by a concurrent request; retry")
		}
	}
	emp := Employee{ID: uuid.NewString(), OrgID: orgID, UserID: uuid.NewString(), Email: in.Email,
		FirstName: in.FirstName, LastName: in.LastName, Status: StatusPending}
	if err := s.repo.insertEmployee(ctx, tx, emp, now); err != nil {
		if errors.Is(err, errEmailTaken) {
			return Employee{}, emailConflict("email", err)
		}
		return Employee{}, err
	}
	return emp, nil
}

// checkAdministratorLeft refuses a change that would leave organization
// orgID without any administrator: nobody could then change it again
// except by editing the database.
func (s *Service) checkAdministratorLeft(ctx context.Context, q sqldb.Querier, orgID string) error {
	n, err := s.countAdministrators(ctx, q, orgID)
	if err != nil {
		return err
	}
	if n == 0 {
		return s.noAdministratorLeft()
	}
	return nil
}

func (s *Service) noAdministratorLeft() error {
	return apperr.New(apperr.Conflict, "the organization must keep at least one employee holding %s", s.kind.AdministratorRole)
}

func (s *Service) countAdministrators(ctx context.Context, q sqldb.Querier, orgID string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM employees e JOIN employee_roles r ON r.employee_id = e.id
		WHERE e.org_id = ? AND e.status = ? AND r.role = ?`, orgID, StatusActive, s.kind.AdministratorRole).Scan(&n)
	if err != nil {
		return 0, apperr.Wrap(err, apperr.Internal, "count administrators")
	}
	return n, nil
}

// SetEmployeeRoles replaces the organization roles of employee employeeID
// of organization orgID ([] revokes every role) and returns the new set.
// The employee_roles_set event carries the whole set.
func (s *Service) SetEmployeeRoles(ctx context.Context, caller *auth.Caller, orgID, employeeID string, roles []string) ([]string, error) {
	roles, err := s.kind.NormalizeRoles(roles)
	if err != nil {
		return nil, err
	}
	err = s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		if err := s.repo.SetRoles(ctx, tx, e.ID, roles); err != nil {
			return err
		}
		if err := s.checkAdministratorLeft(ctx, tx, orgID); err != nil {
			return err
		}
		return s.Emit(ctx, tx, orgID, s.kind.Events.EmployeeRolesSet, s.kind.Events.EmployeeRolesSetPayload(eventEmployee(e), roles))
	})
	if err != nil {
		return nil, err
	}
	return roles, nil
}

// SetSchedule gives employee employeeID of organization orgID the schedule
// sch, replacing any.
func (s *Service) SetSchedule(ctx context.Context, caller *auth.Caller, orgID, employeeID string, sch policy.Schedule) (policy.Schedule, error) {
	if err := sch.Validate(); err != nil {
		return policy.Schedule{}, err
	}
	err := s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		if err := s.repo.SetSchedule(ctx, tx, e.ID, sch, s.now()); err != nil {
			return err
		}
		return s.Emit(ctx, tx, orgID, s.kind.Events.EmployeeScheduleSet, s.kind.Events.EmployeeScheduleSetPayload(eventEmployee(e), catalog.ScheduleOf(sch.TimeZone, sch.Shifts)))
	})
	if err != nil {
		return policy.Schedule{}, err
	}
	return sch, nil
}

// ClearSchedule makes employee employeeID of organization orgID
// unrestricted. Clearing is idempotent and always emits the cleared event,
// which consumers apply idempotently too.
func (s *Service) ClearSchedule(ctx context.Context, caller *auth.Caller, orgID, employeeID string) error {
	return s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		if err := s.repo.ClearSchedule(ctx, tx, e.ID); err != nil {
			return err
		}
		return s.Emit(ctx, tx, orgID, s.kind.Events.EmployeeScheduleCleared, s.kind.Events.EmployeeScheduleClearedPayload(eventEmployee(e)))
	})
}

// ResetEmployeePassword issues a one-time password reset code for the IAM
// account of the active employee employeeID of organization orgID, for
// the organization's administrator to hand to the employee (a forgotten
// password, a lost second factor). The decision is the one of every
// change (AuthorizeAdministrator); the IAM confines this service to the
// accounts it created. An unreachable IAM is a 503 and nothing is issued.
func (s *Service) ResetEmployeePassword(ctx context.Context, caller *auth.Caller, orgID, employeeID string) (PasswordReset, error) {
	var target Employee
	err := s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		target = e
		return err
	})
	if err != nil {
		return PasswordReset{}, err
	}
	r, err := s.accounts.ResetPassword(ctx, target.UserID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			return PasswordReset{}, apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not issue a reset code; retry")
		}
		return PasswordReset{}, err
	}
	s.logger.InfoContext(ctx, "employee password reset code issued", "org", orgID, "employee", target.ID, "by", caller.Subject)
	r.EmployeeID, r.UserID = target.ID, target.UserID
	return r, nil
}

// RemoveEmployee removes employee employeeID of organization orgID: the
// IAM account is disabled first (if the IAM is down nothing changes, 503),
// then, in one transaction, the employee is marked removed, its roles and
// schedule deleted, employee_removed written and the OnEmployeeRemoved
// hook run. A failure after disabling leaves the employee active and a
// retry completes the removal, because disabling is idempotent.
func (s *Service) RemoveEmployee(ctx context.Context, caller *auth.Caller, orgID, employeeID string) error {
	var target Employee
	err := s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		target = e
		// Check the last-administrator rule before the account is
		// disabled, so a refused removal changes nothing anywhere.
		isAdmin, err := s.repo.HasRole(ctx, tx, e.ID, s.kind.AdministratorRole)
		if err != nil || !isAdmin {
			return err
		}
		n, err := s.countAdministrators(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if n <= 1 {
			return s.noAdministratorLeft()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.accounts.DisableUser(ctx, target.UserID); err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			return apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not disable the account; retry")
		}
		return err
	}
	return s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, _ Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		if _, err := s.repo.setEmployeeStatus(ctx, tx, e.ID, StatusActive, StatusRemoved, s.now()); err != nil {
			return err
		}
		if err := s.repo.SetRoles(ctx, tx, e.ID, nil); err != nil {
			return err
		}
		if err := s.repo.ClearSchedule(ctx, tx, e.ID); err != nil {
			return err
		}
		if err := s.checkAdministratorLeft(ctx, tx, orgID); err != nil {
			return err
		}
		if err := s.Emit(ctx, tx, orgID, s.kind.Events.EmployeeRemoved, s.kind.Events.EmployeeRemovedPayload(eventEmployee(e))); err != nil {
			return err
		}
		if s.onEmployeeRemoved == nil {
			return nil
		}
		e.Status = StatusRemoved
		return s.onEmployeeRemoved(ctx, tx, e)
	})
}

// AccountStatuses is the optional part of the Accounts port that reads
// whether an account is enabled; IAMAccounts implements it. An Accounts
// without it (a test double of another service that never asks) makes the
// account status reads and changes answer Unavailable.
type AccountStatuses interface {
	AccountEnabled(ctx context.Context, id string) (bool, error)
}

// AccountStatus is an employee's IAM account as its organization's
// administrators see it: Enabled is false while the account is disabled
// (it can neither sign in nor refresh its tokens).
type AccountStatus struct {
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
	Enabled    bool   `json:"enabled"`
}

// EmployeeAccount returns whether the account of employee employeeID of
// orgID is enabled. The organization's administrators and the platform
// administrator may read it; an IAM that does not answer is Unavailable.
func (s *Service) EmployeeAccount(ctx context.Context, caller *auth.Caller, orgID, employeeID string) (AccountStatus, error) {
	if !caller.HasRole(auth.RoleAdmin) {
		if _, err := s.AuthorizeAdministrator(ctx, s.db, caller, orgID); err != nil {
			return AccountStatus{}, err
		}
	} else if err := s.AuthorizeReader(ctx, s.db, caller, orgID); err != nil {
		return AccountStatus{}, err
	}
	e, err := s.repo.Employee(ctx, s.db, orgID, employeeID)
	if err != nil {
		return AccountStatus{}, err
	}
	enabled, err := s.accountEnabled(ctx, e.UserID)
	if err != nil {
		return AccountStatus{}, err
	}
	return AccountStatus{EmployeeID: e.ID, UserID: e.UserID, Enabled: enabled}, nil
}

func (s *Service) accountEnabled(ctx context.Context, userID string) (bool, error) {
	st, ok := s.accounts.(AccountStatuses)
	if !ok {
		return false, apperr.New(apperr.Unavailable, "this service cannot read account statuses")
	}
	enabled, err := st.AccountEnabled(ctx, userID)
	if err != nil && apperr.CodeOf(err) != apperr.Unavailable {
		// The IAM shows this service every account it created, so an
		// unknown account, like any other failure, is the IAM's fault.
		return false, apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not read the account; retry")
	}
	return enabled, err
}

// SetEmployeeAccountEnabled disables (enabled false) or enables again the
// IAM account of employee employeeID of orgID, for the organization's
// administrators: a disabled account can neither sign in nor refresh its
// tokens, so the employee loses access when the access token they hold
// expires, while keeping roles, shifts and memberships for when the
// account is enabled again (removing the employee takes those away). An
// administrator may not disable their own account (422, field enabled):
// that keeps at least one administrator able to sign in. Both changes are
// idempotent.
func (s *Service) SetEmployeeAccountEnabled(ctx context.Context, caller *auth.Caller, orgID, employeeID string, enabled bool) (AccountStatus, error) {
	var target Employee
	err := s.Change(ctx, caller, orgID, func(tx *sqldb.Tx, admin Employee) error {
		e, err := s.repo.Employee(ctx, tx, orgID, employeeID)
		if err != nil {
			return err
		}
		if !enabled && e.ID == admin.ID {
			return apperr.InvalidField("enabled", "you cannot disable your own account; another administrator can")
		}
		target = e
		return nil
	})
	if err != nil {
		return AccountStatus{}, err
	}
	change := s.accounts.EnableUser
	if !enabled {
		change = s.accounts.DisableUser
	}
	if err := change(ctx, target.UserID); err != nil {
		if apperr.CodeOf(err) != apperr.Unavailable {
			return AccountStatus{}, apperr.Wrap(err, apperr.Unavailable, "the IAM Service could not change the account; retry")
		}
		return AccountStatus{}, err
	}
	s.logger.InfoContext(ctx, "employee account changed", "org", orgID, "employee", target.ID, "enabled", enabled, "by", caller.Subject)
	return AccountStatus{EmployeeID: target.ID, UserID: target.UserID, Enabled: enabled}, nil
}
