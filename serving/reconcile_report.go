package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// ReconcileFile is the name of the report written beside a snapshot's
// files; its leading "_" keeps profile readers away from it.
const ReconcileFile = "_reconcile.json"

// Drift gauge kinds.
const (
	KindCompared  = "compared"
	KindDifferent = "different"
	KindOnlyBatch = "only_batch"
	KindOnlySpeed = "only_speed"
)

// driftKinds are the kinds of portrait_drift_values, in exposition order.
var driftKinds = []string{KindCompared, KindDifferent, KindOnlyBatch, KindOnlySpeed}

// DriftMetrics are the reconciler's gauges:
//
//	portrait_drift_values{tag,kind}   last reconcile, per tag: compared (users in
//	                                  either view), different (in both, values
//	                                  differ), only_batch, only_speed
//
// Every tag of the catalog has its four series from the start (zero until
// the first reconcile).
type DriftMetrics struct {
	values *prometheus.GaugeVec
	tags   map[string]bool // the catalog's: kept at zero when a report lacks them

	mu   sync.Mutex
	last map[string]bool // tags of the last report
}

// NewDriftMetrics registers the drift gauges on reg, with zero series for
// every tag × kind of cat (nil: none before the first reconcile).
func NewDriftMetrics(reg prometheus.Registerer, cat *schemas.Catalog) *DriftMetrics {
	m := &DriftMetrics{
		values: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "portrait_drift_values",
			Help: "Last reconcile per tag: users compared (in either view), different, only in the batch snapshot, only in the speed layer.",
		}, []string{"tag", "kind"}),
		tags: map[string]bool{},
		last: map[string]bool{},
	}
	if cat != nil {
		for _, t := range cat.Tags {
			m.tags[t.Name] = true
			for _, k := range driftKinds {
				m.values.WithLabelValues(t.Name, k)
			}
		}
	}
	return m
}

// Set publishes rep: its tags get its figures, the catalog's other tags
// zero, and tags of an earlier report that are in neither are dropped.
func (m *DriftMetrics) Set(rep *Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := make(map[string]bool, len(rep.Tags))
	for _, t := range rep.Tags {
		now[t.Tag] = true
		m.values.WithLabelValues(t.Tag, KindCompared).Set(float64(t.Compared + t.OnlyBatch + t.OnlySpeed))
		m.values.WithLabelValues(t.Tag, KindDifferent).Set(float64(t.Different))
		m.values.WithLabelValues(t.Tag, KindOnlyBatch).Set(float64(t.OnlyBatch))
		m.values.WithLabelValues(t.Tag, KindOnlySpeed).Set(float64(t.OnlySpeed))
	}
	for tag := range m.tags {
		if !now[tag] {
			for _, k := range driftKinds {
				m.values.WithLabelValues(tag, k).Set(0)
			}
		}
	}
	for tag := range m.last {
		if !now[tag] && !m.tags[tag] {
			for _, k := range driftKinds {
				m.values.DeleteLabelValues(tag, k)
			}
		}
	}
	m.last = now
}

// publish writes the report where the config asks.
func publish(ctx context.Context, cfg *ReconcileConfig, rep *Report) error {
	if cfg.Metrics != nil {
		cfg.Metrics.Set(rep)
	}
	if cfg.WriteJSON {
		path := filepath.Join(warehouse.SnapshotDir(cfg.Root, rep.Snapshot), ReconcileFile)
		if err := warehouse.WriteFileAtomic(path, func(w io.Writer) error { return rep.WriteJSON(w) }); err != nil {
			return fmt.Errorf("reconcile: writing %s: %w", path, err)
		}
	}
	if cfg.ClickHouse != nil {
		if err := InsertTagDrift(ctx, cfg.ClickHouse, cfg.Catalog, rep); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding reconcile report: %w", err)
	}
	return nil
}

// WriteTable writes the report for people: a header, one row per tag,
// then the causes.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot %s  catalog %s  speed watermark %s\n", r.SnapshotText, r.Catalog, r.SpeedWatermark)
	if r.SpeedSnapshot != "" {
		fmt.Fprintf(&b, "speed lifetime tags rest on snapshot %s\n", r.SpeedSnapshot)
	}
	fmt.Fprintf(&b, "users: batch %d, speed %d, either %d, drifting %d\n", r.BatchUsers, r.SpeedUsers, r.Users, r.Drifting)
	if r.Repaired != nil {
		fmt.Fprintf(&b, "repaired %d users (%d events from %d files); drifting before repair: %d\n",
			r.Repaired.Users, r.Repaired.Events, r.Repaired.Files, r.Before.Drifting)
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tag\tcompared\tequal\tdifferent\tonly_batch\tonly_speed\tmax_abs_err\tmean_abs_err\t")
	for _, t := range r.Tags {
		maxE, meanE := "-", "-"
		if t.Numeric {
			maxE, meanE = formatFloat(t.MaxAbsError), formatFloat(t.MeanAbsError)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", t.Tag, t.Compared, t.Equal, t.Different, t.OnlyBatch, t.OnlySpeed, maxE, meanE)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.Reset()
	for _, t := range r.Tags {
		if len(t.Sample) > 0 {
			fmt.Fprintf(&b, "  %s differs for %s\n", t.Tag, strings.Join(t.Sample, ", "))
		}
	}
	b.WriteString("\ncauses:\n")
	if len(r.Causes) == 0 {
		b.WriteString("  none\n")
	}
	for _, c := range r.Causes {
		fmt.Fprintf(&b, "  %-15s events %d, users %d, drifting users %d", c.Cause, c.Events, c.Users, c.Drifting)
		if len(c.Sample) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(c.Sample, ", "))
		}
		if c.Detail != "" {
			fmt.Fprintf(&b, "; %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

var tagDriftColumns = []string{"snapshot", "tag", "users_compared", "equal", "different", "only_batch",
	"only_speed", "max_abs_error", "mean_abs_error", "sample", "causes", "computed_at"}

// InsertTagDrift inserts one tag_drift row per tag of rep (creating the
// table when it is missing). sample is the tag's sample ids joined by
// commas, causes a JSON array of the report's causes.
func InsertTagDrift(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, rep *Report) error {
	if err := c.Exec(ctx, tagDriftDDL(cat)); err != nil {
		return fmt.Errorf("reconcile: creating %s: %w", chbatch.TagDriftTable, err)
	}
	causes, err := json.Marshal(rep.Causes)
	if err != nil {
		return fmt.Errorf("reconcile: encoding causes: %w", err)
	}
	b, err := c.PrepareBatch(ctx, chbatch.TagDriftTable, tagDriftColumns)
	if err != nil {
		return fmt.Errorf("reconcile: inserting into %s: %w", chbatch.TagDriftTable, err)
	}
	snap := time.UnixMilli(int64(rep.Snapshot)).UTC()
	at := rep.ComputedAt.UTC().Truncate(time.Second)
	for _, t := range rep.Tags {
		if err := b.Append(snap, t.Tag, t.Compared, t.Equal, t.Different, t.OnlyBatch, t.OnlySpeed,
			t.MaxAbsError, t.MeanAbsError, strings.Join(t.Sample, ","), string(causes), at); err != nil {
			_ = b.Abort()
			return fmt.Errorf("reconcile: inserting into %s: %w", chbatch.TagDriftTable, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("reconcile: inserting into %s: %w", chbatch.TagDriftTable, err)
	}
	return nil
}

// tagDriftDDL is chbatch's CREATE TABLE IF NOT EXISTS for tag_drift (it
// does not depend on the catalog).
func tagDriftDDL(cat *schemas.Catalog) string {
	prefix := "CREATE TABLE IF NOT EXISTS " + clickhouse.QuoteIdent(chbatch.TagDriftTable) + " ("
	for _, s := range chbatch.DDL(cat) {
		if strings.HasPrefix(s, prefix) {
			return s
		}
	}
	return ""
}
