package local

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecords: taobao's lifetime range (all events), its last buy and
// its 7-day buy count share a record of 64 bytes; the other counts keep
// their own slices.
func TestRecords(t *testing.T) {
	cat := testCatalogs(t)["taobao"]
	e, err := newEngine(cat, hour("2024-03-09T00:00:00Z"), nil, 2)
	require.NoError(t, err)
	s := e.shards[0]
	require.NotNil(t, s.recs)
	require.EqualValues(t, 64, s.recs.stride)
	tag := func(name string) acc {
		tg, ok := cat.Tag(name)
		require.True(t, ok)
		return s.accs[tg.Index]
	}
	rng := tag("first_seen").(*rangeView[int64]).r
	edge := tag("last_buy_cat").(*edgeAcc[int64])
	buys := tag("buys_7d").(*countAcc)
	require.True(t, rng.v.rec == s.recs && edge.e.rec == s.recs && buys.n.rec == s.recs)
	require.Equal(t, []uintptr{0, 24, 56}, []uintptr{rng.v.off, edge.e.off, buys.n.off})
	require.Nil(t, tag("pv_24h").(*countAcc).n.rec)
	s.growUsersTo(3000)
	*buys.n.at(2999) = 7
	edge.e.at(2999).t = 9
	require.Equal(t, int64(7), *buys.n.at(2999))
	require.Equal(t, int64(9), edge.e.at(2999).t)
	require.Equal(t, uintptr(0), uintptr(s.recs.base())%64)
}

// TestRecordsKinds: in the kinds catalog, lifetime sums and counts share
// a record with the lifetime range; every accumulator in it has its own
// bytes.
func TestRecordsKinds(t *testing.T) {
	cat := testCatalogs(t)["kinds"]
	e, err := newEngine(cat, hour("2024-03-09T00:00:00Z"), nil, 1)
	require.NoError(t, err)
	s := e.shards[0]
	require.NotNil(t, s.recs)
	type span struct{ lo, hi uintptr }
	var spans []span
	sums := 0
	for _, a := range s.accs {
		switch a := a.(type) {
		case *sumAcc[float64]:
			if a.s.rec != nil {
				sums++
				spans = append(spans, span{a.s.off, a.s.off + a.s.size()})
			}
		case *countAcc:
			if a.n.rec != nil {
				spans = append(spans, span{a.n.off, a.n.off + a.n.size()})
			}
		case *rangeView[int64]:
			if a.r.v.rec != nil && !a.max {
				spans = append(spans, span{a.r.v.off, a.r.v.off + a.r.v.size()})
			}
		case *edgeAcc[int64]:
			if a.e.rec != nil {
				spans = append(spans, span{a.e.off, a.e.off + a.e.size()})
			}
		}
	}
	require.Equal(t, 2, sums)
	for i, a := range spans {
		require.LessOrEqual(t, a.hi, s.recs.stride)
		for _, b := range spans[i+1:] {
			require.True(t, a.hi <= b.lo || b.hi <= a.lo, "overlap %v %v", a, b)
		}
	}
}
