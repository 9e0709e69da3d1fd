package orgkit

import (
	"context"

	"github.com/realguardio/realguardio/internal/iam/iamclient"
)

// IAMAccounts adapts the IAM client to the Accounts port.
type IAMAccounts struct {
	Client *iamclient.Client
}

var _ Accounts = IAMAccounts{}

// CreateUser creates (or, for the same id and username, idempotently
// completes) the account.
func (a IAMAccounts) CreateUser(ctx context.Context, id, username, password string, roles []string) error {
	_, err := a.Client.CreateUser(ctx, iamclient.CreateUserRequest{ID: id, Username: username, Password: password, Roles: roles})
	return err
}

// DisableUser disables the account id.
func (a IAMAccounts) DisableUser(ctx context.Context, id string) error {
	return a.Client.DisableUser(ctx, id)
}
