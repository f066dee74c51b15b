package benchrun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/portrait-dev/portrait/batch"
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
	Log        *slog.Logger
	Progress   io.Writer
}

// Span of the generated events: nine days, like the Taobao sample.
const span = 9 * 24 * time.Hour

var start = schemas.Timestamp(1511568000000) // 2017-11-25T00:00:00Z

// cutoff is the recompute cutoff: the end of the generated span.
func (c Config) cutoff() schemas.Timestamp {
	return c.Catalog.BucketStart(start + schemas.Timestamp(span.Milliseconds()))
}

// Stages returns the batch stages: generate, import, local recompute.
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
			return Result{Items: st.Imported, Unit: "rows", Target: 1e6,
				Note: "parses CSV, validates, writes Parquet with fsync (target is for the Parquet write)"}, err
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

func (c Config) generate(path string) (Result, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Result{}, err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return Result{}, err
	}
	w, err := gen.NewWriter(f, c.Catalog, "csv")
	if err != nil {
		return Result{}, err
	}
	o := gen.Options{Seed: c.Seed, Users: c.Users, Events: c.Events, Start: start, Span: span.Milliseconds(),
		Partitions: 1, TieRate: 0.02, Cardinality: 5000}
	n := int64(0)
	err = gen.Stream(c.Catalog, o, func(e *schemas.Event) error {
		n++
		if c.Progress != nil && n%2_000_000 == 0 {
			fmt.Fprintf(c.Progress, "  gen: %d of %d events\n", n, c.Events)
		}
		return w.Write(e)
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("generating %s: %w", path, err)
	}
	return Result{Items: n, Unit: "events"}, os.Rename(tmp, path)
}

// Stage is one named step of the benchmark.
type Stage struct {
	Name string
	Run  func(ctx context.Context) (Result, error)
}

// Run runs the stages in order, printing a line as each finishes, and
// returns their results. It stops at the first error.
func Run(ctx context.Context, stages []Stage, progress io.Writer) ([]Result, error) {
	var out []Result
	for _, s := range stages {
		if progress != nil {
			fmt.Fprintf(progress, "bench: %s …\n", s.Name)
		}
		r, err := Measure(s.Name, func() (Result, error) { return s.Run(ctx) })
		if err != nil {
			return out, fmt.Errorf("bench stage %q: %w", s.Name, err)
		}
		if progress != nil {
			fmt.Fprintf(progress, "bench: %s: %d %s in %s\n", s.Name, r.Items, r.Unit, r.Wall.Round(time.Millisecond))
		}
		out = append(out, r)
	}
	return out, nil
}
