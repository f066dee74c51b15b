package chbatch

import (
	"context"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// Engine is the ClickHouse SQL executor as a batch.SQLEngine: Compute
// makes sure the schema exists, recomputes the snapshot inside ClickHouse
// (which also publishes it to profiles) and reads it back.
type Engine struct {
	Client *clickhouse.Client
}

// Compute recomputes the snapshot as of cutoff in ClickHouse and returns
// its profiles sorted by key.
func (e Engine) Compute(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp) ([]schemas.Profile, error) {
	if err := EnsureSchema(ctx, e.Client, cat); err != nil {
		return nil, err
	}
	if err := Recompute(ctx, e.Client, cat, cutoff); err != nil {
		return nil, err
	}
	return ReadProfiles(ctx, e.Client, cat, cutoff)
}

// Publisher publishes snapshots computed elsewhere to ClickHouse profiles,
// as a batch.Publisher.
type Publisher struct {
	Client *clickhouse.Client
}

// Publish makes sure the schema exists and replaces the snapshot's
// partition of profiles with the profiles (PublishProfiles).
func (p Publisher) Publish(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, profiles []schemas.Profile) error {
	if err := EnsureSchema(ctx, p.Client, cat); err != nil {
		return err
	}
	return PublishProfiles(ctx, p.Client, cat, cutoff, profiles)
}
