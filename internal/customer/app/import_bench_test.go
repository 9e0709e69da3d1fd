package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/customer/store"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// importFixture is a customer with an administrator and employees over a
// SQLite file with the real store and the real transactional outbox, so
// the benchmarks measure the rows and the events a real import writes.
type importFixture struct {
	svc    *app.Service
	db     *sqldb.DB
	cust   string
	caller *principal.Caller
	emps   []app.Employee
}

func newImportFixture(b *testing.B, employees int) importFixture {
	db := sqldbtest.OpenSQLite(b, events.Migrations(), store.Migrations())
	cust := uuid.NewString()
	admin := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
	org := &fakeOrg{employees: map[string]app.Employee{admin.ID: admin}, admins: map[string]bool{admin.UserID: true}}
	f := importFixture{db: db, cust: cust, caller: &principal.Caller{Subject: admin.UserID, Roles: []string{principal.RoleCustomerEmployee}}}
	for range employees {
		e := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
		org.employees[e.ID] = e
		f.emps = append(f.emps, e)
	}
	outbox := events.NewOutbox("customer")
	f.svc = &app.Service{Store: store.Transactor{DB: db, Org: org, Outbox: batchOutbox{outbox}}}
	return f
}

// batchOutbox is the customer service's adapter of the real outbox: single
// appends and batches.
type batchOutbox struct{ o *events.Outbox }

func (b batchOutbox) Append(ctx context.Context, tx *sqldb.Tx, aggType, aggID, typ string, p any) error {
	_, err := b.o.Append(ctx, tx, aggType, aggID, typ, p)
	return err
}

func (b batchOutbox) AppendAll(ctx context.Context, tx *sqldb.Tx, aggType, aggID string, evs []app.PendingEvent) error {
	batch := make([]events.Pending, len(evs))
	for i, ev := range evs {
		batch[i] = events.Pending{Type: ev.Type, Payload: ev.Payload}
	}
	_, err := b.o.AppendBatch(ctx, tx, aggType, aggID, batch)
	return err
}

// BenchmarkImportLocations onboards 5 000 locations per operation, the
// customer of issue 9, into SQLite with their 5 000 outbox events, and
// reports the rate as locations/s (target: at least 5 000).
func BenchmarkImportLocations(b *testing.B) {
	const n = 5000
	f := newImportFixture(b, 0)
	items := make([]app.NewLocation, n)
	for i := range items {
		items[i] = app.NewLocation{Name: fmt.Sprintf("Site %05d", i)}
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ids, err := f.svc.ImportLocations(ctx, f.caller, f.cust, items)
		if err != nil || len(ids) != n {
			b.Fatalf("import: %d ids, %v", len(ids), err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "locations/s")
}

// BenchmarkImportLocationRoles replaces 5 000 grants (one per location,
// two roles each) per operation, with their 5 000 events, and reports
// grants/s.
func BenchmarkImportLocationRoles(b *testing.B) {
	const n = 5000
	f := newImportFixture(b, 100)
	ctx := context.Background()
	locs := make([]app.NewLocation, n)
	for i := range locs {
		locs[i] = app.NewLocation{Name: fmt.Sprintf("Site %05d", i)}
	}
	ids, err := f.svc.ImportLocations(ctx, f.caller, f.cust, locs)
	if err != nil {
		b.Fatal(err)
	}
	grants := make([]app.GrantInput, n)
	for i := range grants {
		grants[i] = app.GrantInput{LocationID: ids[i], EmployeeID: f.emps[i%len(f.emps)].ID, Roles: []string{"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"}}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.ImportEmployeeLocationRoles(ctx, f.caller, f.cust, grants); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "grants/s")
}
