package local

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/portrait-dev/portrait/batch/internal/eventrec"
	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/schemas"
)

var (
	benchEvents = flag.Int("bench.events", 2_000_000, "events in BenchmarkLocalCompute (the target figure is for 20M)")
	benchUsers  = flag.Int("bench.users", 100_000, "users in BenchmarkLocalCompute (the target figure is for 1M)")
	benchShards = flag.Int("bench.shards", 0, "shards in BenchmarkLocalCompute (0: one per core)")
)

// benchRecords builds n events of any catalog straight into Arrow columns
// (64Ki rows a batch): times ascending over ten days, users uniform,
// enums uniform, other values from small pools, ids unique.
func benchRecords(b *testing.B, cat *schemas.Catalog, n, users int, start schemas.Timestamp) []arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(1, 2))
	sch := eventrec.Schema(cat)
	const size = 64 * 1024
	span := int64(10 * 86_400_000)
	var out []arrow.RecordBatch
	var offsets [8]int64
	strPool := make([]string, 1000)
	for i := range strPool {
		strPool[i] = fmt.Sprintf("s%04d", i)
	}
	for lo := 0; lo < n; lo += size {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sch)
		for i := lo; i < min(lo+size, n); i++ {
			ts := int64(start) + span*int64(i)/int64(n)
			u := rng.IntN(users)
			for f, field := range cat.Fields {
				switch {
				case f == cat.Time:
					rb.Field(f).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
				case f == cat.Key:
					rb.Field(f).(*array.Int64Builder).Append(int64(u))
				case f == cat.ID:
					rb.Field(f).(*array.StringBuilder).Append(fmt.Sprintf("e%d", i))
				case len(field.Enum) > 0:
					rb.Field(f).(*array.StringBuilder).Append(field.Enum[rng.IntN(len(field.Enum))])
				case field.Type == schemas.TypeInt64:
					rb.Field(f).(*array.Int64Builder).Append(int64(rng.IntN(5000)))
				case field.Type == schemas.TypeFloat64:
					rb.Field(f).(*array.Float64Builder).Append(float64(rng.IntN(100000)) / 100)
				case field.Type == schemas.TypeString:
					rb.Field(f).(*array.StringBuilder).Append(strPool[rng.IntN(len(strPool))])
				case field.Type == schemas.TypeBool:
					rb.Field(f).(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
				case field.Type == schemas.TypeTimestamp:
					rb.Field(f).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
				}
			}
			p := u % 8
			nf := len(cat.Fields)
			rb.Field(nf).(*array.Int32Builder).Append(int32(p))
			rb.Field(nf + 1).(*array.Int64Builder).Append(offsets[p])
			offsets[p]++
			rb.Field(nf + 2).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
		}
		out = append(out, rb.NewRecordBatch())
		rb.Release()
	}
	return out
}

// BenchmarkLocalCompute reports events/s of the local engine over data in
// memory (no Parquet decoding), with the cutoff at the end of the data so
// that every tag and every event counts. Run the target size with
//
//	go test ./batch/local -run '^$' -bench LocalCompute -benchtime 3x \
//	    -args -bench.events 20000000 -bench.users 1000000
func BenchmarkLocalCompute(b *testing.B) {
	start := schemas.Timestamp(1511568000000)
	cutoff := start + 10*86_400_000
	for _, name := range []string{"taobao", "ecommerce"} {
		cat := schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
		b.Run(name, func(b *testing.B) {
			// Generated here so that -bench can pick one catalog.
			recs := benchRecords(b, cat, *benchEvents, *benchUsers, start)
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			src := func(_ context.Context, fn func(arrow.RecordBatch) error) error {
				for _, r := range recs {
					if err := fn(r); err != nil {
						return err
					}
				}
				return nil
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Self()
			for b.Loop() {
				shards := *benchShards
				if shards <= 0 {
					shards = defaultShards()
				}
				// The keys are 0..users-1, as the warehouse's footers would say.
				h := Hints{KeyRange: true, KeyMax: int64(*benchUsers - 1), Rows: int64(*benchEvents)}
				res, err := compute(context.Background(), cat, cutoff, src, nil, h, shards)
				if err != nil {
					b.Fatal(err)
				}
				if res.Profiles.Len() == 0 {
					b.Fatal("no profiles")
				}
			}
			b.ReportMetric(float64(*benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// Per CPU-second (user+system of the whole process, GC included):
			// the per-core figure, robust against a busy machine.
			b.ReportMetric(float64(*benchEvents)*float64(b.N)/(cputime.Self()-cpu0).Seconds(), "events/cpu-s")
		})
	}
}
