package benchrun

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

// streamStages pre-fill an in-process broker (kfake, real wire protocol)
// and time the speed layer and the landing consumer draining it, then
// drive lookups through the HTTP API while more events are ingested.
func (c Config) streamStages() []Stage {
	st := &streamBench{cfg: c, events: min(c.Events, c.StreamEvents)}
	return []Stage{
		{Name: "kafka pre-fill", Run: st.prefill},
		{Name: "speed end-to-end", Run: st.withBrokerCPU(st.speed)},
		{Name: "lookups @20k/s + ingest", Run: st.withBrokerCPU(st.lookups)},
		{Name: "landing end-to-end", Run: st.withBrokerCPU(st.landing)},
		{Name: "stream cleanup", Run: st.cleanup},
	}
}

// withBrokerCPU adds the broker process's CPU time during run to its
// result (none when the broker runs in this process: it is in CPU then).
func (b *streamBench) withBrokerCPU(run func(context.Context) (Result, error)) func(context.Context) (Result, error) {
	return func(ctx context.Context) (Result, error) {
		before := b.broker.cpu()
		r, err := run(ctx)
		r.BrokerCPU = b.broker.cpu() - before
		return r, err
	}
}

type streamBench struct {
	cfg    Config
	events int
	// ingested counts the events the lookup stage produced while it ran.
	ingested int64
	// topicBytes sums the keys and values of the records in the topic.
	topicBytes atomic.Int64
	broker     *benchBroker
	// ingest is the lookup stage's ingest written for the producer
	// process (nil: the stage produces it in this process).
	ingest *ingestFile
	kc     kafka.Config
	speedS *stream.Speed
	stop   context.CancelFunc
	done   chan error
	dir    string
}

const benchPartitions = 4

func (b *streamBench) prefill(ctx context.Context) (Result, error) {
	var err error
	b.dir, err = os.MkdirTemp(b.cfg.Dir, "stream-")
	if err != nil {
		return Result{}, err
	}
	b.broker, err = startBroker(context.WithoutCancel(ctx), b.cfg.BrokerCommand, benchPartitions)
	if err != nil {
		return Result{}, err
	}
	b.kc = kafka.DefaultConfig()
	b.kc.Brokers = []string{b.broker.addr}
	n, err := b.produce(ctx, b.cfg.Seed, b.events, 0)
	note := fmt.Sprintf("%d JSON events for %d users into %d partitions (not a target)", n, b.cfg.Users, benchPartitions)
	if err == nil && len(b.cfg.ProducerCommand) > 0 {
		b.ingest, err = writeIngest(b.cfg, ingestPath(b.dir), b.cfg.Seed+1, b.events)
		note += fmt.Sprintf("; the lookup stage's %d ingest events written to CSV for the producer process", b.events)
	}
	return Result{Items: n, Unit: "events", Note: note}, err
}

// liveSpan is the event-time span of the Kafka stages: live traffic covers
// the last hours, not the nine days of the batch data set (which would
// make the landing write a file per partition for every one of 216 hours).
const liveSpan = 2 * time.Hour

// ingestBatch is the messages per produce request of the Kafka stages'
// producers, in this process or in the producer process.
const ingestBatch = 4096

// produce sends count generated events keyed by user, at most rate per
// second (0: as fast as the broker takes them).
func (b *streamBench) produce(ctx context.Context, seed uint64, count int, rate int) (int64, error) {
	p, err := kafka.NewProducer(b.kc)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	o := ingestOptions(b.cfg, seed, count)
	batch := make([]kafka.Message, 0, ingestBatch)
	var n int64 // events the broker acknowledged
	began := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.Send(ctx, batch...); err != nil {
			return err
		}
		n += int64(len(batch))
		for _, m := range batch {
			b.topicBytes.Add(int64(len(m.Key) + len(m.Value)))
		}
		if rate > 0 {
			if d := time.Until(began.Add(time.Duration(n) * time.Second / time.Duration(rate))); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		batch = batch[:0]
		return nil
	}
	err = gen.Stream(b.cfg.Catalog, o, func(e *schemas.Event) error {
		batch = append(batch, kafka.Message{Key: []byte(source.Key(e.Values[b.cfg.Catalog.Key])), Value: source.AppendJSON(nil, b.cfg.Catalog, e.Values)})
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

func (b *streamBench) speed(ctx context.Context) (Result, error) {
	// The garbage collector as a deployment sets it (portrait run and
	// portrait speed); the lookup stage sets it again for its part.
	restoreGC, err := stream.DefaultGC().Apply(quiet())
	if err != nil {
		return Result{}, err
	}
	defer restoreGC()
	cfg := stream.Config{}
	cfg.Catalog = b.cfg.Catalog
	cfg.Kafka = b.kc
	cfg.StateDir = filepath.Join(b.dir, "speed")
	s, err := stream.New(cfg, quiet(), prometheus.NewRegistry())
	if err != nil {
		return Result{}, err
	}
	b.speedS = s
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stop, b.done = stop, make(chan error, 1)
	go func() { b.done <- s.Run(runCtx) }()
	err = waitFor(ctx, b.done, func() bool { return s.Applied() >= int64(b.events) })
	return Result{Items: s.Applied(), Unit: "events", Target: 250e3,
		Note: "consume + decode + apply + Pebble checkpoints"}, err
}

// ingestRate is the event rate produced while the lookups run: a steady
// live stream, not a backlog drained flat out (which would take both cores
// and measure the scheduler, not the lookups).
const ingestRate = 50_000

// lookupSeconds is how long the lookups run: long enough that the window
// holds the garbage collections this load causes (one every ~11 s with 1M
// users), not a lucky quiet stretch (5 s windows without one gave a p99 of
// 0.73–0.79 ms, 30 s windows with two 3.8–4.0 ms).
const lookupSeconds = 20

// lookups runs an open-loop load of 20k GET /v1/profiles/{id} per second
// for lookupSeconds through the lookup API's HTTP handler, in process (no
// socket: a loopback HTTP client on the same two cores would measure
// itself), while more events are produced and ingested.
//
// Requests are issued on a fixed schedule whatever the answers do (open
// loop): a pacer wakes about every millisecond, the resolution of Go's
// timers, and hands every request that is due to eight workers at once,
// so arrivals come in bursts of about twenty that queue behind each other.
// A request is timed from the moment it is issued, so queueing behind a
// stall counts against every request it delays (no coordinated omission).
// The pacer sleeps between bursts: a pacer spinning for microsecond
// precision would take one of the two cores from the system it measures.
// How late the pacer itself issued requests is reported in the note.
// The process runs with the speed layer's default runtime setting
// (stream.DefaultGC: GOGC 200, two Go processors per CPU), as a
// deployment does.
func (b *streamBench) lookups(ctx context.Context) (Result, error) {
	const rate, seconds, workers = 20_000, lookupSeconds, 8
	restoreGC, err := stream.DefaultGC().Apply(quiet())
	if err != nil {
		return Result{}, err
	}
	defer restoreGC()
	h, err := serving.NewHandler(b.cfg.Catalog, b.speedS, serving.Config{}, nil, quiet())
	if err != nil {
		return Result{}, err
	}
	stopIngest, err := b.startIngest(ctx)
	if err != nil {
		return Result{}, err
	}

	total := rate * seconds
	lat := make([]time.Duration, total)
	issued := make([]time.Time, total)
	var bad atomic.Int64
	due := make(chan int, total) // request indices, sent when issued
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var sw statusWriter
			for i := range due {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1/profiles/"+strconv.Itoa(1+r.IntN(b.cfg.Users)), nil)
				if err != nil {
					lat[i] = time.Since(issued[i])
					bad.Add(1)
					continue
				}
				sw.reset()
				h.ServeHTTP(&sw, req)
				lat[i] = time.Since(issued[i])
				if sw.code != http.StatusOK && sw.code != http.StatusNotFound {
					bad.Add(1)
				}
			}
		}(w)
	}
	began := time.Now()
	late := issue(began, rate, total, issued, due)
	wg.Wait()
	ingestNote, err := stopIngest() // the ingest stops when the lookups end
	note := fmt.Sprintf("open loop, %d req/s for %ds through the HTTP handler in process (GOMAXPROCS %d) while ingesting %d events/s%s, issued in ~1 ms bursts and timed from issue; pacer lateness p99 %v; target p99 ≤ 1ms; %d non-200/404 answers",
		rate, seconds, runtime.GOMAXPROCS(0), ingestRate, ingestNote, Result{Latencies: late}.Percentile(99).Round(time.Microsecond), bad.Load())
	return Result{Items: int64(total), Unit: "lookups", Latencies: lat, Note: note}, err
}

// startIngest starts the lookup stage's live ingest of ingestRate events
// per second: the producer process when the pre-fill wrote its file, else
// a goroutine here. stop ends it, sets b.ingested and says, for the note,
// where the ingest ran.
func (b *streamBench) startIngest(ctx context.Context) (stop func() (string, error), err error) {
	if b.ingest == nil {
		ingestCtx, cancel := context.WithCancel(ctx)
		ingested := make(chan int64, 1)
		go func() {
			n, _ := b.produce(ingestCtx, b.cfg.Seed+1, b.events, ingestRate) // cancelled by stop
			ingested <- n
		}()
		return func() (string, error) {
			cancel()
			b.ingested = <-ingested
			return " (produced in this process)", nil
		}, nil
	}
	p, err := startProducer(b.cfg.ProducerCommand, b.kc.Brokers, b.kc.Topic, ingestRate, b.ingest.path)
	if err != nil {
		return nil, err
	}
	return func() (string, error) {
		cpu, err := p.stop()
		// The topic's end offsets count what the child had sent, exactly:
		// the landing stage waits for all of them.
		total, oerr := topicRecords(b.kc, b.kc.Topic)
		if err == nil {
			err = oerr
		}
		if oerr == nil {
			b.ingested = total - int64(b.events)
			b.topicBytes.Add(b.ingest.bytesOf(b.ingested))
		}
		return fmt.Sprintf(" (%d events sent by a producer process, which used %.2f CPU-s (not counted))", b.ingested, cpu.Seconds()), err
	}, nil
}

// statusWriter is the lookup stage's http.ResponseWriter: it keeps the
// status and drops the body, reusing its header map, so that the load
// generator allocates little beside the requests (httptest's recorder
// and request parser would make it the largest allocator in the process,
// and the collections it causes would count against the lookups).
type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) reset() {
	if w.header == nil {
		w.header = http.Header{}
	}
	clear(w.header)
	w.code = 0
}

func (w *statusWriter) Header() http.Header { return w.header }

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// issue sends request i to due once began + i/rate has passed, in bursts
// of all requests due at each wake-up, stamping issued[i] just before. It
// returns how late each request was issued against its schedule.
func issue(began time.Time, rate, total int, issued []time.Time, due chan<- int) []time.Duration {
	late := make([]time.Duration, total)
	for i := 0; i < total; {
		time.Sleep(time.Millisecond)
		now := time.Now()
		for ; i < total; i++ {
			at := began.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if at.After(now) {
				break
			}
			issued[i], late[i] = now, now.Sub(at)
			due <- i
		}
	}
	close(due)
	return late
}

func (b *streamBench) landing(ctx context.Context) (Result, error) {
	b.stop()
	if err := <-b.done; err != nil {
		return Result{}, fmt.Errorf("speed layer: %w", err)
	}
	_ = b.speedS.Close()
	// The landing is timed from here: stopping the speed layer (its last
	// checkpoint) is not its work, and the collection in resetPeakRSS
	// frees the speed layer's heap, which the landing's collections
	// would otherwise mark again and again.
	b.speedS = nil
	resetPeakRSS()
	cpu0, t0 := cputime.Self(), time.Now()
	reg := prometheus.NewRegistry()
	cfg := landing.Config{}
	cfg.Catalog = b.cfg.Catalog
	cfg.Kafka = b.kc
	cfg.Warehouse = filepath.Join(b.dir, "landed")
	l, err := landing.New(cfg, quiet(), reg)
	if err != nil {
		return Result{}, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	// Once every record is consumed, a clean stop commits what is still
	// buffered to files (fsync, positions): the stage ends when Run
	// returns, so every row is durable without waiting for the roll age.
	want := float64(int64(b.events) + b.ingested) // the pre-fill and what the lookup stage ingested
	var first time.Duration                       // until the first record is consumed: joining the group, the first fetch
	err = waitFor(ctx, done, func() bool {
		n := counter(reg, "portrait_landing_records_consumed_total")
		if n > 0 && first == 0 {
			first = time.Since(t0)
		}
		return n >= want
	})
	drained := time.Since(t0)
	stop()
	if rerr := <-done; err == nil && rerr != nil {
		err = rerr
	}
	wall, cpu, peak := time.Since(t0), cputime.Self()-cpu0, peakRSS()
	rows := counter(reg, "portrait_landing_rows_total")
	files, written := counter(reg, "portrait_landing_files_total"), counter(reg, "portrait_landing_written_bytes_total")
	in := float64(b.topicBytes.Load())
	mb := func(x float64) float64 { return x / (1 << 20) }
	if err == nil && rows < want {
		err = fmt.Errorf("landing stopped with %.0f of %.0f rows in files", rows, want)
	}
	return Result{Items: int64(rows), Unit: "rows", Target: 1e6, Wall: wall, CPU: cpu, PeakRSS: peak,
		Note: fmt.Sprintf("join the group (first record after %v), consume + decode + Parquet files per (partition, hour) (all consumed after %v: %s rows/s between first and last record), clean stop once drained (last files committed with fsync); %.0f MB of records in: %.1f MB/s, %.1f MB/s per core, %.1f MB per CPU-s; %.0f Parquet files, %.1f MB in all (%.2f MB each, %.1f bytes/row); CPU excludes the speed layer's shutdown",
			first.Round(time.Millisecond), drained.Round(time.Millisecond), human(rows/max(drained-first, time.Millisecond).Seconds()),
			mb(in), mb(in)/wall.Seconds(), mb(in)/wall.Seconds()/float64(runtime.NumCPU()), mb(in)/cpu.Seconds(),
			files, mb(written), mb(written)/max(files, 1), written/max(rows, 1))}, err
}

func (b *streamBench) cleanup(context.Context) (Result, error) {
	b.broker.Close()
	return Result{Unit: "-"}, os.RemoveAll(b.dir)
}

// waitFor polls cond until it holds, the component stops, or ctx ends.
func waitFor(ctx context.Context, done <-chan error, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("stopped before catching up: %v", err)
		case <-t.C:
		}
	}
	return nil
}

func counter(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
