package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

func init() { commands = append(commands, newImportCmd()) }

func newImportCmd() *cobra.Command {
	var (
		catalogPath, root, rejects, format, dsn string
		chunkRows                               int
		quiet                                   bool
	)
	cmd := &cobra.Command{
		Use:   "import --catalog C --warehouse DIR FILE...",
		Short: "Import CSV or JSON Lines event files into the warehouse's events table",
		Long: `import validates every row of the files against the catalog and writes the
good rows into warehouse/events/dt=…/hour=…/ as Parquet, closing each hour it
writes with _SUCCESS.

Formats (the same rules as produce): CSV without a header (columns in the
catalog's field order), CSV whose first line is a header (every cell a field
name, every field named once; columns in any order), and JSON Lines (.jsonl,
.ndjson, .json: one object per line keyed by field name; other keys are
ignored); .gz files are decompressed. One row per line: blank lines are
skipped, and a final line without a trailing newline is a truncated record
and is rejected.

A row that does not parse or validate is written to
<warehouse>/_rejects/<file>.<sha256 prefix>.rejects.jsonl with its file,
line, reason and text; nothing is dropped silently. An imported row's
_partition is the file's import partition (1048576 + its ordinal) and its
_offset the line number, so among equal event times the later line is last.

Imports are idempotent: the ledger in <warehouse>/_imports/ is keyed by the
SHA-256 of the content, so importing the same content again does nothing,
and an interrupted import is redone cleanly.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			fmtv, err := source.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			cfg := warehouse.ImportConfig{
				Root: root, Catalog: cat, Files: files, Rejects: rejects, Format: fmtv,
				ChunkRows: chunkRows, Logger: slog.Default(), Now: time.Now,
			}
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
			}
			start := time.Now()
			stats, err := warehouse.Import(cmd.Context(), cfg)
			out := cmd.OutOrStdout()
			for _, f := range stats.Files {
				if f.Skipped {
					fmt.Fprintf(out, "%s: already imported (as %s at %s, %d rows, partition %d); nothing to do\n",
						f.File, f.Previous.File, f.Previous.Finished.Format(time.RFC3339), f.Previous.Imported, f.Partition)
					continue
				}
				fmt.Fprintf(out, "%s: read %d, imported %d, rejected %d (partition %d, %d data files)\n",
					f.File, f.Read, f.Imported, f.Rejected, f.Partition, len(f.DataFiles))
				if f.RejectsFile != "" {
					fmt.Fprintf(out, "  rejects: %s\n", f.RejectsFile)
				}
			}
			if len(stats.Files) > 1 || err != nil {
				fmt.Fprintf(out, "total: read %d, imported %d, rejected %d; %d files, %d already imported (%s)\n",
					stats.Read, stats.Imported, stats.Rejected, len(stats.Files), stats.Skipped, time.Since(start).Round(time.Millisecond))
			}
			if err != nil || dsn == "" {
				return err
			}
			// Load ClickHouse from the warehouse, not from this run's rows:
			// hours that already agree are left alone, so a re-run (or a
			// run after a failed load) converges without duplicates.
			ch, err := openClickHouse(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			defer ch.Close()
			hours, rows, err := chbatch.SyncHours(cmd.Context(), ch, cat, root)
			if err != nil {
				return fmt.Errorf("loading ClickHouse events: %w", err)
			}
			fmt.Fprintf(out, "ClickHouse events: loaded %d rows in %d hours (hours already loaded left alone)\n", rows, len(hours))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "", "catalog YAML file")
	f.StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	f.StringVar(&format, "format", "", "input format, csv or jsonl (default: from each file's name)")
	f.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN: also load the imported hours into the events table (idempotent)")
	f.StringVar(&rejects, "rejects", "", "folder for rejects files (default <warehouse>/_rejects)")
	f.IntVar(&chunkRows, "chunk-rows", 500_000, "rows held in memory before they are written out (one file per hour they touch)")
	f.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	_ = cmd.MarkFlagRequired("catalog")
	return cmd
}
