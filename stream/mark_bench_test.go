package stream

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
)

// BenchmarkMarkState measures what the speed layer's state costs the
// garbage collector: it applies -bench.events generated events of
// -bench.users users (as the bench's speed stage does: two hours of
// traffic, 5,000 categories) to one partition in memory, then times full
// collections. Each ns/op is one runtime.GC(), whose mark phase walks the
// whole live state; the lookup tail latency under ingest follows how long
// that walk takes.
func BenchmarkMarkState(b *testing.B) {
	c := loadCatalog(b, "taobao")
	x, err := incremental.New(c, incremental.DefaultGrace)
	if err != nil {
		b.Fatal(err)
	}
	g := newEngine(x, nil, newMetrics(prometheus.NewRegistry()))
	g.parts[0] = &partition{id: 0, next: -1, hwm: -1, users: newUserMap()}
	o := gen.Options{Seed: 1, Users: *benchUsers, Events: *benchEvents, Start: 1511568000000,
		Span: (2 * time.Hour).Milliseconds(), Partitions: 1, Cardinality: 5000}
	chunk := make([]schemas.Event, 0, applyChunk)
	var offset int64
	err = gen.Stream(c, o, func(e *schemas.Event) error {
		e.Offset = offset
		offset++
		chunk = append(chunk, *e)
		if len(chunk) == applyChunk {
			g.apply(0, chunk, offset, schemas.Timestamp(1<<62))
			chunk = chunk[:0]
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	g.apply(0, chunk, offset, schemas.Timestamp(1<<62))
	var gc gcUsage
	runtime.GC()
	if *benchHeap != "" {
		writeHeapProfile(b, *benchHeap)
	}
	b.ResetTimer()
	gc.start()
	n := 0
	for b.Loop() {
		runtime.GC()
		n++
	}
	b.StopTimer()
	gc.stop()
	b.ReportMetric(gc.gcCPU/float64(n)*1e3, "gc-cpu-ms/op")
	b.ReportMetric(float64(gc.heap)/(1<<20), "live-heap-MB")
	b.ReportMetric(float64(gc.objects), "heap-objects")
	runtime.KeepAlive(g)
}
