package local

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// TestComputeKeyRange runs the differential test with key range hints
// that cover every key, some of them, or none, over keys spread across
// several blocks, with one, two, three (no range: not a power of two) and
// four shards: the profiles and the state must be those computed without
// hints, and the profiles sorted by key.
func TestComputeKeyRange(t *testing.T) {
	c0, c1 := hour("2024-03-01T01:00:00Z"), hour("2024-03-09T00:00:00Z")
	for name, cat := range testCatalogs(t) {
		if cat.KeyField().Type != schemas.TypeInt64 {
			continue
		}
		events := randomEvents(cat, 9, 3000, []schemas.Timestamp{c0, c1})
		// Keys -2..9 spread over blocks: -3000..13500.
		for i := range events {
			events[i].Values[cat.Key] = events[i].Values[cat.Key].(int64) * 1500
		}
		src := sliceSource(t, cat, events, 400)
		hints := map[string]Hints{
			"all":    {KeyRange: true, KeyMin: -3000, KeyMax: 13500, Rows: int64(len(events))},
			"some":   {KeyRange: true, KeyMin: 0, KeyMax: 6000, Rows: int64(len(events))},
			"none":   {KeyRange: true, KeyMin: 1 << 40, KeyMax: 1<<40 + 10, Rows: int64(len(events))},
			"sparse": {KeyRange: true, KeyMin: -1 << 40, KeyMax: 1 << 40, Rows: int64(len(events))},
		}
		for _, cutoff := range []schemas.Timestamp{c0, c1} {
			want := reference.Evaluate(cat, events, cutoff)
			plain, err := compute(context.Background(), cat, cutoff, src, nil, Hints{}, 1)
			require.NoError(t, err)
			for hn, h := range hints {
				for _, shards := range []int{1, 2, 3, 4} {
					t.Run(fmt.Sprintf("%s/%s/%s/%d", name, cutoff, hn, shards), func(t *testing.T) {
						e, err := newEngineWith(cat, cutoff, nil, h, shards)
						require.NoError(t, err)
						wantRange := hn != "sparse" && shards != 3
						require.Equal(t, wantRange, e.keys.on())
						res, err := compute(context.Background(), cat, cutoff, src, nil, h, shards)
						require.NoError(t, err)
						require.Empty(t, reference.Diff(cat, want, res.Profiles.Boxed(), 10))
						require.True(t, slices.IsSorted(res.Profiles.IntKeys))
						require.Equal(t, plain.Profiles, res.Profiles)
						if plain.State != nil {
							require.Equal(t, plain.State.State(), res.State.State())
						}
					})
				}
			}
		}
	}
}

// TestComputeKeyRangeBase: with a base, the range widens to the base's
// keys, and an incremental computation with hints equals a full one.
func TestComputeKeyRangeBase(t *testing.T) {
	c0, c1 := hour("2024-03-01T01:00:00Z"), hour("2024-03-02T05:00:00Z")
	cat := testCatalogs(t)["taobao"]
	events := randomEvents(cat, 4, 3000, []schemas.Timestamp{c0, c1})
	for i := range events {
		events[i].Values[cat.Key] = events[i].Values[cat.Key].(int64) * 3000
	}
	h := Hints{KeyRange: true, KeyMin: -6000, KeyMax: 27000, Rows: int64(len(events))}
	r0, err := compute(context.Background(), cat, c0, sliceSource(t, cat, events, 500), nil, h, 2)
	require.NoError(t, err)
	lo := min(c0, c1-schemas.Timestamp(cat.LongestWindow()))
	var later []schemas.Event
	for _, e := range events {
		if e.Time >= lo {
			later = append(later, e)
		}
	}
	base := r0.State.State()
	// The later events' keys alone span less than the base's.
	hl := Hints{KeyRange: true, KeyMin: 0, KeyMax: 3000, Rows: int64(len(later))}
	e, err := newEngineWith(cat, c1, base, hl, 2)
	require.NoError(t, err)
	require.True(t, e.keys.on())
	require.Equal(t, int64(-6000), e.keys.lo)
	inc, err := compute(context.Background(), cat, c1, sliceSource(t, cat, later, 500), base, hl, 2)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(cat, reference.Evaluate(cat, events, c1), inc.Profiles.Boxed(), 10))
}
