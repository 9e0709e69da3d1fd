package orgkit

import (
	"context"

	"github.com/realguardio/realguardio/internal/contract/iamaccounts"
	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// IAMAccounts adapts the IAM client to the Accounts port.
type IAMAccounts struct {
	Client *iamaccounts.Client
}

var _ Accounts = IAMAccounts{}

// CreateUser creates (or, for the same id and username, idempotently
// completes) the account. The password is always one someone else chose
// for the employee (the initial password an administrator typed, or one
// the kit generated and showed once), so the account must replace it at
// its first login before the IAM issues it any token
// (passwordChangeRequired). A retry sets the requirement again with the
// retry's password.
func (a IAMAccounts) CreateUser(ctx context.Context, id, username, password string, roles []string) error {
	_, err := a.Client.CreateUser(ctx, iamaccounts.CreateUserRequest{
		ID: id, Username: username, Password: password, Roles: roles, PasswordChangeRequired: true,
	})
	return err
}

// DisableUser disables the account id.
func (a IAMAccounts) DisableUser(ctx context.Context, id string) error {
	return a.Client.DisableUser(ctx, id)
}

// ResetPassword issues a one-time password reset code for the account id.
func (a IAMAccounts) ResetPassword(ctx context.Context, id string) (PasswordReset, error) {
	r, err := a.Client.ResetPassword(ctx, id)
	if err != nil {
		return PasswordReset{}, err
	}
	return PasswordReset{UserID: r.UserID, Code: r.Code, ResetURL: r.ResetURL, ExpiresAt: r.ExpiresAt}, nil
}

// EnableUser enables the account id again.
func (a IAMAccounts) EnableUser(ctx context.Context, id string) error {
	return a.Client.EnableUser(ctx, id)
}

// UserExists reports whether the IAM has an account with id.
func (a IAMAccounts) UserExists(ctx context.Context, id string) (bool, error) {
	_, err := a.Client.GetUser(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// AccountEnabled reports whether the account id may sign in (not
// disabled); an unknown id is an apperr.NotFound.
func (a IAMAccounts) AccountEnabled(ctx context.Context, id string) (bool, error) {
	u, err := a.Client.GetUser(ctx, id)
	return u.Enabled, err
}
