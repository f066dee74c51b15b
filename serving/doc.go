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
// # Reconciler
//
// [Reconcile] compares a batch snapshot C with the speed layer's values as
// of C ([SpeedView], *stream.Speed) for every user in either view, in one
// merge-join over both key-sorted sets: per tag the users compared, equal
// and different, only in batch, only in speed, the max and mean absolute
// error (int64 and float64 tags) and the smallest differing keys. It
// attributes the drifting users to the causes the speed layer counted
// ([CauseSource]: late events, dead-lettered records, duplicate event
// ids), to a catalog change (the snapshot marker's hash differs from the
// speed layer's), or leaves them unexplained. The report prints as a
// table or JSON, is written to <snapshot>/_reconcile.json, inserted into
// ClickHouse tag_drift and set on the drift gauges. With Repair the
// drifting users' speed state is rebuilt ([Repairer]) from their warehouse
// events since the kept buckets and the snapshot's lifetime state, then
// the views are compared again.
//
// [NewAdminHandler] serves POST /v1/admin/reconcile?snapshot=T&repair=1
// (bearer token required) inside the speed process, so that `portrait
// reconcile --api` can run it there.
//
// Metrics:
//
//	portrait_lookup_duration_seconds{endpoint}   histogram of lookup latency (get, batch_get)
//	portrait_lookup_requests_total{endpoint,code} lookup requests by HTTP status code
//	portrait_drift_values{tag,kind}              last reconcile per tag: compared (either view), different, only_batch, only_speed ([DriftMetrics])
package serving
