package batch

import (
	"context"
	"flag"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

var (
	benchWarehouse = flag.String("bench.warehouse", "", "warehouse for BenchmarkRecompute (skipped when empty); make one with portrait gen and portrait import")
	benchCatalog   = flag.String("bench.catalog", "../schemas/catalogs/taobao.yaml", "catalog of -bench.warehouse")
	benchCutoff    = flag.String("bench.cutoff", "2017-12-04T00:00:00Z", "cutoff of BenchmarkRecompute")
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecompute measures a full recompute (reading the warehouse's
// Parquet hours, computing, writing the snapshot) of an existing
// warehouse, e.g. 20M events:
//
//	portrait gen --events 20000000 --users 1000000 --out /tmp/ev20m.csv
//	portrait import --catalog schemas/catalogs/taobao.yaml --warehouse /tmp/wh20m /tmp/ev20m.csv
//	go test ./batch -run '^$' -bench Recompute -benchtime 1x -args -bench.warehouse /tmp/wh20m
//
// It rewrites the snapshot of the cutoff.
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
	var events int64
	cpu0 := cpuTime()
	for b.Loop() {
		st, err := Recompute(context.Background(), Config{Root: *benchWarehouse, Catalog: cat, Cutoff: cutoff, Full: true})
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}
