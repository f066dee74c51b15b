package warehouse

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/stretchr/testify/require"
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
