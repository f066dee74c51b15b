package jobs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunLog(t *testing.T) {
	root := t.TempDir()
	log := NewRunLog(root)
	ctx := context.Background()
	day2 := t0.Add(24*time.Hour + time.Hour)
	runs := []Run{
		{Job: Recompute, RunID: "a", Attempt: 1, Started: t0, Ended: t0.Add(time.Second), Status: StatusFailed, Error: "boom"},
		{Job: Recompute, RunID: "a", Attempt: 2, Started: t0.Add(time.Minute), Ended: t0.Add(2 * time.Minute), Status: StatusOK, Rows: 10},
		{Job: Compact, RunID: "b", Attempt: 1, Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour), Status: StatusSkipped, Error: "locked"},
		{Job: Recompute, RunID: "c", Attempt: 1, Started: day2, Ended: day2.Add(time.Second), Status: StatusFailed, Error: "x"},
	}
	for _, r := range runs {
		require.NoError(t, log.Record(ctx, r))
	}

	// One JSON object per line in the day's file.
	data, err := os.ReadFile(filepath.Join(root, "_jobs", "runs-2026-01-01.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Len(t, lines, 3)
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "recompute", first["job"])
	assert.Equal(t, "failed", first["status"])
	assert.Equal(t, "2026-01-01T00:00:00Z", first["started"])
	assert.FileExists(t, filepath.Join(root, "_jobs", "runs-2026-01-02.jsonl"))

	ids := func(rs []Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.RunID+"/"+string(r.Status))
		}
		return out
	}
	tests := []struct {
		job   string
		limit int
		want  []string
	}{
		{"", 0, []string{"c/failed", "b/skipped", "a/ok", "a/failed"}},
		{Recompute, 0, []string{"c/failed", "a/ok", "a/failed"}},
		{Recompute, 2, []string{"c/failed", "a/ok"}},
		{Compact, 5, []string{"b/skipped"}},
		{Retention, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.job+"/"+strings.Repeat("n", tt.limit), func(t *testing.T) {
			got, err := log.History(tt.job, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, ids(got))
		})
	}

	last, ok, err := log.Last(Recompute, StatusOK)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(10), last.Rows)
	_, ok, err = log.Last(Retention)
	require.NoError(t, err)
	assert.False(t, ok)

	t.Run("torn last line is skipped", func(t *testing.T) {
		path := filepath.Join(root, "_jobs", "runs-2026-01-02.jsonl")
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteString(`{"job":"recompute","run_id":"torn`)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		got, err := log.History(Recompute, 1)
		require.NoError(t, err)
		assert.Equal(t, []string{"c/failed"}, ids(got))
	})

	t.Run("bad line names file and line", func(t *testing.T) {
		path := filepath.Join(root, "_jobs", "runs-2026-01-03.jsonl")
		require.NoError(t, os.WriteFile(path, []byte("{\"job\":\"x\"}\nnot json\n"), 0o644))
		_, err := log.History("", 0)
		require.ErrorContains(t, err, "runs-2026-01-03.jsonl:2:")
	})
}

func TestRunLogMissingFolder(t *testing.T) {
	got, err := NewRunLog(filepath.Join(t.TempDir(), "nowhere")).History("", 0)
	require.NoError(t, err)
	assert.Empty(t, got)
}
