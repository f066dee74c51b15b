package chbatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// insertChunk is the number of rows sent in one INSERT block: large enough
// for large parts and full columnar appends, small enough to bound memory.
const insertChunk = 1 << 20

// PublishProfiles writes a snapshot computed elsewhere (the local batch
// engine) to profiles: the rows go to a fresh staging table in columnar
// batches, then replace the snapshot's partition atomically. Publishing the
// same snapshot again leaves the same rows; an empty slice empties the
// snapshot. Values must have the Go types of their tags (int64, float64,
// string, bool, schemas.Timestamp; nil only for tags that can be empty).
// The schema must exist (EnsureSchema).
func PublishProfiles(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, cutoff schemas.Timestamp, profiles []schemas.Profile) error {
	sec, err := snapshotSeconds(cutoff)
	if err != nil {
		return fmt.Errorf("publishing %s: %w", cat.Name, err)
	}
	names := []string{ColSnapshot, cat.KeyField().Name}
	for i := range cat.Tags {
		names = append(names, cat.Tags[i].Name)
	}
	names = append(names, ColCatalogHash)
	snap := time.Unix(sec, 0).UTC()
	stage := stagingName(ProfilesTable, "publish", cutoff)
	return withStaging(ctx, c, ProfilesTable, stage, []int64{sec}, func() error {
		return parallelChunks(ctx, len(profiles), func(ctx context.Context, start, end int) error {
			cols, err := profileColumns(cat, profiles[start:end], start, snap)
			if err != nil {
				return fmt.Errorf("publishing snapshot %s of %s: %w", cutoff, cat.Name, err)
			}
			if err := insertColumns(ctx, c, stage, names, cols); err != nil {
				return fmt.Errorf("publishing snapshot %s of %s: %w", cutoff, cat.Name, err)
			}
			return nil
		})
	})
}

// insertParallelism is how many INSERT blocks are sent at once: the server
// parses and sorts each block on one thread, so two blocks in flight keep
// both cores of a small server busy (measured by BenchmarkPublish).
const insertParallelism = 2

// parallelChunks splits [0, n) into chunks of at most insertChunk rows, at
// least insertParallelism of them when n allows, and runs fn on them with
// insertParallelism goroutines. It returns the first error and cancels the
// other chunks' context.
func parallelChunks(ctx context.Context, n int, fn func(ctx context.Context, start, end int) error) error {
	size := min(insertChunk, max(minParallelChunk, (n+insertParallelism-1)/insertParallelism))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for range insertParallelism {
		wg.Go(func() {
			for {
				mu.Lock()
				start := next
				next += size
				stop := first != nil
				mu.Unlock()
				if stop || start >= n {
					return
				}
				if err := fn(ctx, start, min(start+size, n)); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// minParallelChunk keeps small writes in one block.
const minParallelChunk = 50_000

// profileColumns turns profiles into insert columns in the order snapshot,
// key, tags, catalog_hash. first is the index of ps[0], for errors.
func profileColumns(cat *schemas.Catalog, ps []schemas.Profile, first int, snap time.Time) ([]any, error) {
	n := len(ps)
	key := cat.KeyField()
	keys := newColumn(key.Type, false, n)
	tags := make([]column, len(cat.Tags))
	for i := range cat.Tags {
		tags[i] = newColumn(cat.Tags[i].Type, cat.Tags[i].Nullable, n)
	}
	for i := range ps {
		p := &ps[i]
		if err := keys.add(p.Key); err != nil {
			return nil, fmt.Errorf("profile %d key %v: %w", first+i, p.Key, err)
		}
		if len(p.Values) != len(cat.Tags) {
			return nil, fmt.Errorf("profile %d key %v: %d values, catalog has %d tags", first+i, p.Key, len(p.Values), len(cat.Tags))
		}
		for j, v := range p.Values {
			if err := tags[j].add(v); err != nil {
				return nil, fmt.Errorf("profile %d key %v tag %s: %w", first+i, p.Key, cat.Tags[j].Name, err)
			}
		}
	}
	snaps := make([]time.Time, n)
	hashes := make([]string, n)
	for i := range snaps {
		snaps[i] = snap
		hashes[i] = cat.Hash
	}
	cols := []any{snaps, keys.slice()}
	for _, t := range tags {
		cols = append(cols, t.slice())
	}
	return append(cols, hashes), nil
}

// insertColumns sends one INSERT block with the columns given in names'
// order. 18.16 needs the column list in a native batch insert.
func insertColumns(ctx context.Context, c *clickhouse.Client, table string, names []string, cols []any) error {
	batch, err := c.PrepareBatch(ctx, table, names)
	if err != nil {
		return fmt.Errorf("preparing insert into %s: %w", table, err)
	}
	sent := false
	defer func() {
		if !sent {
			_ = batch.Abort()
		}
	}()
	for i, col := range cols {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("inserting column %s into %s: %w", names[i], table, err)
		}
	}
	sent = true
	if err := batch.Send(); err != nil {
		return fmt.Errorf("inserting into %s: %w", table, err)
	}
	return nil
}

// ReadProfiles reads the snapshot as of cutoff back from profiles, sorted by
// key, with the catalog's Go types: Int64 → int64, Float64 → float64,
// String → string, UInt8 → bool for bool tags, Int64 milliseconds →
// schemas.Timestamp for timestamp tags, NULL → nil.
func ReadProfiles(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, cutoff schemas.Timestamp) ([]schemas.Profile, error) {
	sec, err := snapshotSeconds(cutoff)
	if err != nil {
		return nil, fmt.Errorf("reading profiles of %s: %w", cat.Name, err)
	}
	key := cat.KeyField()
	cols := []string{q(key.Name)}
	for i := range cat.Tags {
		cols = append(cols, q(cat.Tags[i].Name))
	}
	query := fmt.Sprintf("SELECT %s FROM %s WHERE %s = toDateTime(%d) ORDER BY %s",
		strings.Join(cols, ", "), q(ProfilesTable), q(ColSnapshot), sec, q(key.Name))
	rows, err := c.Conn().Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %s of %s: %w", cutoff, cat.Name, err)
	}
	defer rows.Close()

	dests := make([]any, len(cols))
	convs := make([]func() any, len(cols))
	dests[0], convs[0] = scanDest(key.Type, false)
	for i := range cat.Tags {
		dests[i+1], convs[i+1] = scanDest(cat.Tags[i].Type, cat.Tags[i].Nullable)
	}
	var out []schemas.Profile
	for rows.Next() {
		if err := rows.Scan(dests...); err != nil {
			return nil, fmt.Errorf("reading snapshot %s of %s: row %d: %w", cutoff, cat.Name, len(out), err)
		}
		p := schemas.Profile{Key: convs[0](), Values: make([]any, len(cat.Tags))}
		for i := range cat.Tags {
			p.Values[i] = convs[i+1]()
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading snapshot %s of %s: %w", cutoff, cat.Name, err)
	}
	return out, nil
}

// Checksum returns the row count of a snapshot and an order-independent
// checksum of its rows (sum of cityHash64 over every column), to tell
// whether two writes left the same data.
func Checksum(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, cutoff schemas.Timestamp) (rows uint64, sum uint64, err error) {
	sec, err := snapshotSeconds(cutoff)
	if err != nil {
		return 0, 0, fmt.Errorf("checksumming profiles of %s: %w", cat.Name, err)
	}
	cols := []string{q(cat.KeyField().Name)}
	for i := range cat.Tags {
		// cityHash64 of a Nullable argument is NULL for NULL on 18.16, and sum
		// skips NULLs: hash a marker with the value so NULL still counts.
		cols = append(cols, "isNull("+q(cat.Tags[i].Name)+")", "ifNull(toString("+q(cat.Tags[i].Name)+"), '')")
	}
	cols = append(cols, q(ColCatalogHash))
	query := fmt.Sprintf("SELECT count(), sum(cityHash64(%s)) FROM %s WHERE %s = toDateTime(%s)",
		strings.Join(cols, ", "), q(ProfilesTable), q(ColSnapshot), strconv.FormatInt(sec, 10))
	if err := c.Conn().QueryRow(ctx, query).Scan(&rows, &sum); err != nil {
		return 0, 0, fmt.Errorf("checksumming snapshot %s of %s: %w", cutoff, cat.Name, err)
	}
	return rows, sum, nil
}
