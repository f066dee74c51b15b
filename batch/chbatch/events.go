package chbatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// LoadEvents makes the events table's partition for the hour that starts
// at hour hold exactly these events: they go to a staging table and replace
// the partition atomically, so loading an hour again (after stragglers
// re-opened it, or after a crash) never duplicates a row, and loading no
// events empties the hour. Every event must lie in [hour, hour+1h); the
// schema must exist (EnsureSchema). _ingest_time is set to now.
func LoadEvents(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, hour schemas.Timestamp, events []schemas.Event) error {
	if err := checkHour(hour); err != nil {
		return fmt.Errorf("loading events: %w", err)
	}
	for i := range events {
		if e := &events[i]; e.Time < hour || e.Time >= hour+hourMillis {
			return fmt.Errorf("loading events of hour %s: event %d (partition %d offset %d): time %s is outside the hour",
				hour, i, e.Partition, e.Offset, e.Time)
		}
	}
	return loadHours(ctx, c, cat, []schemas.Timestamp{hour}, events, time.Now())
}

// LoadAll loads events of any hours: every hour that has events is
// replaced with exactly its events, as LoadEvents does; hours without
// events are left as they are. Up to maxHoursPerInsert hours share one
// staging table and one INSERT (current servers refuse an INSERT block
// that spans more than 100 partitions: max_partitions_per_insert_block).
// For imports and tests.
func LoadAll(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, events []schemas.Event) error {
	byHour := map[schemas.Timestamp][]schemas.Event{}
	var hours []schemas.Timestamp
	for i := range events {
		h := hourOf(events[i].Time)
		if _, ok := byHour[h]; !ok {
			if err := checkHour(h); err != nil {
				return fmt.Errorf("loading events: event %d (partition %d offset %d): %w", i, events[i].Partition, events[i].Offset, err)
			}
			hours = append(hours, h)
		}
		byHour[h] = append(byHour[h], events[i])
	}
	slices.Sort(hours)
	now := time.Now()
	for start := 0; start < len(hours); start += maxHoursPerInsert {
		group := hours[start:min(start+maxHoursPerInsert, len(hours))]
		var evs []schemas.Event
		for _, h := range group {
			evs = append(evs, byHour[h]...)
		}
		if err := loadHours(ctx, c, cat, group, evs, now); err != nil {
			return err
		}
	}
	return nil
}

// maxHoursPerInsert keeps LoadAll's inserts within the default
// max_partitions_per_insert_block (100) of current servers.
const maxHoursPerInsert = 96

func hourOf(ts schemas.Timestamp) schemas.Timestamp {
	return schemas.Timestamp(floorDiv(int64(ts), hourMillis) * hourMillis)
}

// checkHour reports whether hour can name an _hour partition.
func checkHour(hour schemas.Timestamp) error {
	if hour%hourMillis != 0 || hour < 0 || int64(hour)/1000 > 1<<32-1-3600 {
		return fmt.Errorf("hour %s (%d ms): not the start of an hour between 1970 and 2106", hour, int64(hour))
	}
	return nil
}

// loadHours writes events (all within hours) to one staging table and
// replaces each hour's partition with it.
func loadHours(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, hours []schemas.Timestamp, events []schemas.Event, now time.Time) error {
	ids := make([]int64, len(hours))
	for i, h := range hours {
		ids[i] = int64(h) / 1000
	}
	names := make([]string, 0, len(cat.Fields)+4)
	for _, f := range cat.Fields {
		names = append(names, f.Name)
	}
	names = append(names, ColPartition, ColOffset, ColIngestTime, ColHour)
	stage := stagingName(EventsTable, "load", hours[0])
	return withStaging(ctx, c, EventsTable, stage, ids, func() error {
		for start := 0; start < len(events); start += insertChunk {
			chunk := events[start:min(start+insertChunk, len(events))]
			cols, err := eventColumns(cat, chunk, start, now)
			if err != nil {
				return fmt.Errorf("loading events of hour %s: %w", hours[0], err)
			}
			if err := insertColumns(ctx, c, stage, names, cols); err != nil {
				return fmt.Errorf("loading events of hour %s: %w", hours[0], err)
			}
		}
		return nil
	})
}

// eventColumns turns events into insert columns: the fields in catalog
// order, then _partition, _offset, _ingest_time and _hour (the start of
// each event's hour). first is the index of evs[0], for errors.
func eventColumns(cat *schemas.Catalog, evs []schemas.Event, first int, now time.Time) ([]any, error) {
	n := len(evs)
	fields := make([]column, len(cat.Fields))
	for i := range cat.Fields {
		fields[i] = newColumn(cat.Fields[i].Type, false, n)
	}
	parts := make([]int32, n)
	offsets := make([]int64, n)
	ingest := make([]int64, n)
	hours := make([]time.Time, n)
	nowMs := now.UnixMilli()
	for i := range evs {
		e := &evs[i]
		if len(e.Values) != len(cat.Fields) {
			return nil, fmt.Errorf("event %d (partition %d offset %d): %d values, catalog has %d fields", first+i, e.Partition, e.Offset, len(e.Values), len(cat.Fields))
		}
		if ts, ok := e.Values[cat.Time].(schemas.Timestamp); !ok || ts != e.Time {
			return nil, fmt.Errorf("event %d (partition %d offset %d): field %s is %v, event time is %s", first+i, e.Partition, e.Offset, cat.Fields[cat.Time].Name, e.Values[cat.Time], e.Time)
		}
		for j, v := range e.Values {
			if err := fields[j].add(v); err != nil {
				return nil, fmt.Errorf("event %d (partition %d offset %d) field %s: %w", first+i, e.Partition, e.Offset, cat.Fields[j].Name, err)
			}
		}
		parts[i], offsets[i], ingest[i], hours[i] = e.Partition, e.Offset, nowMs, hourOf(e.Time).Time()
	}
	cols := make([]any, 0, len(fields)+4)
	for _, f := range fields {
		cols = append(cols, f.slice())
	}
	return append(cols, parts, offsets, ingest, hours), nil
}

// EventCounts returns the number of rows in each hour partition of events,
// keyed by the hour's start.
func EventCounts(ctx context.Context, c *clickhouse.Client) (map[schemas.Timestamp]int64, error) {
	rows, err := c.Conn().Query(ctx, fmt.Sprintf("SELECT toInt64(toUInt32(%s)), toInt64(count()) FROM %s GROUP BY %s",
		q(ColHour), q(EventsTable), q(ColHour)))
	if err != nil {
		return nil, fmt.Errorf("counting events by hour: %w", err)
	}
	defer rows.Close()
	out := map[schemas.Timestamp]int64{}
	for rows.Next() {
		var sec, n int64
		if err := rows.Scan(&sec, &n); err != nil {
			return nil, fmt.Errorf("counting events by hour: %w", err)
		}
		out[schemas.Timestamp(sec*1000)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting events by hour: %w", err)
	}
	return out, nil
}
