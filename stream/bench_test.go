package stream

import (
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
)

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEndToEnd consumes a pre-filled kfake topic (taobao catalog,
// JSON events) with a fresh state store each iteration and reports the
// events per second from start to every record applied, and the events
// per CPU-second of the whole process (the in-process broker included).
func BenchmarkEndToEnd(b *testing.B) {
	c := loadCatalog(b, "taobao")
	kc := kafkatest.StartBroker(b, testTopic, 4)
	o := gen.Defaults(1)
	o.Users, o.Events, o.Disorder, o.DupRate = 20000, 200000, 0, 0
	events := gen.Events(c, o)
	kafkatest.NewProducer(b, kc, false).Send(b, kafkatest.EncodeEvents(b, c, events, -1))
	b.ResetTimer()
	var total, cpu time.Duration
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b, c, kc, b.TempDir())
		cfg.CheckpointInterval = time.Second
		cfg.Kafka.Group = "bench-" + itoa(int64(i))
		start, cpu0 := time.Now(), cpuTime(b)
		in := startSpeed(b, cfg)
		in.waitApplied(b, int64(len(events)))
		total += time.Since(start)
		cpu += cpuTime(b) - cpu0
		b.StopTimer()
		in.close(b)
		b.StartTimer()
	}
	n := float64(b.N * len(events))
	b.ReportMetric(n/total.Seconds(), "events/s")
	b.ReportMetric(n/cpu.Seconds(), "events/cpu-s")
}

// BenchmarkLookupUnderIngest looks users up at a fixed rate (20k/s, from
// two goroutines, catching up after missed ticks) while the speed layer
// consumes a pre-filled topic, and reports the lookup latency
// percentiles over the ingest.
func BenchmarkLookupUnderIngest(b *testing.B) {
	const rate = 20000 // lookups per second
	c := loadCatalog(b, "taobao")
	kc := kafkatest.StartBroker(b, testTopic, 4)
	o := gen.Defaults(1)
	o.Users, o.Events, o.Disorder, o.DupRate = 20000, 200000, 0, 0
	events := gen.Events(c, o)
	kafkatest.NewProducer(b, kc, false).Send(b, kafkatest.EncodeEvents(b, c, events, -1))
	keys := make([]any, 0, o.Users)
	seen := map[any]bool{}
	for i := range events {
		if k := events[i].Values[c.Key]; !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	b.ResetTimer()
	var lat []time.Duration
	var found, total int
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b, c, kc, b.TempDir())
		cfg.CheckpointInterval = time.Second
		cfg.Kafka.Group = "lookup-" + itoa(int64(i))
		in := startSpeed(b, cfg)
		stop := make(chan struct{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), uint64(i)))
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				var mine []time.Duration
				hits, issued := 0, 0
				start := time.Now()
				for {
					select {
					case <-stop:
						mu.Lock()
						lat = append(lat, mine...)
						found += hits
						mu.Unlock()
						return
					case <-tick.C:
					}
					// Catch up with the rate when ticks were missed.
					due := int(time.Since(start).Seconds()*rate/2) - issued
					issued += due
					for range due {
						k := keys[rng.IntN(len(keys))]
						t0 := time.Now()
						_, ok := in.s.Lookup(k)
						mine = append(mine, time.Since(t0))
						if ok {
							hits++
						}
					}
				}
			}()
		}
		in.waitApplied(b, int64(len(events)))
		close(stop)
		wg.Wait()
		b.StopTimer()
		in.close(b)
		b.StartTimer()
	}
	total = len(lat)
	slices.Sort(lat)
	pct := func(q float64) float64 {
		if total == 0 {
			return 0
		}
		return float64(lat[min(int(q*float64(total)), total-1)].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
	b.ReportMetric(pct(1), "max-µs")
	b.ReportMetric(float64(total), "lookups")
	b.ReportMetric(float64(found)/float64(max(total, 1)), "found-ratio")
}
