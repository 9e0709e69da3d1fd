package app

import "context"

// LocationIDsByDealers answers POST /authz/locations:byDealers
// (docs/fetch-api.md): one page of the locations the dealers service, for
// the fetch strategy's lists, which select a dealer employee's systems by
// location. The ids are validated by the handler.
func (s *Service) LocationIDsByDealers(ctx context.Context, dealerIDs []string, cursor string) ([]string, string, error) {
	return s.Store.View().LocationIDsByDealers(ctx, dealerIDs, cursor)
}
