package batch

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

var (
	benchWarehouse = flag.String("bench.warehouse", "", "warehouse for BenchmarkRecompute (skipped when empty); make one with portrait gen and portrait import")
	benchCatalog   = flag.String("bench.catalog", "../schemas/catalogs/taobao.yaml", "catalog of -bench.warehouse")
	benchCutoff    = flag.String("bench.cutoff", "2017-12-04T00:00:00Z", "cutoff of BenchmarkRecompute")
)

// BenchmarkRecompute measures recomputes (reading the warehouse's Parquet
// hours, computing, writing the snapshot) of an existing warehouse, e.g.
// 20M events:
//
//	portrait gen --events 20000000 --users 1000000 --out /tmp/ev20m.csv
//	portrait import --catalog schemas/catalogs/taobao.yaml --warehouse /tmp/wh20m /tmp/ev20m.csv
//	go test ./batch -run '^$' -bench Recompute -benchtime 1x -args -bench.warehouse /tmp/wh20m
//
// "full" reads every hour; "incremental" starts from the state of a
// snapshot one day before the cutoff (written before the timer starts),
// as the daily run does. It rewrites the snapshots of both cutoffs.
func BenchmarkRecompute(b *testing.B) {
	if *benchWarehouse == "" {
		b.Skip("no -bench.warehouse")
	}
	cat := schemas.MustLoad(*benchCatalog)
	t, err := time.Parse(time.RFC3339, *benchCutoff)
	if err != nil {
		b.Fatal(err)
	}
	cutoff := schemas.Timestamp(t.UnixMilli())
	run := func(b *testing.B, full bool) {
		var events int64
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			// The snapshot of the cutoff must not serve as its own base.
			if err := os.RemoveAll(warehouse.SnapshotDir(*benchWarehouse, cutoff)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			cpu0 := cputime.Self()
			st, err := Recompute(context.Background(), Config{Root: *benchWarehouse, Catalog: cat, Cutoff: cutoff, Full: full})
			cpu += cputime.Self() - cpu0
			if err != nil {
				b.Fatal(err)
			}
			if !full && st.Base == nil {
				b.Fatalf("no base: %s", st.FullReason)
			}
			events += st.Events
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
	b.Run("full", func(b *testing.B) { run(b, true) })
	b.Run("incremental", func(b *testing.B) {
		c0 := cutoff - 86_400_000
		if _, err := Recompute(context.Background(), Config{Root: *benchWarehouse, Catalog: cat, Cutoff: c0, Full: true}); err != nil {
			b.Fatal(err)
		}
		run(b, false)
	})
}
