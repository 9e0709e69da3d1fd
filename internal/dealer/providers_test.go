package dealer

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// acceptingAccounts is a test double of the Accounts port that accepts
// every account; these tests are about the dealer's own data.
type acceptingAccounts struct{}

func (acceptingAccounts) CreateUser(context.Context, string, string, string, []string) error {
	return nil
}
func (acceptingAccounts) DisableUser(context.Context, string) error        { return nil }
func (acceptingAccounts) EnableUser(context.Context, string) error         { return nil }
func (acceptingAccounts) UserExists(context.Context, string) (bool, error) { return true, nil }
func (acceptingAccounts) ResetPassword(context.Context, string) (orgkit.PasswordReset, error) {
	return orgkit.PasswordReset{}, apperr.New(apperr.Unavailable, "password resets are not part of these tests")
}

// TestProviders runs the dealer's own store code (monitoring provider of a
// dealer, the provider replica, the facts queries) on SQLite and
// PostgreSQL.
func TestProviders(t *testing.T) {
	sqldbtest.ForEachStore(t, Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		kit := orgkit.NewService(orgkit.Dealer, db, events.NewOutbox("dealer"), acceptingAccounts{}, nil)
		p := &providers{kit: kit, now: time.Now}
		d, err := kit.CreateOrganization(ctx, &auth.Caller{Subject: uuid.NewString(), Roles: []string{auth.RoleDealerAdministrator}}, "D", orgkit.NewEmployee{Email: "a@d.example", FirstName: "A", LastName: "A"})
		if err != nil {
			t.Fatal(err)
		}
		admin := &auth.Caller{Subject: d.Administrator.UserID, Roles: []string{auth.RoleDealerEmployee}}
		provider := uuid.NewString()

		_, err = p.setMonitoringProvider(ctx, admin, d.ID, &provider)
		if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "monitoringProviderId" {
			t.Fatalf("unknown provider: %v", err)
		}
		payload, _ := json.Marshal(map[string]string{"monitoringProviderId": provider, "name": "P"})
		ev := events.Event{ID: uuid.NewString(), Type: "monitoring.provider_created", Payload: payload, OccurredAt: time.Now()}
		for range 2 { // applying twice is harmless
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return applyMonitoringEvent(ctx, tx, ev) }); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.setMonitoringProvider(ctx, admin, d.ID, &provider); err != nil {
			t.Fatal(err)
		}
		if _, err := p.setMonitoringProvider(ctx, &auth.Caller{Subject: uuid.NewString(), Roles: []string{auth.RoleDealerEmployee}}, d.ID, nil); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("stranger: %v", err)
		}
		// The administrator's sub without the employee application role.
		if _, err := p.setMonitoringProvider(ctx, &auth.Caller{Subject: d.Administrator.UserID}, d.ID, nil); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("administrator without %s: %v", auth.RoleDealerEmployee, err)
		}
		facts, err := p.dealerFacts(ctx, []string{d.ID, uuid.NewString(), d.ID})
		if err != nil || len(facts) != 1 || *facts[0].MonitoringProviderID != provider {
			t.Fatalf("facts %+v %v", facts, err)
		}
		if _, err := p.setMonitoringProvider(ctx, admin, d.ID, nil); err != nil {
			t.Fatal(err)
		}
		facts, _ = p.dealerFacts(ctx, []string{d.ID})
		if len(facts) != 1 || facts[0].MonitoringProviderID != nil {
			t.Fatalf("cleared facts %+v", facts)
		}

		var raw []string
		rows, err := db.QueryContext(ctx, `SELECT payload FROM event_outbox WHERE event_type = ? ORDER BY sequence`, EventMonitoringProviderSet)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			raw = append(raw, s)
		}
		want := []string{
			`{"dealerId":"` + d.ID + `","monitoringProviderId":"` + provider + `","previousMonitoringProviderId":null}`,
			`{"dealerId":"` + d.ID + `","monitoringProviderId":null,"previousMonitoringProviderId":"` + provider + `"}`,
		}
		if len(raw) != 2 || raw[0] != want[0] || raw[1] != want[1] {
			t.Fatalf("payloads\n got %v\nwant %v", raw, want)
		}
	})
}
