package landing

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/warehouse"
)

// BenchmarkLand lands a pre-filled 4-partition kfake topic (taobao
// events as JSON) into a fresh warehouse per iteration, from the first
// record to the last committed file, and reports rows/s, MB/s of JSON
// consumed, CPU seconds per million rows and the files produced.
func BenchmarkLand(b *testing.B) {
	const n = 400_000
	c := loadCatalog(b, "taobao")
	kc := kafkatest.StartBroker(b, testTopic, 4)
	o := gen.Defaults(1)
	o.Users, o.Events, o.DupRate, o.Partitions = 20000, n, 0, 4
	o.Span = 2 * 3600 * 1000 // a live stream: two hours of events
	events := gen.Events(c, o)
	recs := kafkatest.EncodeEvents(b, c, events, -1)
	var jsonBytes int64
	for _, r := range recs {
		jsonBytes += int64(len(r.Key) + len(r.Value))
	}
	kafkatest.NewProducer(b, kc, false).Send(b, recs)
	b.ResetTimer()
	var cpu, wall time.Duration
	var files, bytes float64
	for i := range b.N {
		cfg := testConfig(c, kc, b.TempDir())
		cfg.Kafka.Group = fmt.Sprintf("bench-%d", i)
		cfg.RollBytes = 16 << 20
		cfg.RollAge = time.Second
		cpu0 := cpuTime()
		start := time.Now()
		in := startLander(b, cfg)
		waitFor(b, 5*time.Minute, "all rows landed", func() bool { return counter(in.l.m.rows) >= n })
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
		files += counter(in.l.m.files)
		bytes += counter(in.l.m.bytes)
		in.stop(b)
	}
	rows := float64(n) * float64(b.N)
	b.ReportMetric(rows/wall.Seconds(), "rows/s")
	b.ReportMetric(float64(jsonBytes)*float64(b.N)/wall.Seconds()/1e6, "MB/s")
	b.ReportMetric(cpu.Seconds()/(rows/1e6), "cpu-s/Mrows")
	b.ReportMetric(files/float64(b.N), "files")
	b.ReportMetric(bytes/files, "bytes/file")
	b.ReportMetric(bytes/rows, "bytes/row")
	_ = warehouse.EventsTable
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
