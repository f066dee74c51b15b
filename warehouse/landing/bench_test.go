package landing

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/kafkatest"
)

// BenchmarkLand lands a pre-filled 4-partition kfake topic (taobao
// events as JSON) into a fresh warehouse per iteration, from the first
// record to the last committed file, and reports rows/s, MB/s of JSON
// consumed, CPU seconds per million rows and the files produced. land
// waits for the last files to roll (by size, or at the 1 s roll age);
// drained stops the landing as soon as every record is read, and a clean
// stop commits what is buffered, so it times reading, decoding and
// writing without waiting for the roll age. runq-s is the time this
// process's threads spent ready to run but waiting for a CPU (Linux
// schedstat): on a shared machine it tells a landing that could not get
// the cores from one that did not use them.
//
// The sub-benchmark consume-only reads the same records with the same
// sarama configuration and drops them: its CPU is what the in-process
// broker and sarama's fetch decoding cost, so land minus consume-only is
// the landing's own cost. The landing's goroutines (and sarama's, which
// they start) carry the profiler label side=landing; the broker's do not:
// `go tool pprof -tagfocus side=landing` shows the client side alone.
//
// With PORTRAIT_BENCH_BROKERS=host:port (e.g. a `portrait broker` in
// another process) the topic is created there, under a fresh name, and
// the CPU figures are the landing's (and sarama's) alone.
// PORTRAIT_BENCH_LAND_ROWS changes the 400k rows: the group join and the
// buffers' first growth cost about 0.1 CPU-s per run, which 400k rows
// do not amortize (2M rows: ~0.25 CPU-s/Mrows less).
func BenchmarkLand(b *testing.B) {
	n := 400_000
	if v := os.Getenv("PORTRAIT_BENCH_LAND_ROWS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	c := loadCatalog(b, "taobao")
	kc := benchBroker(b)
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

	report := func(b *testing.B, cpu, wall time.Duration) {
		rows := float64(n) * float64(b.N)
		b.ReportMetric(rows/wall.Seconds(), "rows/s")
		b.ReportMetric(float64(jsonBytes)*float64(b.N)/wall.Seconds()/1e6, "MB/s")
		b.ReportMetric(cpu.Seconds()/(rows/1e6), "cpu-s/Mrows")
		b.ReportMetric(rows/cpu.Seconds(), "rows/cpu-s")
	}
	labels := pprof.Labels("side", "landing")

	land := func(b *testing.B, drained bool) {
		var cpu, wall, runq time.Duration
		var files, bytes float64
		for i := range b.N {
			cfg := testConfig(c, kc, b.TempDir())
			cfg.Kafka.Group = fmt.Sprintf("bench-%t-%d-%d", drained, b.N, i)
			cfg.RollBytes = 16 << 20
			cfg.RollAge = time.Second
			runq0 := runqWait()
			cpu0 := cputime.Self()
			start := time.Now()
			var in *instance
			pprof.Do(context.Background(), labels, func(context.Context) { in = startLander(b, cfg) })
			if drained {
				waitFor(b, 5*time.Minute, "all records read", func() bool { return counter(in.l.m.consumed) >= float64(n) })
				in.stop(b)
			} else {
				waitFor(b, 5*time.Minute, "all rows landed", func() bool { return counter(in.l.m.rows) >= float64(n) })
			}
			wall += time.Since(start)
			cpu += cputime.Self() - cpu0
			runq += runqWait() - runq0
			require.Equal(b, float64(n), counter(in.l.m.rows))
			files += counter(in.l.m.files)
			bytes += counter(in.l.m.bytes)
			in.stop(b)
		}
		report(b, cpu, wall)
		b.ReportMetric(files/float64(b.N), "files")
		b.ReportMetric(bytes/(float64(n)*float64(b.N)), "bytes/row")
		b.ReportMetric(runq.Seconds()/float64(b.N), "runq-s")
	}
	b.Run("land", func(b *testing.B) { land(b, false) })
	b.Run("drained", func(b *testing.B) { land(b, true) })

	b.Run("consume-only", func(b *testing.B) {
		var cpu, wall time.Duration
		for i := range b.N {
			kcfg := kc
			kcfg.Group = fmt.Sprintf("drain-%d-%d", b.N, i)
			cpu0 := cputime.Self()
			start := time.Now()
			pprof.Do(context.Background(), labels, func(context.Context) { drain(b, kcfg, int64(n)) })
			wall += time.Since(start)
			cpu += cputime.Self() - cpu0
		}
		report(b, cpu, wall)
	})
}

// benchBroker is the broker of BenchmarkLand: PORTRAIT_BENCH_BROKERS
// with a new 4-partition topic, or an in-process one.
func benchBroker(b *testing.B) kafka.Config {
	addr := os.Getenv("PORTRAIT_BENCH_BROKERS")
	if addr == "" {
		return kafkatest.StartBroker(b, testTopic, 4)
	}
	kc := kafkatest.Config(strings.Split(addr, ","), fmt.Sprintf("land-bench-%d", time.Now().UnixNano()))
	require.NoError(b, kafka.EnsureTopics(context.Background(), kc,
		[]kafka.TopicSpec{{Name: kc.Topic, Partitions: 4}, {Name: kc.DLQTopic, Partitions: 1}}))
	return kc
}

// drain reads n records of the topic through a consumer group with the
// landing's sarama configuration and drops them.
func drain(b *testing.B, kc kafka.Config, n int64) {
	kc.ApplyDefaults()
	sc, err := saramaConfig(kc)
	require.NoError(b, err)
	var tuning kafka.ConsumerTuning
	tuning.ApplyDefaults()
	tuning.SessionTimeout, tuning.RebalanceTimeout = 2*time.Second, 2*time.Second
	g, err := kafka.OpenGroup(kc, tuning, sc)
	require.NoError(b, err)
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &drainHandler{n: n, done: cancel}
	_ = g.Run(ctx, []string{kc.Topic}, h, slog.New(slog.DiscardHandler))
	require.GreaterOrEqual(b, h.got.Load(), n)
}

type drainHandler struct {
	n    int64
	got  atomic.Int64
	done context.CancelFunc
}

func (h *drainHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *drainHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *drainHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	msgs := make([]*sarama.ConsumerMessage, 0, maxBatch)
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs = kafka.AppendWaiting(append(msgs[:0], m), claim.Messages(), maxBatch)
			if h.got.Add(int64(len(msgs))) >= h.n {
				h.done()
			}
		}
	}
}

// runqWait is the time the threads of this process have spent ready to
// run but waiting for a CPU, from /proc/self/task/*/schedstat (0 where
// there is none; threads that exited are not counted).
func runqWait() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		// on-CPU ns, run-queue wait ns, time slices
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}
