package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestMetricsBeforeFirstRun checks that a new scheduler serves every
// registered job's series before any run: zero counts for each status,
// an empty duration histogram, and the last success from the run log.
func TestMetricsBeforeFirstRun(t *testing.T) {
	ended := time.Date(2017, 11, 26, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name        string
		history     []Run
		wantSuccess map[string]float64
	}{
		{name: "empty run log", wantSuccess: map[string]float64{Recompute: 0, Reconcile: 0}},
		{
			name: "earlier runs",
			history: []Run{
				{Job: Recompute, RunID: "a", Attempt: 1, Started: ended.Add(-time.Hour), Ended: ended.Add(-time.Hour + time.Minute), Status: StatusOK},
				{Job: Recompute, RunID: "b", Attempt: 1, Started: ended.Add(-time.Minute), Ended: ended, Status: StatusOK},
				{Job: Recompute, RunID: "c", Attempt: 1, Started: ended.Add(time.Minute), Ended: ended.Add(2 * time.Minute), Status: StatusFailed},
				{Job: Reconcile, RunID: "d", Attempt: 1, Started: ended, Ended: ended.Add(time.Second), Status: StatusSkipped},
			},
			wantSuccess: map[string]float64{Recompute: float64(ended.Unix()), Reconcile: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, r := range tt.history {
				require.NoError(t, NewRunLog(root).Record(context.Background(), r))
			}
			reg := prometheus.NewRegistry()
			noop := func(context.Context, RunContext) (RunResult, error) { return RunResult{}, nil }
			s, err := New(Options{
				Root:       root,
				Jobs:       []Job{{Name: Recompute, Run: noop}, {Name: Reconcile, Run: noop}},
				Registerer: reg,
				Logger:     slog.New(slog.DiscardHandler),
			})
			require.NoError(t, err)

			// 2 jobs × 3 statuses, 2 histograms, 2 gauges.
			mfs, err := reg.Gather()
			require.NoError(t, err)
			series := map[string]int{}
			for _, mf := range mfs {
				series[mf.GetName()] = len(mf.GetMetric())
			}
			require.Equal(t, map[string]int{
				"portrait_job_runs_total":                     2 * 3,
				"portrait_job_duration_seconds":               2,
				"portrait_job_last_success_timestamp_seconds": 2,
			}, series)
			for _, job := range []string{Recompute, Reconcile} {
				for _, st := range []Status{StatusOK, StatusFailed, StatusSkipped} {
					require.Zero(t, metricValue(t, s.metrics.runs.WithLabelValues(job, string(st))), "%s %s", job, st)
				}
				require.Equal(t, tt.wantSuccess[job], metricValue(t, s.metrics.lastSuccess.WithLabelValues(job)), job)
			}
		})
	}
}
