package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/internal/clickhouse"
)

// JobRunsTable is the ClickHouse table of run records; batch/chbatch
// creates it (chbatch.EnsureSchema).
const JobRunsTable = "job_runs"

var jobRunsColumns = []string{"job", "run_id", "attempt", "started", "ended", "status", "rows", "error"}

// ClickHouseRecorder inserts run records into ClickHouse job_runs, one
// batch insert naming its columns per record. started and ended are
// DateTime (whole seconds, UTC); the table is a ReplacingMergeTree keyed
// by (job, run_id, attempt).
type ClickHouseRecorder struct {
	Client *clickhouse.Client
	// Table defaults to JobRunsTable.
	Table string
}

// Record inserts r.
func (c ClickHouseRecorder) Record(ctx context.Context, r Run) error {
	table := c.Table
	if table == "" {
		table = JobRunsTable
	}
	b, err := c.Client.PrepareBatch(ctx, table, jobRunsColumns)
	if err != nil {
		return fmt.Errorf("recording run of %s in ClickHouse %s: %w", r.Job, table, err)
	}
	if err := b.Append(r.Job, r.RunID, int64(r.Attempt), chTime(r.Started), chTime(r.Ended),
		string(r.Status), r.Rows, r.Error); err != nil {
		_ = b.Abort()
		return fmt.Errorf("recording run of %s in ClickHouse %s: %w", r.Job, table, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("recording run of %s in ClickHouse %s: %w", r.Job, table, err)
	}
	return nil
}

// chTime is t in UTC, whole seconds (DateTime); zero times become the epoch.
func chTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC().Truncate(time.Second)
}
