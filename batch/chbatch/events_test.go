package chbatch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

func TestLoadEventsReplacesTheHour(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	ctx, c := setup(t, cat)
	const h = schemas.Timestamp(3600 * 1000)
	hour := schemas.Timestamp(1511568000000)
	o := gen.Defaults(11)
	o.Start, o.Span, o.Events = hour, int64(2*h), 400
	events := gen.Events(cat, o)
	var first, second []schemas.Event
	for _, e := range events {
		if e.Time < hour+h {
			first = append(first, e)
		} else {
			second = append(second, e)
		}
	}
	require.NotEmpty(t, first)
	require.NotEmpty(t, second)

	require.NoError(t, LoadEvents(ctx, c, cat, hour+h, second))
	for range 2 {
		require.NoError(t, LoadEvents(ctx, c, cat, hour, first))
		counts, err := EventCounts(ctx, c)
		require.NoError(t, err)
		require.Equal(t, map[schemas.Timestamp]int64{hour: int64(len(first)), hour + h: int64(len(second))}, counts)
	}

	// Stragglers re-open the hour: loading it again holds exactly the new set.
	require.NoError(t, LoadEvents(ctx, c, cat, hour, first[:10]))
	counts, err := EventCounts(ctx, c)
	require.NoError(t, err)
	require.Equal(t, int64(10), counts[hour])
	require.Equal(t, int64(len(second)), counts[hour+h], "the other hour is untouched")

	// Loading nothing empties the hour.
	require.NoError(t, LoadEvents(ctx, c, cat, hour, nil))
	counts, err = EventCounts(ctx, c)
	require.NoError(t, err)
	require.Equal(t, map[schemas.Timestamp]int64{hour + h: int64(len(second))}, counts)
	requireNoStaging(ctx, t, c)
}

func TestLoadEventsRejectsBadInput(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	ctx, c := setup(t, cat)
	hour := schemas.Timestamp(1511568000000)
	ev := func(ts schemas.Timestamp, values ...any) schemas.Event {
		return schemas.Event{Values: values, Time: ts, Partition: 1, Offset: 42}
	}
	good := []any{int64(1), int64(2), int64(3), "pv", hour}
	tests := []struct {
		name   string
		hour   schemas.Timestamp
		events []schemas.Event
		want   string
	}{
		{"hour not aligned", hour + 1, nil, "not the start of an hour"},
		{"event outside the hour", hour, []schemas.Event{ev(hour+3600*1000, good...)}, "event 0 (partition 1 offset 42): time 2017-11-25T01:00:00Z is outside the hour"},
		{"wrong type", hour, []schemas.Event{ev(hour, int64(1), "x", int64(3), "pv", hour)}, "field item_id: got string, want int64"},
		{"null field", hour, []schemas.Event{ev(hour, int64(1), int64(2), nil, "pv", hour)}, "field category_id: null value"},
		{"too few values", hour, []schemas.Event{ev(hour, int64(1))}, "1 values, catalog has 5 fields"},
		{"time field differs", hour, []schemas.Event{ev(hour, int64(1), int64(2), int64(3), "pv", hour+5)}, "field ts is 2017-11-25T00:00:00.005Z, event time is 2017-11-25T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := LoadEvents(ctx, c, cat, tt.hour, tt.events)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
	counts, err := EventCounts(ctx, c)
	require.NoError(t, err)
	require.Empty(t, counts)
	requireNoStaging(ctx, t, c)
}
