package main

import (
	"context"
	"fmt"

	"github.com/portrait-dev/portrait/internal/clickhouse"
)

// openClickHouse connects to the ClickHouse DSN given by --clickhouse.
func openClickHouse(ctx context.Context, dsn string) (*clickhouse.Client, error) {
	cfg, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse: %w", err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to ClickHouse at %s (start the local one with deploy/local/clickhouse.sh start): %w", cfg, err)
	}
	return c, nil
}
