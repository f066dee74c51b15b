package benchrun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Config sizes the benchmark data set and says where it lives.
type Config struct {
	Catalog *schemas.Catalog
	Users   int
	Events  int
	Seed    uint64
	// Dir holds the generated data and the warehouse; it is kept between
	// runs so that a second run can skip generation.
	Dir string
	// ClickHouse, when set, adds the ClickHouse stages (DSN).
	ClickHouse string
	// StreamEvents caps the events of the Kafka stages (they live in the
	// in-process broker's memory); 0 skips those stages.
	StreamEvents int
	// BrokerCommand, when set, runs the Kafka stages' broker as this child
	// process (`portrait broker`: it gets --listen, --partitions and
	// --log-level and prints its address first); its CPU is reported apart
	// from the pipeline's. Empty: the broker runs in this process.
	BrokerCommand []string
	// ProducerCommand, when set, runs the live ingest of the lookup stage
	// as this child process (`portrait produce --catalog C`: it gets
	// --brokers, --topic, --rate, --batch, --log-level and the CSV file the
	// pre-fill writes), as producers are other services in production;
	// its CPU is reported in the stage's note, not counted. Empty: the
	// ingest is produced by a goroutine in this process.
	ProducerCommand []string
	Log             *slog.Logger
	Progress        io.Writer
}

// Span of the generated events: nine days, like the Taobao sample.
const span = 9 * 24 * time.Hour

var start = schemas.Timestamp(1511568000000) // 2017-11-25T00:00:00Z

// cutoff is the recompute cutoff: the end of the generated span.
func (c Config) cutoff() schemas.Timestamp {
	return c.Catalog.BucketStart(start + schemas.Timestamp(span.Milliseconds()))
}

// batchStages generate the data, import it and recompute locally.
func (c Config) batchStages() []Stage {
	csvPath := filepath.Join(c.Dir, fmt.Sprintf("%s-%d-%d-%d.csv", c.Catalog.Name, c.Events, c.Users, c.Seed))
	root := filepath.Join(c.Dir, "warehouse")
	return []Stage{
		{Name: "gen csv", Run: func(ctx context.Context) (Result, error) {
			if _, err := os.Stat(csvPath); err == nil {
				return Result{Unit: "events", Note: "reused " + csvPath}, nil
			}
			return c.generate(csvPath)
		}},
		{Name: "import (csv→parquet)", Run: func(ctx context.Context) (Result, error) {
			if err := os.RemoveAll(root); err != nil {
				return Result{}, err
			}
			st, err := warehouse.Import(ctx, warehouse.ImportConfig{
				Root: root, Catalog: c.Catalog, Files: []string{csvPath}, Logger: c.Log,
			})
			return Result{Items: st.Imported, Unit: "rows",
				Note: "parses and validates CSV, buffers, writes Parquet with fsync per hour; the 1M rows/s target is the Parquet write's (next row)"}, err
		}},
		{Name: "compact", Run: func(ctx context.Context) (Result, error) {
			// As the scheduled compact job leaves the warehouse: an hour's
			// files (one per import chunk that touched the hour) merged and
			// clustered by key.
			st, err := warehouse.Compact(ctx, root, c.Catalog, math.MinInt64, math.MaxInt64, warehouse.CompactOptions{})
			return Result{Items: st.Rows, Unit: "rows", Bytes: st.BytesOut,
				Note: fmt.Sprintf("merges %d files into %d, rows clustered by key (the recompute below reads these)", st.FilesIn, st.FilesOut)}, err
		}},
		{Name: "parquet write", Run: func(ctx context.Context) (Result, error) {
			return c.parquetWrite(filepath.Join(c.Dir, "write-bench.parquet"))
		}},
		{Name: "recompute local", Run: func(ctx context.Context) (Result, error) {
			st, err := batch.Recompute(ctx, batch.Config{
				Root: root, Catalog: c.Catalog, Cutoff: c.cutoff(), Engine: batch.EngineLocal, Full: true, Logger: c.Log,
			})
			return Result{Items: st.Events, Unit: "events", Target: 8e6,
				Note: fmt.Sprintf("reads %d hours, computes %d tags for %d users, writes the snapshot", st.Hours, len(c.Catalog.Tags), st.Users)}, err
		}},
	}
}

// parquetWrite times the Parquet writer alone (the import's target): up to
// 4M generated events, already in typed column buffers, written as
// 1M-row files with fsync.
func (c Config) parquetWrite(path string) (Result, error) {
	n := min(c.Events, 4_000_000)
	const perFile = 1_000_000
	o := gen.Options{Seed: c.Seed, Users: c.Users, Events: n, Start: start, Span: span.Milliseconds(), Partitions: 1, Cardinality: 5000}
	var files []*warehouse.EventColumns
	cols := warehouse.NewEventColumns(c.Catalog)
	err := gen.Stream(c.Catalog, o, func(e *schemas.Event) error {
		if cols.Len() == perFile {
			files = append(files, cols)
			cols = warehouse.NewEventColumns(c.Catalog)
		}
		return cols.Append(e)
	})
	if err != nil {
		return Result{}, err
	}
	files = append(files, cols)
	// Only the writes are timed: generation is not the writer's cost.
	var r Result
	r, err = Measure("parquet write", func() (Result, error) {
		var bytes int64
		for i, f := range files {
			mf, err := warehouse.WriteEventColumnsFile(fmt.Sprintf("%s.%d", path, i), f, 1)
			if err != nil {
				return Result{}, err
			}
			bytes += mf.Bytes
		}
		return Result{Items: int64(n), Unit: "rows", Bytes: bytes, Target: 1e6,
			Note: fmt.Sprintf("typed column buffers to Parquet with fsync, %d files, %.1f bytes/row", len(files), float64(bytes)/float64(n))}, nil
	})
	for i := range files {
		_ = os.Remove(fmt.Sprintf("%s.%d", path, i))
	}
	return r, err
}

func (c Config) generate(path string) (Result, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Result{}, err
	}
	tmp := path + ".tmp"
	o := gen.Options{Seed: c.Seed, Users: c.Users, Events: c.Events, Start: start, Span: span.Milliseconds(),
		Partitions: 1, TieRate: 0.02, Cardinality: 5000}
	n := int64(0)
	err := writeCSV(tmp, c.Catalog, o, func(*schemas.Event) {
		n++
		if c.Progress != nil && n%2_000_000 == 0 {
			fmt.Fprintf(c.Progress, "  gen: %d of %d events\n", n, c.Events)
		}
	})
	if err != nil {
		return Result{}, fmt.Errorf("generating %s: %w", path, err)
	}
	return Result{Items: n, Unit: "events"}, os.Rename(tmp, path)
}

// writeCSV writes the events o generates to a CSV file at path, calling
// each with every event first.
func writeCSV(path string, c *schemas.Catalog, o gen.Options, each func(*schemas.Event)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := gen.NewWriter(f, c, "csv")
	if err != nil {
		_ = f.Close()
		return err
	}
	err = gen.Stream(c, o, func(e *schemas.Event) error {
		each(e)
		return w.Write(e)
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stage is one named step of the benchmark.
type Stage struct {
	Name string
	Run  func(ctx context.Context) (Result, error)
}

// RunOptions are how Run reports: progress lines, and optionally a CPU
// profile or an execution trace of every stage.
type RunOptions struct {
	Progress io.Writer
	// ProfileDir, when set, receives <stage>.cpu.pprof for each stage
	// (go tool pprof), TraceDir <stage>.trace (go tool trace).
	ProfileDir, TraceDir string
}

// Run runs the stages in order, printing a line as each finishes, and
// returns their results. It stops at the first error.
func Run(ctx context.Context, stages []Stage, opts RunOptions) ([]Result, error) {
	var out []Result
	for _, s := range stages {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: %s …\n", s.Name)
		}
		stop, err := opts.record(s.Name)
		if err != nil {
			return out, err
		}
		r, err := Measure(s.Name, func() (Result, error) { return s.Run(ctx) })
		if serr := stop(); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			return out, fmt.Errorf("bench stage %q: %w", s.Name, err)
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: %s: %d %s in %s\n", s.Name, r.Items, r.Unit, r.Wall.Round(time.Millisecond))
		}
		out = append(out, r)
	}
	return out, nil
}

// record starts the CPU profile and the execution trace of a stage as
// opts ask; stop ends them and closes their files.
func (opts RunOptions) record(stage string) (stop func() error, err error) {
	name := strings.Map(func(r rune) rune { // "import (csv→parquet)" → "import-csv-parquet"
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(stage))
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	name = strings.Trim(name, "-")
	var files []*os.File
	var stops []func()
	stop = func() error {
		for _, f := range stops {
			f()
		}
		var err error
		for _, f := range files {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		return err
	}
	open := func(dir, suffix string, start func(io.Writer) error, end func()) error {
		if dir == "" {
			return nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, name+suffix))
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := start(f); err != nil {
			return fmt.Errorf("recording %s: %w", f.Name(), err)
		}
		stops = append(stops, end)
		return nil
	}
	if err := open(opts.ProfileDir, ".cpu.pprof", pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		_ = stop()
		return nil, err
	}
	if err := open(opts.TraceDir, ".trace", trace.Start, trace.Stop); err != nil {
		_ = stop()
		return nil, err
	}
	return stop, nil
}

// clickhouseStages load the warehouse's events into ClickHouse, run the
// SQL engine over them and publish the local engine's snapshot.
func (c Config) clickhouseStages() []Stage {
	root := filepath.Join(c.Dir, "warehouse")
	var client *clickhouse.Client
	var profiles []schemas.Profile
	note := "work runs inside the ClickHouse server: CPU column is this process only"
	return []Stage{
		{Name: "clickhouse load events", Run: func(ctx context.Context) (Result, error) {
			cfg, err := clickhouse.ParseDSN(c.ClickHouse)
			if err != nil {
				return Result{}, err
			}
			if client, err = clickhouse.Open(ctx, cfg); err != nil {
				return Result{}, fmt.Errorf("connecting to ClickHouse (start it with deploy/local/clickhouse.sh start): %w", err)
			}
			if err := client.Exec(ctx, "DROP TABLE IF EXISTS "+clickhouse.QuoteIdent(chbatch.EventsTable)); err != nil {
				return Result{}, err
			}
			hours, err := warehouse.ListHours(root, math.MinInt64, math.MaxInt64)
			if err != nil {
				return Result{}, err
			}
			ts := make([]schemas.Timestamp, len(hours))
			for i, h := range hours {
				ts[i] = h.Start
			}
			rows, err := chbatch.LoadHours(ctx, client, c.Catalog, root, ts)
			return Result{Items: rows, Unit: "rows", Note: "reads Parquet, inserts per hour via staging + REPLACE PARTITION"}, err
		}},
		{Name: "recompute clickhouse", Run: func(ctx context.Context) (Result, error) {
			ps, err := chbatch.Engine{Client: client}.Compute(ctx, c.Catalog, c.cutoff())
			var events uint64
			if err == nil {
				err = client.Conn().QueryRow(ctx, "SELECT count() FROM "+clickhouse.QuoteIdent(chbatch.EventsTable)).Scan(&events)
			}
			return Result{Items: int64(events), Unit: "events", Note: fmt.Sprintf("%s; %d users", note, len(ps))}, err
		}},
		{Name: "read snapshot", Run: func(ctx context.Context) (Result, error) {
			var err error
			profiles, err = batch.ReadSnapshot(root, c.Catalog, c.cutoff())
			return Result{Items: int64(len(profiles)), Unit: "rows"}, err
		}},
		{Name: "clickhouse publish", Run: func(ctx context.Context) (Result, error) {
			err := chbatch.Publisher{Client: client}.Publish(ctx, c.Catalog, c.cutoff(), profiles)
			return Result{Items: int64(len(profiles)), Unit: "rows", TargetTotal: 1e6, Note: note}, err
		}},
	}
}

// Stages returns every stage the configuration asks for.
func (c Config) Stages() []Stage {
	stages := c.batchStages()
	if c.ClickHouse != "" {
		stages = append(stages, c.clickhouseStages()...)
	}
	if c.StreamEvents > 0 {
		stages = append(stages, c.streamStages()...)
	}
	return stages
}
