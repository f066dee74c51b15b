package dashboards

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const (
	rulesFile      = "alerts.rules.yml"
	rulesTestFile  = "alerts_test.yml"
	metricsFile    = "metrics.txt"
	runbooksFile   = "../docs/runbooks.md"
	metricsDocFile = "../docs/metrics.md"
	// clickHouseType is the Grafana plugin id of the ClickHouse data source
	// (Altinity's plugin: it talks to the HTTP interface, which ClickHouse
	// 18.16 serves as well as current releases).
	clickHouseType = "vertamedia-clickhouse-datasource"
)

// TestPromtool runs promtool check rules and promtool test rules. Without
// promtool the test is skipped, or fails under CI=true.
func TestPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus): %v", err)
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := exec.Command(bin, args...).CombinedOutput()
			require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		})
	}
}

// metric is one line of metrics.txt.
type metric struct {
	Name, Type, Component, Status string
	Labels                        []string
	Line                          int
}

func loadMetrics(t *testing.T) map[string]metric {
	t.Helper()
	f, err := os.Open(metricsFile)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]metric{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		require.Len(t, fs, 5, "%s:%d: want name type component status labels", metricsFile, n)
		m := metric{Name: fs[0], Type: fs[1], Component: fs[2], Status: fs[3], Line: n}
		if fs[4] != "-" {
			m.Labels = strings.Split(fs[4], ",")
		}
		require.Contains(t, []string{"counter", "gauge", "histogram", "summary"}, m.Type, "%s:%d: type", metricsFile, n)
		require.Contains(t, []string{"exported", "planned", "builtin"}, m.Status, "%s:%d: status", metricsFile, n)
		if m.Status != "builtin" {
			require.True(t, strings.HasPrefix(m.Name, "portrait_"), "%s:%d: %s: portrait metrics start with portrait_", metricsFile, n, m.Name)
			require.Equal(t, m.Type == "counter", strings.HasSuffix(m.Name, "_total"), "%s:%d: %s: counters, and only counters, end in _total", metricsFile, n, m.Name)
			require.NotContains(t, m.Labels, "user", "%s:%d: no per-user labels", metricsFile, n)
		}
		_, dup := out[m.Name]
		require.False(t, dup, "%s:%d: %s listed twice", metricsFile, n, m.Name)
		out[m.Name] = m
	}
	require.NoError(t, sc.Err())
	return out
}

// rule files, as far as the tests need them.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	Tests []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), "parsing %s", path)
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			out[githubAnchor(strings.TrimLeft(h, "#"))] = true
		}
	}
	return out
}

var runbookURL = regexp.MustCompile(`^https://github\.com/portrait-dev/portrait/blob/main/docs/runbooks\.md#([a-z0-9_-]+)$`)

// TestAlertRules checks what promtool does not: every alert has a known
// severity, a summary, a runbook link to an existing section of
// docs/runbooks.md, and unit tests where it fires and where it does not.
func TestAlertRules(t *testing.T) {
	var rf ruleFile
	loadYAML(t, rulesFile, &rf)
	var tf ruleTestFile
	loadYAML(t, rulesTestFile, &tf)
	anchors := markdownAnchors(t, runbooksFile)

	fires, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.AlertName]++
			} else {
				quiet[at.AlertName]++
			}
		}
	}

	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			t.Run(r.Alert, func(t *testing.T) {
				require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "severity label")
				require.NotEmpty(t, r.Annotations["summary"], "summary annotation")
				m := runbookURL.FindStringSubmatch(r.Annotations["runbook_url"])
				require.NotNil(t, m, "runbook_url %q: want %s", r.Annotations["runbook_url"], runbookURL)
				require.Equal(t, strings.ToLower(r.Alert), m[1], "runbook anchor is the alert's name")
				require.True(t, anchors[m[1]], "docs/runbooks.md has no section #%s", m[1])
				require.Positive(t, fires[r.Alert], "%s has no test case where it fires", rulesTestFile)
				require.Positive(t, quiet[r.Alert], "%s has no test case where it does not fire", rulesTestFile)
			})
		}
	}
	for name := range fires {
		require.Contains(t, alerts, name, "%s tests an alert that does not exist", rulesTestFile)
	}
	// The list: each must have an alert.
	for _, want := range []string{
		"PortraitConsumerLagHigh", "PortraitEventTimeLagHigh", "PortraitFreshnessTargetMissed",
		"PortraitDLQRateSpike", "PortraitDriftHigh", "PortraitRecomputeFailed", "PortraitRecomputeLate",
		"PortraitSnapshotTooOld", "PortraitLandingWatermarkStalled", "PortraitLookupLatencyHigh",
		"PortraitClickHousePublishFailing",
	} {
		require.Contains(t, alerts, want)
	}
}

// dashboard is the part of a Grafana dashboard the tests check.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Tags       []any   `json:"tags"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource *datasource               `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Panels     []panel                   `json:"panels"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		Query      string      `json:"query"`
	} `json:"targets"`
}

// usage is where each metric name is used.
type usage map[string][]string

func (u usage) add(names []string, where string) {
	for _, n := range names {
		u[n] = append(u[n], where)
	}
}

// TestDashboards validates every dashboard's structure, and that its
// ClickHouse panels run the SQL of dashboards/sql (which TestSQL runs).
func TestDashboards(t *testing.T) {
	files, err := filepath.Glob("*.json")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 5, "overview plus one dashboard per layer")
	sqlFiles := map[string]string{}
	sqls, err := filepath.Glob("sql/*.sql")
	require.NoError(t, err)
	for _, f := range sqls {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		sqlFiles[strings.TrimSpace(string(b))] = f
	}

	uids := map[string]string{}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			var d dashboard
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &d), "parsing %s", f)
			require.Equal(t, strings.TrimSuffix(f, ".json"), d.UID, "uid is the file name")
			require.NotContains(t, uids, d.UID)
			uids[d.UID] = f
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Tags, "portrait")

			vars := map[string]string{} // "${name}" → data source plugin type
			for _, v := range d.Templating.List {
				if v.Type == "datasource" {
					vars["${"+v.Name+"}"] = v.Query
				}
			}
			require.Equal(t, "prometheus", vars["${prometheus}"], "a Prometheus data source variable named prometheus")

			ids := map[int]bool{}
			var cells [][4]int
			var walk func(ps []panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					where := fmt.Sprintf("%s panel %d %q", f, p.ID, p.Title)
					require.Positive(t, p.ID, "%s: id", where)
					require.False(t, ids[p.ID], "%s: duplicate id", where)
					ids[p.ID] = true
					require.NotNil(t, p.GridPos, "%s: gridPos", where)
					g := p.GridPos
					require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24, "%s: gridPos %+v", where, *g)
					for _, c := range cells {
						overlap := g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H
						require.False(t, overlap, "%s: gridPos %+v overlaps another panel", where, *g)
					}
					cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
					if p.Type == "row" {
						walk(p.Panels)
						continue
					}
					require.NotEmpty(t, p.Title, "%s: title", where)
					require.NotNil(t, p.Datasource, "%s: datasource", where)
					require.Equal(t, vars[p.Datasource.UID], p.Datasource.Type, "%s: datasource %+v is not a data source variable of its type", where, *p.Datasource)
					require.NotEmpty(t, p.Targets, "%s: targets", where)
					refs := map[string]bool{}
					for _, tg := range p.Targets {
						require.NotEmpty(t, tg.RefID, "%s: refId", where)
						require.False(t, refs[tg.RefID], "%s: duplicate refId %s", where, tg.RefID)
						refs[tg.RefID] = true
						if tg.Datasource != nil {
							require.Equal(t, *p.Datasource, *tg.Datasource, "%s: target data source differs from the panel's", where)
						}
						switch p.Datasource.Type {
						case "prometheus":
							require.NotEmpty(t, strings.TrimSpace(tg.Expr), "%s: expr", where)
						case clickHouseType:
							_, ok := sqlFiles[strings.TrimSpace(tg.Query)]
							require.True(t, ok, "%s: the query is not one of dashboards/sql/*.sql (copy it from there, so TestSQL runs it)", where)
						default:
							t.Fatalf("%s: data source type %s: want prometheus or %s", where, p.Datasource.Type, clickHouseType)
						}
					}
				}
			}
			walk(d.Panels)
		})
	}
}

// usedMetrics returns every metric name the dashboards and rules select,
// with where, and the names the rules record.
func usedMetrics(t *testing.T) (usage, map[string]bool) {
	t.Helper()
	used := usage{}
	recorded := map[string]bool{}
	var rf ruleFile
	loadYAML(t, rulesFile, &rf)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			used.add(promqlNames(r.Expr), rulesFile+" "+r.Alert+r.Record)
		}
	}
	files, err := filepath.Glob("*.json")
	require.NoError(t, err)
	for _, f := range files {
		var d dashboard
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &d))
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					if tg.Expr != "" {
						used.add(promqlNames(tg.Expr), fmt.Sprintf("%s panel %q", f, p.Title))
					}
				}
			}
		}
		walk(d.Panels)
	}
	return used, recorded
}

// baseName maps a histogram's _bucket/_sum/_count series to the metric.
func baseName(name string, metrics map[string]metric) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok {
			if m, ok := metrics[b]; ok && (m.Type == "histogram" || m.Type == "summary") {
				return b
			}
		}
	}
	return name
}

// TestMetricsList checks metrics.txt both ways: every metric a dashboard or
// rule uses is listed (or recorded by a rule), and every listed metric is
// used. Each metric is documented in docs/metrics.md.
func TestMetricsList(t *testing.T) {
	metrics := loadMetrics(t)
	used, recorded := usedMetrics(t)
	seen := map[string]bool{}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if recorded[n] {
			require.True(t, strings.HasPrefix(n, "portrait:"), "recording rule %s: name it portrait:<what>", n)
			continue
		}
		b := baseName(n, metrics)
		_, ok := metrics[b]
		require.True(t, ok, "%s is used (%s) but not listed in %s", n, strings.Join(used[n], "; "), metricsFile)
		seen[b] = true
	}
	doc, err := os.ReadFile(metricsDocFile)
	require.NoError(t, err)
	for _, m := range metrics {
		require.True(t, seen[m.Name], "%s:%d: %s is listed but no dashboard or rule uses it", metricsFile, m.Line, m.Name)
		require.Contains(t, string(doc), "`"+m.Name+"`", "docs/metrics.md does not describe %s", m.Name)
	}
}

// TestExportedMetrics checks that every metric marked exported is
// registered in its component's package (its name appears as a string
// literal in a non-test Go file there), and logs the planned metrics the
// components still have to export. The end-to-end check, scraping /metrics
// of a running `portrait run`, belongs with that command.
func TestExportedMetrics(t *testing.T) {
	metrics := loadMetrics(t)
	sources := map[string]string{}
	source := func(dir string) string {
		if s, ok := sources[dir]; ok {
			return s
		}
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		var b strings.Builder
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			b.Write(data)
		}
		sources[dir] = b.String()
		return sources[dir]
	}
	var planned []string
	for _, m := range metrics {
		switch m.Status {
		case "exported":
			require.Contains(t, source(m.Component), strconv.Quote(m.Name),
				"%s:%d: %s is marked exported but ../%s does not register it", metricsFile, m.Line, m.Name, m.Component)
		case "planned":
			if strings.Contains(source(m.Component), strconv.Quote(m.Name)) {
				t.Logf("%s:%d: %s is now registered in %s: mark it exported", metricsFile, m.Line, m.Name, m.Component)
				continue
			}
			planned = append(planned, m.Component+": "+m.Name)
		}
	}
	slices.Sort(planned)
	t.Logf("metrics the dashboards and alerts use that no component exports yet:\n  %s", strings.Join(planned, "\n  "))
}
