package warehouse

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/cputime"
)

const benchRows = 1 << 20

func BenchmarkWriteEvents(b *testing.B) {
	for _, name := range []string{"taobao", "ecommerce"} {
		b.Run(name, func(b *testing.B) {
			cat := loadCatalog(b, name)
			events := synthEvents(cat, benchRows, 42)
			var size int64
			for b.Loop() {
				cw := &CountingWriter{W: io.Discard}
				if err := WriteEvents(cw, cat, events, 1); err != nil {
					b.Fatal(err)
				}
				size = cw.N
			}
			b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/benchRows, "bytes/row")
		})
	}
}

func BenchmarkReadEvents(b *testing.B) {
	for _, name := range []string{"taobao", "ecommerce"} {
		b.Run(name, func(b *testing.B) {
			cat := loadCatalog(b, name)
			path := filepath.Join(b.TempDir(), "part-0-0-1.parquet")
			_, err := WriteEventsFile(path, cat, synthEvents(cat, benchRows, 43), 1)
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				var n int64
				err := ReadEvents(context.Background(), cat, []string{path}, func(rec arrow.RecordBatch) error {
					n += rec.NumRows()
					return nil
				})
				if err != nil || n != benchRows {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

var (
	benchWarehouse = flag.String("bench.warehouse", "", "warehouse for BenchmarkReadWarehouse (skipped when empty)")
	benchCatalog   = flag.String("bench.catalog", "taobao", "catalog (under schemas/catalogs) of -bench.warehouse")
)

// BenchmarkReadWarehouse reads every events file of an existing warehouse
// (e.g. the 20M-event one of batch.BenchmarkRecompute) as a recompute
// does, without aggregating, to show the cost of reading and of the
// number of files:
//
//	go test ./warehouse -run '^$' -bench ReadWarehouse -benchtime 1x -args -bench.warehouse /tmp/rc/wh20m
func BenchmarkReadWarehouse(b *testing.B) {
	if *benchWarehouse == "" {
		b.Skip("no -bench.warehouse")
	}
	cat := loadCatalog(b, *benchCatalog)
	files, err := AllEventFiles(*benchWarehouse)
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		opts ReadOptions
	}{
		{"plain", ReadOptions{}},
		{"recompute", ReadOptions{Dictionaries: true, ReuseBuffers: true}}, // as batch reads
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rows, batches int64
			cpu0 := cputime.Self()
			for b.Loop() {
				err := ReadEventsWith(context.Background(), cat, files, bc.opts, func(rec arrow.RecordBatch) error {
					rows += rec.NumRows()
					batches++
					return nil
				})
				require.NoError(b, err)
			}
			cpu := (cputime.Self() - cpu0).Seconds()
			b.ReportMetric(float64(len(files)), "files")
			b.ReportMetric(float64(batches)/float64(b.N), "batches")
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(rows)/cpu, "rows/cpu-s")
			b.ReportMetric(cpu/(float64(rows)/1e6), "cpu-s/Mrows")
		})
	}
}
