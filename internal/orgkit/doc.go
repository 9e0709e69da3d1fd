// Package orgkit is what the three organization services (customer, dealer,
// monitoring provider) share: organizations, their employees, each
// employee's organization roles and schedule, the provisioning of the
// employee's IAM account, the local ReBAC check "the caller administers this
// organization", the events of docs/events.md and the subject facts of
// docs/fetch-api.md. Everything is parameterized by a Kind, so the three
// services differ only in names, roles and the extra data they own.
//
// The files keep the layers apart: domain.go and kind.go hold the entities
// and rules (no SQL, no HTTP); service.go holds the use cases and the ports
// they need (Accounts, Outbox); repo.go is the SQL adapter, usable inside a
// caller's transaction so a service can combine its own changes with the
// kit's checks; package orgkithttp holds the HTTP handlers.
package orgkit
