package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/jobs"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

func TestLoadJobsConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, err string
	}{
		{"other sections ignored", "speed: {x: 1}\njobs:\n  recompute: {schedule: '@every 30m', retries: 1}\n", ""},
		{"bad cron names the job", "jobs:\n  reconcile: {schedule: 'every hour'}\n",
			`jobs.reconcile.schedule: bad cron spec "every hour": expected 5 to 6 fields, found 2: [every hour]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o644))
			cfg, err := loadJobsConfig(path)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "@every 30m", cfg.Job(jobs.Recompute).Schedule)
			assert.Equal(t, 1, cfg.Job(jobs.Recompute).Retries)
			assert.Equal(t, jobs.DefaultJobConfig(jobs.Compact), cfg.Job(jobs.Compact))
		})
	}
}

// TestRecomputeJobRefusesOpenHours: the recompute job names the open hour
// and writes no snapshot.
func TestRecomputeJobRefusesOpenHours(t *testing.T) {
	root := t.TempDir()
	cat, err := schemas.Load("../../schemas/catalogs/taobao.yaml")
	require.NoError(t, err)
	hour := time.Date(2017, 11, 29, 5, 0, 0, 0, time.UTC)
	dir := warehouse.HourDir(root, schemas.TimestampOf(hour))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "part-0-0-9.parquet"), []byte("x"), 0o644))

	cutoff := schemas.TimestampOf(hour.Add(24 * time.Hour))
	_, err = recomputeJob{Root: root, Catalog: cat}.run(context.Background(), jobs.RunContext{
		Cutoff: &cutoff, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
	})
	var open *jobs.OpenHoursError
	require.True(t, errors.As(err, &open), "got %v", err)
	assert.ErrorContains(t, err, "2017-11-29T05:00:00Z (no _SUCCESS)")
	snaps, err := warehouse.ListSnapshots(root)
	require.NoError(t, err)
	assert.Empty(t, snaps)

	// A cutoff off the bucket grid is a permanent error: no retries.
	bad := cutoff + 1
	_, err = recomputeJob{Root: root, Catalog: cat}.run(context.Background(), jobs.RunContext{Cutoff: &bad})
	assert.True(t, jobs.IsPermanent(err), "got %v", err)

	// Without a cutoff and without a closed hour there is no watermark yet.
	_, err = recomputeJob{Root: root, Catalog: cat}.run(context.Background(), jobs.RunContext{})
	assert.ErrorContains(t, err, "no landing watermark yet")
}
