package chbatch

import (
	"context"
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// LoadHours replaces each given hour of the events table with the
// warehouse's files of that hour, so loading an hour again never
// duplicates rows. Hours are loaded in groups that share one staging
// table and INSERT (LoadAll); an hour without events is emptied. It
// returns the rows loaded.
func LoadHours(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, root string, hours []schemas.Timestamp) (int64, error) {
	if err := EnsureSchema(ctx, c, cat); err != nil {
		return 0, err
	}
	var rows int64
	for start := 0; start < len(hours); start += maxHoursPerInsert {
		var events []schemas.Event
		for _, h := range hours[start:min(start+maxHoursPerInsert, len(hours))] {
			files, err := warehouse.HourFiles(root, h)
			if err != nil {
				return rows, err
			}
			evs, err := warehouse.ReadEventRows(ctx, cat, files)
			if err != nil {
				return rows, fmt.Errorf("loading hour %s into ClickHouse: %w", h, err)
			}
			if len(evs) == 0 {
				if err := LoadEvents(ctx, c, cat, h, nil); err != nil {
					return rows, err
				}
			}
			events = append(events, evs...)
		}
		if err := LoadAll(ctx, c, cat, events); err != nil {
			return rows, err
		}
		rows += int64(len(events))
	}
	return rows, nil
}

// SyncHours makes the events table agree with the warehouse: every hour
// whose row count in ClickHouse differs from the warehouse's (its _SUCCESS
// marker, or its files' footers when the hour has no marker) is loaded
// again with LoadHours. Running it twice loads nothing the second time,
// and a load interrupted part way is finished by the next run. It returns
// the hours loaded and their rows.
func SyncHours(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, root string) ([]schemas.Timestamp, int64, error) {
	if err := EnsureSchema(ctx, c, cat); err != nil {
		return nil, 0, err
	}
	loaded, err := EventCounts(ctx, c)
	if err != nil {
		return nil, 0, err
	}
	hours, err := warehouse.ListHours(root, math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, 0, err
	}
	var stale []schemas.Timestamp
	for _, h := range hours {
		rows, err := hourRows(root, h)
		if err != nil {
			return nil, 0, err
		}
		if rows != loaded[h.Start] {
			stale = append(stale, h.Start)
		}
	}
	rows, err := LoadHours(ctx, c, cat, root, stale)
	return stale, rows, err
}

// hourRows is the warehouse's row count of an hour: from its marker when
// the marker lists every file, else from the files' footers.
func hourRows(root string, h warehouse.Hour) (int64, error) {
	files, err := warehouse.HourFiles(root, h.Start)
	if err != nil {
		return 0, err
	}
	if m, ok, err := warehouse.ReadMarker(h.Dir); err == nil && ok && len(m.Files) == len(files) {
		return m.Rows, nil
	}
	var rows int64
	for _, f := range files {
		n, err := warehouse.FileRows(f)
		if err != nil {
			return 0, err
		}
		rows += n
	}
	return rows, nil
}
