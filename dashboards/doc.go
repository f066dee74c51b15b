// Package dashboards holds portrait's monitoring as files, and the tests
// that keep them true:
//
//	*.json               Grafana dashboards (overview, one per layer, analytics)
//	alerts.rules.yml     Prometheus recording and alert rules
//	alerts_test.yml      promtool unit tests: each alert fires and does not fire
//	metrics.txt          every metric the dashboards and rules use, by component
//	sql/*.sql            ready-to-run ClickHouse analytics, also the dashboards'
//	                     ClickHouse panels
//	ui-shot.sh           screenshot of the status page (serving/ui) in headless Chromium
//
// The package has no Go API; its tests run promtool on the rules, check the
// dashboards' structure and the metrics they use against metrics.txt and the
// components' sources, check every alert's runbook link against
// docs/runbooks.md, and run every SQL file on a real ClickHouse server
// against the schema chbatch.EnsureSchema creates for the taobao catalog.
package dashboards
