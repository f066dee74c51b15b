package chbatch

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// TestRecomputeEdgeCases runs hand-made events through the SQL engine:
// equal times broken by partition against the offset order, events exactly
// on cutoff−window and on the cutoff, mode ties of strings, floats, bools
// and timestamps, entities with only old or only future events, and rules
// over empty values.
func TestRecomputeEdgeCases(t *testing.T) {
	cat := schemas.MustLoad(filepath.Join("testdata", "edge.yaml"))
	const (
		cutoff = schemas.Timestamp(1511654400000) // 2017-11-26T00:00:00Z
		h      = schemas.Timestamp(3600 * 1000)
	)
	type ev struct {
		user      string
		ts        schemas.Timestamp
		kind      string
		n         int64
		x         float64
		flag      bool
		at        schemas.Timestamp
		partition int32
		offset    int64
	}
	evs := []ev{
		{"u1", cutoff - 3*h, "a", 1, 1.5, true, 100, 0, 0},
		{"u1", cutoff - 2*h, "b", 2, 1.5, false, 300, 1, 0},
		{"u1", cutoff - 2*h, "a", 3, 2.5, true, 300, 0, 9}, // first: partition 0 beats 1
		{"u1", cutoff - h, "bb", 4, 2.5, false, 200, 1, 1},
		{"u1", cutoff - h, "c", 5, -1, true, 200, 0, 10},
		{"u1", cutoff - 1, "b", -1, 0.5, false, 50, 1, 2},
		{"u1", cutoff, "z", 100, 9.9, true, 999, 0, 11}, // on the cutoff: not counted
		{"u2", cutoff - 10*h, "b", 7, 3, false, 10, 2, 0},
		{"u2", cutoff - 10*h, "a", 7, 3, true, 10, 2, 1},
		{"u3", cutoff, "a", 1, 1, true, 1, 0, 12},
		{"u3", cutoff + 5, "a", 1, 1, true, 1, 0, 13},
		{"u4", cutoff - h/2, "b", 1, 2.5, true, 5, 0, 20},
		{"u4", cutoff - h/3, "a", 1, -1, false, 6, 1, 30},
		{"u4", cutoff - h/4, "bz", 1, -1, false, 6, 1, 31},
	}
	var events []schemas.Event
	for _, e := range evs {
		events = append(events, schemas.Event{
			Values:    []any{e.user, e.ts, e.kind, e.n, e.x, e.flag, e.at},
			Time:      e.ts,
			Partition: e.partition,
			Offset:    e.offset,
		})
	}
	ctx, c := setup(t, cat)
	require.NoError(t, LoadAll(ctx, c, cat, events))
	for _, at := range []schemas.Timestamp{cutoff, cutoff + h, cutoff + 3*h, cutoff - 2*h} {
		t.Run(at.String(), func(t *testing.T) {
			require.NoError(t, Recompute(ctx, c, cat, at))
			got, err := ReadProfiles(ctx, c, cat, at)
			require.NoError(t, err)
			requireSameProfiles(t, cat, reference.Evaluate(cat, events, at), got)
		})
	}

	// Spot checks that the reference agrees with what the events mean.
	got, err := ReadProfiles(ctx, c, cat, cutoff)
	require.NoError(t, err)
	require.Len(t, got, 3, "u1, u2, u4 (u3 has no event before the cutoff)")
	tag := func(p schemas.Profile, name string) any {
		tg, ok := cat.Tag(name)
		require.True(t, ok, name)
		return p.Values[tg.Index]
	}
	u1, u2, u4 := got[0], got[1], got[2]
	require.Equal(t, "u1", u1.Key)
	require.Equal(t, "a", tag(u1, "first_kind"))
	require.Equal(t, true, tag(u1, "first_flag"), "same time: partition 0 before partition 1")
	require.Equal(t, "b", tag(u1, "last_kind_1h"))
	require.Equal(t, int64(8), tag(u1, "sum_n_1h"), "4 + 5 - 1: the event on cutoff−1h counts, the one on the cutoff does not")
	require.Equal(t, schemas.Timestamp(200), tag(u1, "max_at_1h"))
	require.Nil(t, tag(u2, "sum_n_1h"))
	require.Nil(t, tag(u2, "mode_kind_2h"))
	require.Equal(t, true, tag(u2, "r1"), "sum_n_1h == nil")
	require.Equal(t, "a", tag(u4, "mode_kind_2h"), "tie between a, b, bz goes to the smallest")
	require.Equal(t, false, tag(u4, "mode_flag_1h"))
	require.Equal(t, -1.0, tag(u4, "mode_x"))
}
