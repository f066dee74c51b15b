package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/config"
	"github.com/portrait-dev/portrait/jobs"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/serving/ui"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

// publishTables are the ClickHouse tables the run process loads; their
// publish metrics exist from the start with these labels.
var publishTables = []string{"profiles", "tag_drift", "job_runs"}

// publishMetrics are the batch publishing metrics the run process
// exports (dashboards/metrics.txt, component batch).
type publishMetrics struct {
	rows     *prometheus.CounterVec
	failures *prometheus.CounterVec
	cutoff   prometheus.Gauge
}

func newPublishMetrics(reg prometheus.Registerer) *publishMetrics {
	f := promauto.With(reg)
	m := &publishMetrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_rows_published_total",
			Help: "Rows loaded into ClickHouse, by table.",
		}, []string{"table"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_publish_failures_total",
			Help: "Failed ClickHouse loads, by table.",
		}, []string{"table"}),
		cutoff: f.NewGauge(prometheus.GaugeOpts{
			Name: "portrait_snapshot_cutoff_timestamp_seconds",
			Help: "Cutoff (unix seconds) of the newest snapshot with _SUCCESS; 0 before the first.",
		}),
	}
	for _, t := range publishTables {
		m.rows.WithLabelValues(t)
		m.failures.WithLabelValues(t)
	}
	return m
}

// refreshCutoff sets the cutoff gauge from the warehouse.
func (m *publishMetrics) refreshCutoff(root string) {
	if c, err := batch.LatestSnapshot(root); err == nil {
		m.cutoff.Set(float64(c) / 1000)
	}
}

// countingPublisher counts what a batch.Publisher loads into profiles.
type countingPublisher struct {
	inner batch.Publisher
	m     *publishMetrics
}

func (p countingPublisher) Publish(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, profiles []schemas.Profile) error {
	if err := p.inner.Publish(ctx, cat, cutoff, profiles); err != nil {
		p.m.failures.WithLabelValues("profiles").Inc()
		return err
	}
	p.m.rows.WithLabelValues("profiles").Add(float64(len(profiles)))
	return nil
}

// countingRecorder counts the run records written to ClickHouse job_runs.
type countingRecorder struct {
	inner jobs.Recorder
	m     *publishMetrics
}

func (r countingRecorder) Record(ctx context.Context, run jobs.Run) error {
	if err := r.inner.Record(ctx, run); err != nil {
		r.m.failures.WithLabelValues("job_runs").Inc()
		return err
	}
	r.m.rows.WithLabelValues("job_runs").Inc()
	return nil
}

// runJobs builds the scheduled jobs of portrait run.
type runJobs struct {
	cfg    config.Config
	cat    *schemas.Catalog
	speed  *stream.Speed
	lander *landing.Lander
	ch     *clickhouse.Client // nil without ClickHouse
	pm     *publishMetrics
	drift  *serving.DriftMetrics
	status *statusSource // the drift figures go to the status page
	log    *slog.Logger

	// sched is set once the scheduler is built; recompute triggers
	// reconcile through it.
	sched *jobs.Scheduler
}

func (rj *runJobs) jobs() []jobs.Job {
	root := rj.cfg.Warehouse
	rc := recomputeJob{Root: root, Catalog: rj.cat, Watermark: rj.lander.Watermark}
	if rj.ch != nil {
		rc.Publisher = countingPublisher{inner: chbatch.Publisher{Client: rj.ch}, m: rj.pm}
	}
	recompute := rc.Job()
	inner := recompute.Run
	recompute.Run = func(ctx context.Context, r jobs.RunContext) (jobs.RunResult, error) {
		res, err := inner(ctx, r)
		rj.pm.refreshCutoff(root)
		if err == nil && rj.sched != nil {
			// Reconcile every new snapshot, as its own recorded run, before
			// this run ends (so a stop cancels both).
			if _, rerr := rj.sched.RunNow(ctx, jobs.Reconcile, jobs.RunOptions{}); rerr != nil {
				rj.log.Warn("reconcile after recompute", "err", rerr)
			}
		}
		return res, err
	}
	return []jobs.Job{
		recompute,
		{Name: jobs.Reconcile, Run: rj.reconcile},
		{Name: jobs.LoadEvents, Run: rj.loadEvents},
		compactJob(root, rj.cat),
		{Name: jobs.Retention, Run: rj.retention},
	}
}

// loadEvents makes ClickHouse events match the warehouse: every hour
// whose row count differs is (re)loaded.
func (rj *runJobs) loadEvents(ctx context.Context, _ jobs.RunContext) (jobs.RunResult, error) {
	if rj.ch == nil {
		return jobs.RunResult{Detail: "no ClickHouse configured: nothing to load"}, nil
	}
	hours, rows, err := chbatch.SyncHours(ctx, rj.ch, rj.cat, rj.cfg.Warehouse)
	if err != nil {
		return jobs.RunResult{}, err
	}
	return jobs.RunResult{Rows: rows, Detail: fmt.Sprintf("%d hours loaded", len(hours))}, nil
}

// retention drops what lies retention.keep behind the landing watermark
// (event time, so that a replay of old events is not deleted on arrival).
func (rj *runJobs) retention(_ context.Context, _ jobs.RunContext) (jobs.RunResult, error) {
	wm, ok := rj.lander.Watermark()
	if !ok {
		return jobs.RunResult{Detail: "no landing watermark yet: nothing to drop"}, nil
	}
	st, err := warehouse.Retention(rj.cfg.Warehouse, rj.cfg.RetentionKeep(), wm.Time(), false)
	if err != nil {
		return jobs.RunResult{}, err
	}
	rj.pm.refreshCutoff(rj.cfg.Warehouse)
	return jobs.RunResult{Rows: int64(st.Files),
		Detail: fmt.Sprintf("%d hours and %d snapshots removed (%d bytes)", len(st.Hours), len(st.Snapshots), st.Bytes)}, nil
}

// reconcile compares the newest snapshot (or the one asked for) with the
// speed layer's values as of its cutoff, writes the report beside the
// snapshot and into ClickHouse tag_drift, sets the drift gauges and
// shows the figures on the status page. It does not repair: that is
// "portrait reconcile --repair", by hand.
func (rj *runJobs) reconcile(ctx context.Context, r jobs.RunContext) (jobs.RunResult, error) {
	rc := serving.ReconcileConfig{
		Catalog: rj.cat, Root: rj.cfg.Warehouse, Speed: rj.speed, ClickHouse: rj.ch,
		Metrics: rj.drift, WriteJSON: true, Logger: r.Logger, Now: r.Now,
	}
	if r.Cutoff != nil {
		rc.Snapshot = *r.Cutoff
	}
	if cs, ok := any(rj.speed).(serving.CauseSource); ok {
		rc.Causes = cs
	}
	rep, err := serving.Reconcile(ctx, rc)
	if err != nil {
		if rep != nil && rj.ch != nil {
			rj.pm.failures.WithLabelValues("tag_drift").Inc()
		}
		if errors.Is(err, batch.ErrNoSnapshot) {
			return jobs.RunResult{}, jobs.Permanent(err)
		}
		return jobs.RunResult{}, err
	}
	if rj.ch != nil {
		rj.pm.rows.WithLabelValues("tag_drift").Add(float64(len(rep.Tags)))
	}
	if rj.status != nil {
		rj.status.setDrift(driftFigures(rep))
	}
	// Rebase only after reconciling: once rebased on a snapshot, the
	// lifetime tags as of its cutoff equal the batch by construction.
	if _, _, err := rj.speed.Rebase(ctx, rj.cfg.Warehouse); err != nil {
		rj.log.Warn("rebasing lifetime tags on the new snapshot", "err", err)
	}
	return jobs.RunResult{Rows: int64(rep.Users),
		Detail: fmt.Sprintf("snapshot %s: %d users, %d drifting", rep.SnapshotText, rep.Users, rep.Drifting)}, nil
}

// driftFigures are a reconcile report's per-tag figures for the status
// page: users in either view, and those that differ or are in one only.
func driftFigures(rep *serving.Report) []ui.TagDrift {
	d := make([]ui.TagDrift, len(rep.Tags))
	for i, t := range rep.Tags {
		d[i] = ui.TagDrift{Tag: t.Tag, Compared: t.Compared + t.OnlyBatch + t.OnlySpeed, Different: t.Different + t.OnlyBatch + t.OnlySpeed}
	}
	return d
}

// loadDrift shows the report written beside the newest snapshot, so a
// restart does not blank the drift figures until the next reconcile.
func (s *statusSource) loadDrift() {
	cutoff, err := batch.LatestSnapshot(s.cfg.Warehouse)
	if err != nil {
		return
	}
	data, err := os.ReadFile(filepath.Join(warehouse.SnapshotDir(s.cfg.Warehouse, cutoff), serving.ReconcileFile))
	if err != nil {
		return
	}
	var rep serving.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return
	}
	s.setDrift(driftFigures(&rep))
}

// statusSource builds /ui/status.json from the run process' components.
type statusSource struct {
	cfg    config.Config
	speed  *stream.Speed
	lander *landing.Lander
	runs   *jobs.RunLog
	reg    prometheus.Gatherer
	now    func() time.Time

	mu      sync.Mutex
	samples []counterSample // oldest first, at most sampleKeep
	drift   []ui.TagDrift
}

// counterSample is one reading of the throughput counters.
type counterSample struct {
	at                              time.Time
	consumed, applied, landed, dlqd float64
}

const sampleKeep = 10

// sample reads the counters; run calls it every second.
func (s *statusSource) sample() {
	mfs, err := s.reg.Gather()
	if err != nil {
		return
	}
	sum := func(name string) float64 {
		var v float64
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				v += metricValue(m)
			}
		}
		return v
	}
	c := counterSample{at: s.now(),
		consumed: sum("portrait_speed_events_consumed_total"),
		applied:  sum("portrait_speed_events_applied_total"),
		landed:   sum("portrait_landing_rows_total"),
		dlqd:     sum("portrait_speed_events_dlq_total"),
	}
	s.mu.Lock()
	s.samples = append(s.samples, c)
	if len(s.samples) > sampleKeep {
		s.samples = s.samples[len(s.samples)-sampleKeep:]
	}
	s.mu.Unlock()
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func (s *statusSource) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *statusSource) throughput() ui.Throughput {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 2 {
		return ui.Throughput{}
	}
	a, b := s.samples[0], s.samples[len(s.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return ui.Throughput{}
	}
	return ui.Throughput{
		Consumed: (b.consumed - a.consumed) / dt,
		Applied:  (b.applied - a.applied) / dt,
		Landed:   (b.landed - a.landed) / dt,
		DLQ:      (b.dlqd - a.dlqd) / dt,
	}
}

// setDrift keeps the last reconcile's per-tag figures.
func (s *statusSource) setDrift(d []ui.TagDrift) {
	s.mu.Lock()
	s.drift = d
	s.mu.Unlock()
}

// Status implements ui.StatusSource.
func (s *statusSource) Status(*http.Request) (ui.Status, error) {
	now := s.now().UTC()
	st := ui.Status{
		Now:                    now,
		Throughput:             s.throughput(),
		FreshnessTargetSeconds: s.cfg.Status.FreshnessTarget.Seconds(),
	}
	if wm := s.speed.Watermark(); wm != 0 {
		st.SpeedWatermark = wm.Time().UTC()
	}
	lwm, lok := s.lander.Watermark()
	if lok {
		st.LandingWatermark = lwm.Time().UTC()
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		return st, fmt.Errorf("gathering metrics: %w", err)
	}
	var lagTotal int64
	for _, mf := range mfs {
		if mf.GetName() != "portrait_speed_consumer_lag_records" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var p int32
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					_, _ = fmt.Sscan(l.GetValue(), &p)
				}
			}
			n := int64(metricValue(m))
			lagTotal += n
			st.Lag = append(st.Lag, ui.PartitionLag{Group: s.cfg.Speed.Group, Partition: p, Records: n})
		}
	}
	if cutoff, err := batch.LatestSnapshot(s.cfg.Warehouse); err == nil {
		snap := &ui.Snapshot{Cutoff: cutoff.Time().UTC()}
		if info, err := batch.ReadSnapshotInfo(s.cfg.Warehouse, cutoff); err == nil {
			snap.Users = info.Rows
		}
		st.Snapshot = snap
	} else if !errors.Is(err, batch.ErrNoSnapshot) {
		return st, fmt.Errorf("reading newest snapshot: %w", err)
	}
	for _, name := range s.cfg.Jobs.Names() {
		r, ok, err := s.runs.Last(name)
		if err != nil {
			return st, fmt.Errorf("reading job runs: %w", err)
		}
		if ok {
			st.Jobs = append(st.Jobs, ui.JobRun{Job: r.Job, Status: string(r.Status), Started: r.Started, Ended: r.Ended, Rows: r.Rows, Error: r.Error})
		}
	}
	s.mu.Lock()
	st.Drift = append([]ui.TagDrift(nil), s.drift...)
	s.mu.Unlock()
	st.Firing = s.conditions(st, lagTotal, lwm, lok)
	return st, nil
}

func condition(name, severity, summary string) ui.Condition {
	return ui.Condition{Name: name, Severity: severity, Summary: summary, Runbook: "docs/runbooks.md#" + strings.ToLower(name)}
}

// conditions are the firing conditions, named like the alerts of
// dashboards/alerts.rules.yml, from the thresholds of the status section.
func (s *statusSource) conditions(st ui.Status, lag int64, lwm schemas.Timestamp, lok bool) []ui.Condition {
	th := s.cfg.Status
	var out []ui.Condition
	if lag > th.MaxLagRecords {
		out = append(out, condition("PortraitConsumerLagHigh", "warning",
			fmt.Sprintf("speed layer is %d records behind (threshold %d)", lag, th.MaxLagRecords)))
	}
	if lag > 0 && !st.SpeedWatermark.IsZero() {
		if behind := st.Now.Sub(st.SpeedWatermark); behind > th.FreshnessTarget {
			out = append(out, condition("PortraitFreshnessTargetMissed", "critical",
				fmt.Sprintf("records are waiting and the speed watermark is %s behind the clock (target %s)", behind.Round(time.Second), th.FreshnessTarget)))
		}
	}
	if st.Throughput.Consumed > 0 && st.Throughput.DLQ > 0.05*st.Throughput.Consumed {
		out = append(out, condition("PortraitDLQRateSpike", "warning",
			fmt.Sprintf("%.1f records/s dead-lettered of %.1f/s consumed", st.Throughput.DLQ, st.Throughput.Consumed)))
	}
	if lok {
		from, what := schemas.Timestamp(math.MinInt64), "newest snapshot"
		if st.Snapshot != nil {
			from = schemas.TimestampOf(st.Snapshot.Cutoff)
		} else if hours, err := warehouse.ListHours(s.cfg.Warehouse, math.MinInt64, math.MaxInt64); err == nil && len(hours) > 0 {
			from, what = hours[0].Start, "oldest landed hour (no snapshot yet)"
		}
		if from != math.MinInt64 {
			if behind := lwm.Time().Sub(from.Time()); behind > th.SnapshotMaxAge {
				out = append(out, condition("PortraitSnapshotTooOld", "critical",
					fmt.Sprintf("the %s is %s behind the landing watermark (threshold %s)", what, behind.Round(time.Second), th.SnapshotMaxAge)))
			}
		}
	}
	for _, j := range st.Jobs {
		if j.Status != string(jobs.StatusFailed) {
			continue
		}
		switch j.Job {
		case jobs.Recompute:
			out = append(out, condition("PortraitRecomputeFailed", "critical", "the last recompute failed: "+j.Error))
		case jobs.LoadEvents:
			out = append(out, condition("PortraitEventsLoadFailing", "warning", "the last load-events run failed: "+j.Error))
		}
	}
	for _, d := range st.Drift {
		if d.Compared > 0 && float64(d.Different)/float64(d.Compared) > th.MaxDriftShare {
			out = append(out, condition("PortraitDriftHigh", "warning",
				fmt.Sprintf("tag %s: %d of %d users differ between batch and speed", d.Tag, d.Different, d.Compared)))
		}
	}
	return out
}
