package dealer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// EventMonitoringProviderSet is catalog.DealerMonitoringProviderSet as a
// plain string, the form the outbox's event_type column holds.
const EventMonitoringProviderSet = string(catalog.DealerMonitoringProviderSet)

// MaxBatch bounds the ids of one facts batch request: a page of security
// systems never names more dealers than this.
const MaxBatch = 1000

// DealerFacts are the resource-side facts the dealer service owns
// (docs/fetch-api.md): which monitoring provider a dealer uses.
type DealerFacts struct {
	DealerID string `json:"dealerId"`
	// MonitoringProviderID is nil when the dealer uses none.
	MonitoringProviderID *string `json:"monitoringProviderId"`
}

// DealerView is a dealer as GET /dealers/{dealerId} shows it.
type DealerView struct {
	ID                   string  `json:"id"`
	Name                 string  `json:"name"`
	MonitoringProviderID *string `json:"monitoringProviderId"`
}

// providers holds the use cases of the dealer's own data next to the kit's.
type providers struct {
	kit *orgkit.Service
	now func() time.Time
}

func (p *providers) monitoringProvider(ctx context.Context, q sqldb.Querier, dealerID string) (*string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT monitoring_provider_id FROM dealer_monitoring_providers WHERE dealer_id = ?`, dealerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read monitoring provider")
	}
	return &id, nil
}

// view adds the monitoring provider to an organization for the reads.
func (p *providers) view(ctx context.Context, o orgkit.Organization) (any, error) {
	mp, err := p.monitoringProvider(ctx, p.kit.DB(), o.ID)
	if err != nil {
		return nil, err
	}
	return DealerView{ID: o.ID, Name: o.Name, MonitoringProviderID: mp}, nil
}

// setMonitoringProvider makes dealer dealerID use the monitoring provider
// providerID (nil clears). Only the dealer's administrator may; the
// provider must be one this service has learnt of from the Monitoring
// Provider Service's events (see the package doc). The event carries the
// new and the previous value.
func (p *providers) setMonitoringProvider(ctx context.Context, caller *auth.Caller, dealerID string, providerID *string) (DealerFacts, error) {
	if providerID != nil {
		id, err := uuid.Parse(*providerID)
		if err != nil || len(*providerID) != 36 {
			return DealerFacts{}, apperr.MalformedField("monitoringProviderId", "must be a UUID or null")
		}
		s := id.String()
		providerID = &s
	}
	err := p.kit.Change(ctx, caller, dealerID, func(tx *sqldb.Tx, _ orgkit.Employee) error {
		if providerID != nil {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM monitoring_provider_replica WHERE id = ?`, *providerID).Scan(&n); err != nil {
				return apperr.Wrap(err, apperr.Internal, "read monitoring providers")
			}
			if n == 0 {
				return apperr.InvalidField("monitoringProviderId", "no monitoring provider %s is known", *providerID)
			}
		}
		previous, err := p.monitoringProvider(ctx, tx, dealerID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dealer_monitoring_providers WHERE dealer_id = ?`, dealerID); err != nil {
			return apperr.Wrap(err, apperr.Internal, "store monitoring provider")
		}
		if providerID != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO dealer_monitoring_providers (dealer_id, monitoring_provider_id, updated_at) VALUES (?, ?, ?)`,
				dealerID, *providerID, sqldb.Micros(p.now())); err != nil {
				return apperr.Wrap(err, apperr.Internal, "store monitoring provider")
			}
		}
		return p.kit.Emit(ctx, tx, dealerID, catalog.DealerMonitoringProviderSet, catalog.DealerMonitoringProviderSetPayload{
			DealerID: dealerID, MonitoringProviderID: providerID, PreviousMonitoringProviderID: previous,
		})
	})
	if err != nil {
		return DealerFacts{}, err
	}
	return DealerFacts{DealerID: dealerID, MonitoringProviderID: providerID}, nil
}

// dealerFacts returns the facts of the active dealers among ids, in the
// order given, leaving out unknown ids.
func (p *providers) dealerFacts(ctx context.Context, ids []string) ([]DealerFacts, error) {
	out := []DealerFacts{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, orgkit.StatusActive)
	for _, id := range ids {
		args = append(args, id)
	}
	q := `SELECT o.id, m.monitoring_provider_id FROM organizations o
		LEFT JOIN dealer_monitoring_providers m ON m.dealer_id = o.id
		WHERE o.status = ? AND o.id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	rows, err := p.kit.DB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read dealer facts")
	}
	defer rows.Close()
	found := map[string]*string{}
	for rows.Next() {
		var id string
		var mp sql.NullString
		if err := rows.Scan(&id, &mp); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "read dealer facts")
		}
		if mp.Valid {
			v := mp.String
			found[id] = &v
		} else {
			found[id] = nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read dealer facts")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		mp, ok := found[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, DealerFacts{DealerID: id, MonitoringProviderID: mp})
	}
	return out, nil
}

// applyMonitoringEvent is the replica consumer's handler: it records every
// monitoring provider the Monitoring Provider Service created. Applying an
// event twice is harmless (the consumer also skips applied ids).
func applyMonitoringEvent(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	if ev.Type != string(catalog.MonitoringProviderCreated) {
		return nil
	}
	var p catalog.MonitoringProviderCreatedPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return fmt.Errorf("decode %s %s: %w", ev.Type, ev.ID, err)
	}
	if _, err := uuid.Parse(p.MonitoringProviderID); err != nil {
		return fmt.Errorf("event %s names monitoring provider %q, not a UUID", ev.ID, p.MonitoringProviderID)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO monitoring_provider_replica (id, name, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`,
		p.MonitoringProviderID, p.Name, sqldb.Micros(ev.OccurredAt))
	return err
}
