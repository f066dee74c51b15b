package chbatch

import (
	"context"
	"fmt"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Publisher publishes snapshots computed by the local engine to the
// profiles table (it satisfies batch.Publisher).
type Publisher struct{ Client *clickhouse.Client }

// Publish creates what is missing of the schema and replaces the
// snapshot's partition with the profiles.
func (p Publisher) Publish(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, profiles []schemas.Profile) error {
	if err := EnsureSchema(ctx, p.Client, cat); err != nil {
		return err
	}
	return PublishProfiles(ctx, p.Client, cat, cutoff, profiles)
}

// Engine is the SQL engine (it satisfies batch.SQLEngine): it recomputes
// the snapshot inside ClickHouse over its events table, which publishes
// it, and reads the profiles back so that the warehouse snapshot holds the
// same values.
type Engine struct{ Client *clickhouse.Client }

// Compute runs Recompute and returns the snapshot's profiles sorted by key.
func (e Engine) Compute(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp) ([]schemas.Profile, error) {
	if err := EnsureSchema(ctx, e.Client, cat); err != nil {
		return nil, err
	}
	if err := Recompute(ctx, e.Client, cat, cutoff); err != nil {
		return nil, err
	}
	return ReadProfiles(ctx, e.Client, cat, cutoff)
}

// LoadHours replaces each given hour of the events table with the
// warehouse's files of that hour, so loading an hour again never
// duplicates rows. It returns the rows loaded.
func LoadHours(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, root string, hours []schemas.Timestamp) (int64, error) {
	if err := EnsureSchema(ctx, c, cat); err != nil {
		return 0, err
	}
	var rows int64
	for _, h := range hours {
		files, err := warehouse.HourFiles(root, h)
		if err != nil {
			return rows, err
		}
		events, err := warehouse.ReadEventRows(ctx, cat, files)
		if err != nil {
			return rows, fmt.Errorf("loading hour %s into ClickHouse: %w", h, err)
		}
		if err := LoadEvents(ctx, c, cat, h, events); err != nil {
			return rows, err
		}
		rows += int64(len(events))
	}
	return rows, nil
}
