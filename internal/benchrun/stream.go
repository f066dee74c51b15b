package benchrun

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/loadgen"
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
// for lookupSeconds against the lookup API served over loopback HTTP/1.1
// (net/http, as `portrait speed` serves it), while more events are
// produced and ingested. The load generator (package loadgen: 32
// keep-alive connections, requests issued in ~1 ms bursts and timed from
// issue) runs in its own process when cfg.LoadgenCommand is set, so that
// the client's work and garbage do not share the server's runtime; its
// CPU is reported apart.
func (b *streamBench) lookups(ctx context.Context) (Result, error) {
	const rate, seconds, conns = 20_000, lookupSeconds, 32
	restoreGC, err := stream.DefaultGC().Apply(quiet())
	if err != nil {
		return Result{}, err
	}
	defer restoreGC()
	h, err := serving.NewHandler(b.cfg.Catalog, b.speedS, serving.Config{}, nil, quiet())
	if err != nil {
		return Result{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	stopIngest, err := b.startIngest(ctx)
	if err != nil {
		return Result{}, err
	}
	o := loadgen.Options{Addr: ln.Addr().String(), Rate: rate, Duration: seconds * time.Second, Users: b.cfg.Users, Conns: conns, Seed: b.cfg.Seed}
	res, client, err := b.load(ctx, o)
	ingestNote, ierr := stopIngest() // the ingest stops when the lookups end
	if err == nil {
		err = ierr
	}
	note := fmt.Sprintf("open loop, %d req/s for %ds over loopback HTTP/1.1 (%d keep-alive connections) while ingesting %d events/s%s; requests issued in ~1 ms bursts and timed from issue to the whole answer, by %s; pacer lateness p99 %v; target p99 ≤ 1ms; %d non-200/404 answers",
		rate, seconds, conns, ingestRate, ingestNote, client, Result{Latencies: res.Late}.Percentile(99).Round(time.Microsecond), res.Bad)
	return Result{Items: int64(len(res.Latency)), Unit: "lookups", Latencies: res.Latency, Note: note}, err
}

// load runs the lookup load: in the load generator process when
// cfg.LoadgenCommand is set, else in this one. client says, for the note,
// where it ran.
func (b *streamBench) load(ctx context.Context, o loadgen.Options) (res loadgen.Result, client string, err error) {
	if len(b.cfg.LoadgenCommand) == 0 {
		res, err = loadgen.Run(ctx, o)
		return res, "a client in this process", err
	}
	c := b.cfg.LoadgenCommand
	args := append(c[1:len(c):len(c)], "--addr", o.Addr, "--rate", strconv.Itoa(o.Rate),
		"--seconds", strconv.FormatFloat(o.Duration.Seconds(), 'f', -1, 64), "--users", strconv.Itoa(o.Users),
		"--conns", strconv.Itoa(o.Conns), "--seed", strconv.FormatUint(o.Seed, 10), "--log-level", "warn")
	cmd := exec.CommandContext(ctx, c[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, "", err
	}
	if err := cmd.Start(); err != nil {
		return res, "", fmt.Errorf("starting the load generator %v: %w", c, err)
	}
	res, decodeErr := loadgen.Decode(bufio.NewReader(out))
	if err := cmd.Wait(); err != nil {
		return res, "", fmt.Errorf("load generator %v: %w", c, err)
	}
	if decodeErr != nil {
		return res, "", decodeErr
	}
	st := cmd.ProcessState
	return res, fmt.Sprintf("a load generator process, which used %.2f CPU-s (not counted)", (st.UserTime() + st.SystemTime()).Seconds()), nil
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
