package local

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/internal/eventrec"
	"github.com/portrait-dev/portrait/schemas"
)

// randomEvents generates n events for any catalog: few keys and few
// distinct values (so modes tie and sets repeat), times concentrated on
// the window edges of the given cutoffs (exactly on cutoff−W, on the
// cutoff, one millisecond either side), repeated timestamps, and, when the
// catalog has an id field, duplicate ids with other times and offsets.
func randomEvents(cat *schemas.Catalog, seed uint64, n int, cutoffs []schemas.Timestamp) []schemas.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	var edges []schemas.Timestamp
	var windows []int64
	for _, t := range cat.Tags {
		if t.Window > 0 {
			windows = append(windows, t.Window)
		}
	}
	for _, c := range cutoffs {
		edges = append(edges, c, c-1, c+1)
		for _, w := range windows {
			e := c - schemas.Timestamp(w)
			edges = append(edges, e, e-1, e+1)
		}
	}
	lo := cutoffs[0] - schemas.Timestamp(cat.LongestWindow()) - 3*86_400_000
	hi := cutoffs[len(cutoffs)-1] + 86_400_000
	offsets := map[int32]int64{}
	var out []schemas.Event
	for len(out) < n {
		var ts schemas.Timestamp
		switch x := rng.IntN(10); {
		case x < 3:
			ts = edges[rng.IntN(len(edges))]
		case x < 4 && len(out) > 0:
			ts = out[rng.IntN(len(out))].Time // same timestamp as another event
		default:
			ts = lo + schemas.Timestamp(rng.Int64N(int64(hi-lo)))
		}
		if cat.ID >= 0 && len(out) > 0 && rng.IntN(8) == 0 {
			// A duplicate: same key and id, maybe other values, other place.
			d := out[rng.IntN(len(out))]
			e := schemas.Event{Values: append([]any(nil), d.Values...), Time: ts, Partition: int32(rng.IntN(3))}
			if rng.IntN(2) == 0 {
				e.Time = d.Time
			}
			e.Values[cat.Time] = e.Time
			e.Offset = offsets[e.Partition]
			offsets[e.Partition]++
			out = append(out, e)
			continue
		}
		e := schemas.Event{Values: make([]any, len(cat.Fields)), Time: ts, Partition: int32(rng.IntN(3))}
		e.Offset = offsets[e.Partition]
		offsets[e.Partition]++
		for i, f := range cat.Fields {
			switch {
			case i == cat.Time:
				e.Values[i] = ts
			case i == cat.Key && f.Type == schemas.TypeInt64:
				e.Values[i] = int64(rng.IntN(12) - 2)
			case i == cat.Key:
				e.Values[i] = fmt.Sprintf("u%02d", rng.IntN(12))
			case i == cat.ID && f.Type == schemas.TypeString:
				e.Values[i] = fmt.Sprintf("ev-%d-%d", seed, len(out))
			case i == cat.ID:
				e.Values[i] = int64(len(out))
			case len(f.Enum) > 0:
				e.Values[i] = f.Enum[rng.IntN(len(f.Enum))]
			case f.Type == schemas.TypeInt64:
				e.Values[i] = int64(rng.IntN(7) - 2)
			case f.Type == schemas.TypeFloat64:
				e.Values[i] = []float64{0, -1.5, 2.25, 49.5, 50.5, 120, 600, 0.1}[rng.IntN(8)]
			case f.Type == schemas.TypeString:
				e.Values[i] = []string{"", "a", "b", "B", "ab", "zz"}[rng.IntN(6)]
			case f.Type == schemas.TypeBool:
				e.Values[i] = rng.IntN(2) == 0
			case f.Type == schemas.TypeTimestamp:
				e.Values[i] = lo + schemas.Timestamp(rng.Int64N(int64(hi-lo)))
			}
		}
		out = append(out, e)
	}
	return out
}

// sliceSource serves events as record batches of size rows.
func sliceSource(t testing.TB, cat *schemas.Catalog, events []schemas.Event, size int) Source {
	t.Helper()
	recs, err := eventrec.Records(cat, events, size)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// dictSliceSource is sliceSource with every string column as a dictionary
// array (Int32 indexes), as the warehouse reader gives enum columns.
func dictSliceSource(t testing.TB, cat *schemas.Catalog, events []schemas.Event, size int) Source {
	t.Helper()
	recs, err := eventrec.Records(cat, events, size)
	require.NoError(t, err)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	var dicts []arrow.RecordBatch
	for _, r := range recs {
		fields := slices.Clone(r.Schema().Fields())
		cols := make([]arrow.Array, r.NumCols())
		for i := range cols {
			cols[i] = r.Column(i)
			s, ok := cols[i].(*array.String)
			if !ok {
				cols[i].Retain()
				continue
			}
			db := array.NewDictionaryBuilder(memory.DefaultAllocator, dt).(*array.BinaryDictionaryBuilder)
			for j := range s.Len() {
				require.NoError(t, db.AppendString(s.Value(j)))
			}
			cols[i], fields[i].Type = db.NewArray(), dt
			db.Release()
		}
		dicts = append(dicts, array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, r.NumRows()))
		for _, c := range cols {
			c.Release()
		}
		r.Release()
	}
	t.Cleanup(func() {
		for _, r := range dicts {
			r.Release()
		}
	})
	return func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		for _, r := range dicts {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}
