package jobs

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/schemas"
)

// TestClickHouseRecorder records runs through the scheduler into a real
// job_runs table created by chbatch's DDL, and reads them back.
func TestClickHouseRecorder(t *testing.T) {
	ch := chtest.Open(t)
	ctx := context.Background()
	cat, err := schemas.Load("../schemas/catalogs/taobao.yaml")
	require.NoError(t, err)
	for _, stmt := range chbatch.DDL(cat) {
		if strings.Contains(stmt, "`"+chbatch.JobRunsTable+"`") {
			require.NoError(t, ch.Exec(ctx, stmt))
		}
	}

	clock := newFakeClock(t0.Add(1500 * time.Millisecond))
	clock.auto = true
	calls := 0
	root := t.TempDir()
	s, err := New(Options{
		Root:   root,
		Config: Config{Jobs: map[string]JobConfig{Recompute: {Retries: 1, Backoff: time.Minute}}},
		Jobs: []Job{{Name: Recompute, Run: func(context.Context, RunContext) (RunResult, error) {
			calls++
			clock.Advance(2 * time.Second)
			if calls == 1 {
				return RunResult{}, assert.AnError
			}
			return RunResult{Rows: 99}, nil
		}}},
		Recorders: []Recorder{ClickHouseRecorder{Client: ch}},
		Clock:     clock,
		Logger:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	last, err := s.RunNow(ctx, Recompute, RunOptions{})
	require.NoError(t, err)

	rows, err := ch.Conn().Query(ctx, "SELECT job, run_id, attempt, started, ended, status, rows, error FROM job_runs ORDER BY attempt")
	require.NoError(t, err)
	defer rows.Close()
	type row struct {
		Job, RunID     string
		Attempt        int64
		Started, Ended time.Time
		Status         string
		Rows           int64
		Error          string
	}
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.Job, &r.RunID, &r.Attempt, &r.Started, &r.Ended, &r.Status, &r.Rows, &r.Error))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	start1 := t0.Add(time.Second) // 1.5s truncated to whole seconds
	want := []row{
		{Recompute, last.RunID, 1, start1, t0.Add(3 * time.Second), "failed", 0, assert.AnError.Error()},
		{Recompute, last.RunID, 2, t0.Add(63 * time.Second), t0.Add(65 * time.Second), "ok", 99, ""},
	}
	require.Len(t, got, len(want))
	for i := range want {
		got[i].Started, got[i].Ended = got[i].Started.UTC(), got[i].Ended.UTC()
		assert.Equal(t, want[i], got[i], "attempt %d", i+1)
	}

	// The warehouse log holds the same attempts.
	hist, err := s.History(Recompute, 0)
	require.NoError(t, err)
	assert.Len(t, hist, 2)
}
