// Package openapitest checks that the routes every service registers are
// the operations its OpenAPI file (api/<service>.yaml) documents, and the
// other way round. It holds only tests: they start the whole system, read
// what each service registered through httpx.Mux (httpx.RegisteredRoutes)
// and compare method and path template with the file's paths; and that
// every $ref of the files resolves.
package openapitest
