package stream

import (
	"flag"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
)

// The sizes of the benchmarks: small by default so that CI runs them
// quickly; the targets are for 1M users, e.g.
//
//	go test ./stream -run '^$' -bench EndToEnd -benchtime 1x -bench.users 1000000 -bench.events 2000000
var (
	benchUsers  = flag.Int("bench.users", 20_000, "users in BenchmarkEndToEnd and BenchmarkLookupUnderIngest (the targets are for 1M)")
	benchEvents = flag.Int("bench.events", 200_000, "events in BenchmarkEndToEnd and BenchmarkLookupUnderIngest (2M with 1M users)")
	benchGC     = flag.Int("bench.gcpercent", DefaultGCPercent, "GOGC of the benchmarks (0: the runtime's, from the GOGC variable); the default is a deployment's")
	benchHeap   = flag.String("bench.heapprofile", "", "write a heap profile of the live state to this file once BenchmarkEndToEnd or BenchmarkMarkState applied every event")
	benchCPU    = flag.String("bench.cpuprofile", "", "write a CPU profile of BenchmarkEndToEnd's first timed span (not the pre-fill) to this file")
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
	count, _ := prefill(b, c, kc)
	setGC(b)
	b.ResetTimer()
	var total, cpu time.Duration
	var gc gcUsage
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b, c, kc, b.TempDir())
		cfg.CheckpointInterval = time.Second
		cfg.Kafka.Group = "bench-" + itoa(int64(i))
		stopProfile := startCPUProfile(b, i)
		start, cpu0 := time.Now(), cpuTime(b)
		gc.start()
		in := startSpeed(b, cfg)
		in.waitApplied(b, int64(count))
		total += time.Since(start)
		cpu += cpuTime(b) - cpu0
		stopProfile()
		b.StopTimer()
		gc.stop()
		if *benchHeap != "" {
			writeHeapProfile(b, *benchHeap)
		}
		in.close(b)
		b.StartTimer()
	}
	n := float64(b.N * count)
	b.ReportMetric(n/total.Seconds(), "events/s")
	b.ReportMetric(n/cpu.Seconds(), "events/cpu-s")
	gc.report(b)
}

// startCPUProfile starts the CPU profile -bench.cpuprofile asks for in
// the first iteration and returns the function that stops it.
func startCPUProfile(b *testing.B, iteration int) (stop func()) {
	if *benchCPU == "" || iteration > 0 {
		return func() {}
	}
	f, err := os.Create(*benchCPU)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// setGC sets the garbage collector as -bench.gcpercent says for the rest
// of the benchmark.
func setGC(b *testing.B) {
	restore, err := GC{Percent: *benchGC}.Apply(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(restore)
}

// writeHeapProfile writes the profile of the live heap to file.
func writeHeapProfile(b *testing.B, file string) {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// prefill produces the benchmark's events (taobao catalog, -bench.users
// and -bench.events, in order, no duplicates) to the topic and returns
// their count and the distinct user keys. The events themselves are
// dropped and collected before the timer starts: holding them would make
// the garbage collector of the process under test scan them.
func prefill(b *testing.B, c *schemas.Catalog, kc kafka.Config) (int, []any) {
	o := gen.Defaults(1)
	o.Users, o.Events, o.Disorder, o.DupRate = *benchUsers, *benchEvents, 0, 0
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
	count := len(events)
	events, seen = nil, nil
	runtime.GC()
	return count, keys
}

// gcUsage sums the garbage collector's share of the process CPU (the
// runtime's estimate) over the timed spans, and keeps the largest live
// heap (bytes and objects) measured by a full collection after each.
type gcUsage struct {
	gcCPU, allCPU float64
	heap, objects uint64
	samples       []rtmetrics.Sample
}

func (g *gcUsage) read() (gc, all float64) {
	if g.samples == nil {
		g.samples = []rtmetrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"},
			{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/objects:objects"}}
	}
	rtmetrics.Read(g.samples)
	return g.samples[0].Value.Float64(), g.samples[1].Value.Float64()
}

func (g *gcUsage) start() {
	gc, all := g.read()
	g.gcCPU -= gc
	g.allCPU -= all
}

// stop ends a timed span. It collects garbage to measure the live heap:
// call it with the timer stopped, before the state is released.
func (g *gcUsage) stop() {
	gc, all := g.read()
	g.gcCPU += gc
	g.allCPU += all
	runtime.GC()
	g.read()
	g.heap = max(g.heap, g.samples[2].Value.Uint64())
	g.objects = max(g.objects, g.samples[3].Value.Uint64())
}

func (g *gcUsage) report(b *testing.B) {
	if g.allCPU > 0 {
		b.ReportMetric(g.gcCPU/g.allCPU, "gc-cpu-share")
	}
	b.ReportMetric(float64(g.heap)/(1<<20), "live-heap-MB")
	b.ReportMetric(float64(g.objects), "heap-objects")
}

// BenchmarkLookupUnderIngest looks users up at a fixed rate (20k/s, open
// loop from two goroutines) while the speed layer drains a pre-filled
// topic flat out, and reports the lookup latency percentiles over the
// ingest. Each lookup is timed from its scheduled start, so a stall
// counts against every lookup it delays.
func BenchmarkLookupUnderIngest(b *testing.B) {
	const rate = 20000 // lookups per second
	c := loadCatalog(b, "taobao")
	kc := kafkatest.StartBroker(b, testTopic, 4)
	count, keys := prefill(b, c, kc)
	setGC(b)
	b.ResetTimer()
	var lat []time.Duration
	var found, total int
	var gc gcUsage
	for i := 0; i < b.N; i++ {
		cfg := testConfig(b, c, kc, b.TempDir())
		cfg.CheckpointInterval = time.Second
		cfg.Kafka.Group = "lookup-" + itoa(int64(i))
		gc.start()
		in := startSpeed(b, cfg)
		stop := make(chan struct{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		began := time.Now()
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), uint64(i)))
				var mine []time.Duration
				hits := 0
				defer func() {
					mu.Lock()
					lat = append(lat, mine...)
					found += hits
					mu.Unlock()
				}()
				// Lookup j of this goroutine is due at began + (2j+w)/rate.
				for j := 0; ; j++ {
					at := began.Add(time.Duration(2*j+w) * time.Second / rate)
					// Sleep only while the lookup is more than a
					// millisecond away: Go's timers wake shorter sleeps
					// up to a millisecond late, which would count as
					// latency. Yield for the rest.
					for d := time.Until(at); d > 0; d = time.Until(at) {
						select {
						case <-stop:
							return
						default:
						}
						if d > time.Millisecond {
							time.Sleep(d - time.Millisecond)
						} else {
							runtime.Gosched()
						}
					}
					select {
					case <-stop:
						return
					default:
					}
					_, ok := in.s.Lookup(keys[rng.IntN(len(keys))])
					mine = append(mine, time.Since(at))
					if ok {
						hits++
					}
				}
			}()
		}
		in.waitApplied(b, int64(count))
		close(stop)
		wg.Wait()
		b.StopTimer()
		gc.stop()
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
	gc.report(b)
}
