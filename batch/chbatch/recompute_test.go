package chbatch

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// setup opens a fresh test database with the catalog's schema.
func setup(t *testing.T, cat *schemas.Catalog) (context.Context, *clickhouse.Client) {
	t.Helper()
	c := chtest.Open(t)
	ctx := testContext(t)
	require.NoError(t, EnsureSchema(ctx, c, cat))
	return ctx, c
}

const day = 24 * 3600 * 1000

// cutoffsFor returns the cutoffs the differential tests use, for events
// over four days from o.Start: windows partly and wholly filled, just after
// the last event, and so late that only lifetime (and 30d) tags are left.
func cutoffsFor(o gen.Options) []schemas.Timestamp {
	return []schemas.Timestamp{
		o.Start + 6*3600*1000,
		o.Start + 2*day + 5*3600*1000,
		o.Start + 4*day,
		o.Start + 9*day, // cutoff−7d falls inside the data
		o.Start + 40*day,
	}
}

// edgesFor returns every cutoff and cutoff−window of a catalog, where the
// generator puts some events exactly (and 1 ms before).
func edgesFor(cat *schemas.Catalog, cutoffs []schemas.Timestamp) []schemas.Timestamp {
	var out []schemas.Timestamp
	for _, c := range cutoffs {
		out = append(out, c)
		for i := range cat.Tags {
			if w := cat.Tags[i].Window; w > 0 {
				out = append(out, c-schemas.Timestamp(w))
			}
		}
	}
	return out
}

func requireSameProfiles(t *testing.T, cat *schemas.Catalog, want, got []schemas.Profile) {
	t.Helper()
	if diff := reference.Diff(cat, want, got, 20); len(diff) > 0 {
		t.Fatalf("%d profiles want, %d got; differences:\n  %s", len(want), len(got), strings.Join(diff, "\n  "))
	}
}

// TestRecomputeMatchesReference loads generated events (ties, duplicate
// ids, events exactly on cutoff−window and cutoff, empty windows) and
// checks at several cutoffs that the SQL engine computes what the
// reference evaluator does, that recomputing and publishing again leave the
// same rows, and that publishing the reference's profiles reads back
// unchanged.
func TestRecomputeMatchesReference(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			cat := schemas.MustLoad(catalogPath(name))
			ctx, c := setup(t, cat)
			o := gen.Defaults(7)
			o.Users = 40
			o.Events = 2500
			o.Span = 4 * day
			cutoffs := cutoffsFor(o)
			o.Edges = edgesFor(cat, cutoffs)
			events := dyadicFloats(cat, gen.Events(cat, o))
			require.NoError(t, LoadAll(ctx, c, cat, events))

			for _, cutoff := range cutoffs {
				t.Run(cutoff.String(), func(t *testing.T) {
					require.NoError(t, Recompute(ctx, c, cat, cutoff))
					got, err := ReadProfiles(ctx, c, cat, cutoff)
					require.NoError(t, err)
					want := reference.Evaluate(cat, events, cutoff)
					require.NotEmpty(t, want)
					requireSameProfiles(t, cat, want, got)
				})
			}

			cutoff := cutoffs[2]
			t.Run("recompute twice", func(t *testing.T) {
				n1, sum1, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.NotZero(t, n1)
				require.NoError(t, Recompute(ctx, c, cat, cutoff))
				n2, sum2, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.Equal(t, []uint64{n1, sum1}, []uint64{n2, sum2}, "rows and checksum after a second recompute")
				// Other snapshots are partitions of their own.
				got, err := ReadProfiles(ctx, c, cat, cutoffs[1])
				require.NoError(t, err)
				requireSameProfiles(t, cat, reference.Evaluate(cat, events, cutoffs[1]), got)
			})

			t.Run("publish twice", func(t *testing.T) {
				want := reference.Evaluate(cat, events, cutoff)
				require.NoError(t, PublishProfiles(ctx, c, cat, cutoff, want))
				n1, sum1, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.Equal(t, uint64(len(want)), n1)
				require.NoError(t, PublishProfiles(ctx, c, cat, cutoff, want))
				n2, sum2, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.Equal(t, []uint64{n1, sum1}, []uint64{n2, sum2}, "rows and checksum after a second publish")
				got, err := ReadProfiles(ctx, c, cat, cutoff)
				require.NoError(t, err)
				requireSameProfiles(t, cat, want, got)
				// With exact float sums the engines agree bit for bit.
				require.NoError(t, Recompute(ctx, c, cat, cutoff))
				n3, sum3, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.Equal(t, []uint64{n1, sum1}, []uint64{n3, sum3}, "recompute vs published reference")
				// Publishing nothing empties the snapshot.
				require.NoError(t, PublishProfiles(ctx, c, cat, cutoff, nil))
				n4, _, err := Checksum(ctx, c, cat, cutoff)
				require.NoError(t, err)
				require.Zero(t, n4)
				requireNoStaging(ctx, t, c)
			})
		})
	}
}

// dyadicFloats rounds float64 field values to multiples of 1/8, whose
// sums are exact in any order. Float sums may differ in their last bits
// between executors (reference.FloatTolerance), and ClickHouse's order of
// addition varies from run to run; a rule such as `spend_7d >= 500` on a
// sum that lands on the boundary would then flip now and then. With exact
// sums every value, rules included, must be equal bit for bit.
func dyadicFloats(cat *schemas.Catalog, events []schemas.Event) []schemas.Event {
	for i := range events {
		for j, v := range events[i].Values {
			if x, ok := v.(float64); ok && cat.Fields[j].Type == schemas.TypeFloat64 {
				events[i].Values[j] = math.Round(x*8) / 8
			}
		}
	}
	return events
}

// requireNoStaging checks that no staging table was left behind.
func requireNoStaging(ctx context.Context, t *testing.T, c *clickhouse.Client) {
	t.Helper()
	var n uint64
	require.NoError(t, c.Conn().QueryRow(ctx,
		"SELECT count() FROM system.tables WHERE database = currentDatabase() AND (name LIKE '%_recompute_%' OR name LIKE '%_publish_%' OR name LIKE '%_load_%')").Scan(&n))
	require.Zero(t, n, "staging tables left behind")
}

// taobaoSample reads the Taobao UserBehavior sample: the repo's copy under
// testdata/taobao. Partition is the file's
// ordinal, offset its line.
func taobaoSample(t *testing.T, cat *schemas.Catalog) []schemas.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "taobao", "*.csv"))
	if len(files) == 0 {
		t.Fatal("no Taobao sample in testdata/taobao")
	}
	var events []schemas.Event
	for p, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		r := csv.NewReader(f)
		r.FieldsPerRecord = len(cat.Fields)
		for line := 1; ; line++ {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s:%d", path, line)
			e := schemas.Event{Values: make([]any, len(cat.Fields)), Partition: int32(p), Offset: int64(line)}
			for i := range cat.Fields {
				v, err := schemas.ParseValue(&cat.Fields[i], rec[i])
				require.NoError(t, err, "%s:%d", path, line)
				e.Values[i] = v
			}
			e.Time = e.Values[cat.Time].(schemas.Timestamp)
			events = append(events, e)
		}
		require.NoError(t, f.Close())
	}
	return events
}

func TestRecomputeTaobaoSample(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	events := taobaoSample(t, cat)
	ctx, c := setup(t, cat)
	require.NoError(t, LoadAll(ctx, c, cat, events))
	for _, cutoff := range []schemas.Timestamp{1511740800000, 1512000000000, 1512259200000, 1512345600000} {
		t.Run(cutoff.String(), func(t *testing.T) {
			require.NoError(t, Recompute(ctx, c, cat, cutoff))
			got, err := ReadProfiles(ctx, c, cat, cutoff)
			require.NoError(t, err)
			want := reference.Evaluate(cat, events, cutoff)
			require.NotEmpty(t, want)
			requireSameProfiles(t, cat, want, got)
		})
	}
}
