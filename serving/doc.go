// Package serving is portrait's serving layer: the lookup API that returns
// a user's live tags with their provenance (the speed watermark, the bucket
// boundary the values are as of, and the batch snapshot the lifetime tags
// rest on), and a client for it.
//
// Endpoints of [NewHandler]:
//
//	GET  /v1/profiles/{id}       one profile; 404 unknown, 400 malformed id
//	POST /v1/profiles:batchGet   {"keys": [...]} (up to 1,000) → {"profiles": [...], "missing": [...]}
//	GET  /healthz                200 while the process serves
//	GET  /readyz                 200 once the source is ready, 503 before
//	GET  /metrics                Prometheus metrics of the registry passed in
//
// With a bearer token configured every endpoint but /healthz and /readyz
// requires "Authorization: Bearer <token>" (401 otherwise). Errors are JSON
// objects {"error": "..."}.
//
// Metrics:
//
//	portrait_lookup_duration_seconds{endpoint}   histogram of lookup latency (get, batch_get)
//	portrait_lookup_requests_total{endpoint,code} lookup requests by HTTP status code
package serving
