package warehouse

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

// BenchmarkImport imports a generated, time-ordered e-commerce CSV file
// of 200k rows over ten days (chunks of 50k rows) and reports rows/s.
func BenchmarkImport(b *testing.B) {
	const rows = 200_000
	cat := loadCatalog(b, "ecommerce")
	path := filepath.Join(b.TempDir(), "events.csv")
	f, err := os.Create(path)
	require.NoError(b, err)
	w, err := gen.NewWriter(f, cat, "csv")
	require.NoError(b, err)
	o := gen.Options{Seed: 1, Users: 10_000, Events: rows, Start: 1511568000000, Span: 10 * 24 * 3600 * 1000}
	require.NoError(b, gen.Stream(cat, o, func(e *schemas.Event) error { return w.Write(e) }))
	require.NoError(b, w.Flush())
	require.NoError(b, f.Close())

	b.ResetTimer()
	for b.Loop() {
		cfg := importConfig(b, b.TempDir(), path)
		cfg.Catalog, cfg.ChunkRows = cat, 50_000
		stats, err := Import(context.Background(), cfg)
		require.NoError(b, err)
		require.Equal(b, int64(rows), stats.Imported)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
