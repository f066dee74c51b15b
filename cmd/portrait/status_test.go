package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/config"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving/ui"
)

var t0 = time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)

// sampleStatus is a degraded reading with every section filled.
func sampleStatus() ui.Status {
	return ui.Status{
		Now:                    t0,
		Throughput:             ui.Throughput{Consumed: 1200, Applied: 1190, Landed: 1180, DLQ: 10},
		Lag:                    []ui.PartitionLag{{Group: "portrait-speed", Partition: 0, Records: 5}, {Group: "portrait-speed", Partition: 1, Records: 7}},
		SpeedWatermark:         t0.Add(-3 * time.Second),
		LandingWatermark:       t0.Add(-time.Minute),
		FreshnessSeconds:       3,
		FreshnessTargetSeconds: 60,
		Snapshot:               &ui.Snapshot{Cutoff: t0.Add(-time.Hour), Users: 58732, AgeSeconds: 3600},
		Drift:                  []ui.TagDrift{{Tag: "pv_24h", Compared: 100, Different: 2, Share: 0.02}},
		Jobs: []ui.JobRun{{Job: "recompute", Status: "ok", Started: t0.Add(-50 * time.Minute), Ended: t0.Add(-49 * time.Minute), Rows: 58732},
			{Job: "load-events", Status: "failed", Started: t0.Add(-10 * time.Minute), Ended: t0.Add(-10 * time.Minute), Error: "connection refused"}},
		Firing: []ui.Condition{{Name: "PortraitDriftHigh", Severity: "warning", Summary: "tag pv_24h: 2 of 100 users differ", Runbook: "docs/runbooks.md#portraitdrifthigh"}},
	}
}

func TestPrintStatusGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, printStatus(&b, sampleStatus()))
	golden := filepath.Join("testdata", "status.golden")
	if *updateGolden {
		require.NoError(t, os.WriteFile(golden, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
}

func TestRunStatusExitCodes(t *testing.T) {
	healthy := sampleStatus()
	healthy.Firing = nil
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   int
	}{
		{"healthy", func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(healthy) }, statusHealthy},
		{"degraded", func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(sampleStatus()) }, statusDegraded},
		{"error", func(w http.ResponseWriter) { http.Error(w, `{"error":"x"}`, http.StatusServiceUnavailable) }, statusUnreachable},
		{"not json", func(w http.ResponseWriter) { _, _ = w.Write([]byte("<html>")) }, statusUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/ui/status.json" || r.Header.Get("Authorization") != "Bearer tok" {
					http.NotFound(w, r)
					return
				}
				tc.answer(w)
			}))
			defer srv.Close()
			var out, errOut bytes.Buffer
			require.Equal(t, tc.want, runStatus(context.Background(), &out, &errOut, srv.URL, "tok", time.Second), errOut.String())
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.Listener.Addr().String()
		srv.Close()
		var out, errOut bytes.Buffer
		require.Equal(t, statusUnreachable, runStatus(context.Background(), &out, &errOut, addr, "", time.Second))
		require.Contains(t, errOut.String(), "unreachable")
	})
}

func TestStatusConditions(t *testing.T) {
	s := &statusSource{cfg: config.Default()}
	base := func() ui.Status {
		st := sampleStatus()
		st.Drift, st.Jobs, st.Firing, st.Throughput.DLQ = nil, nil, nil, 0
		return st
	}
	for _, tc := range []struct {
		name string
		edit func(*ui.Status)
		lag  int64
		want []string
	}{
		{"healthy", func(*ui.Status) {}, 12, nil},
		{"lag", func(*ui.Status) {}, 200_000, []string{"PortraitConsumerLagHigh"}},
		{"stale while behind", func(st *ui.Status) { st.SpeedWatermark = t0.Add(-10 * time.Minute) }, 12, []string{"PortraitFreshnessTargetMissed"}},
		{"old events caught up", func(st *ui.Status) { st.SpeedWatermark = t0.Add(-1000 * time.Hour) }, 0, nil},
		{"dlq", func(st *ui.Status) { st.Throughput.DLQ = 100 }, 0, []string{"PortraitDLQRateSpike"}},
		{"snapshot old", func(st *ui.Status) { st.Snapshot.Cutoff = t0.Add(-5 * time.Hour) }, 0, []string{"PortraitSnapshotTooOld"}},
		{"recompute failed", func(st *ui.Status) { st.Jobs = []ui.JobRun{{Job: "recompute", Status: "failed", Error: "boom"}} }, 0, []string{"PortraitRecomputeFailed"}},
		{"load failed", func(st *ui.Status) { st.Jobs = []ui.JobRun{{Job: "load-events", Status: "failed"}} }, 0, []string{"PortraitEventsLoadFailing"}},
		{"drift", func(st *ui.Status) { st.Drift = []ui.TagDrift{{Tag: "a", Compared: 100, Different: 2}} }, 0, []string{"PortraitDriftHigh"}},
		{"drift under threshold", func(st *ui.Status) { st.Drift = []ui.TagDrift{{Tag: "a", Compared: 1000, Different: 2}} }, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base()
			tc.edit(&st)
			var names []string
			for _, c := range s.conditions(st, tc.lag, timestampOf(st.LandingWatermark), true) {
				names = append(names, c.Name)
				require.Equal(t, "docs/runbooks.md#"+lower(c.Name), c.Runbook)
			}
			require.Equal(t, tc.want, names)
		})
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

func timestampOf(t time.Time) schemas.Timestamp { return schemas.TimestampOf(t) }

func lower(s string) string { return strings.ToLower(s) }
