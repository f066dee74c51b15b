package stream

import (
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/gen"
)

// BenchmarkEndToEnd consumes a pre-filled kfake topic (taobao catalog,
// JSON events) with a fresh state store each iteration and reports the
// events per second from start to every record applied.
func BenchmarkEndToEnd(b *testing.B) {
	c := loadCatalog(b, "taobao")
	kc := startBroker(b, 4)
	o := gen.Defaults(1)
	o.Users, o.Events, o.Disorder, o.DupRate = 20000, 200000, 0, 0
	events := gen.Events(c, o)
	newProducer(b, kc).send(b, encodeEvents(b, c, events))
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b, c, kc, b.TempDir())
		cfg.CheckpointInterval = time.Second
		cfg.Kafka.Group = "bench-" + itoa(int64(i))
		start := time.Now()
		in := startSpeed(b, cfg)
		in.waitApplied(b, int64(len(events)))
		total += time.Since(start)
		b.StopTimer()
		in.close(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(events))/total.Seconds(), "events/s")
}
