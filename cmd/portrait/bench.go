package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/benchrun"
	"github.com/portrait-dev/portrait/schemas"
)

func init() { commands = append(commands, newBenchCmd()) }

func newBenchCmd() *cobra.Command {
	var (
		catalogPath   string
		brokerProcess bool
		opts          benchrun.RunOptions
		cfg           benchrun.Config
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the throughput benchmark over a deterministic synthetic data set and print a table",
		Long: `bench generates a deterministic data set (kept in --dir between runs), then
times each stage: import (CSV to Parquet), the local recompute, and with
--clickhouse the ClickHouse load, SQL engine and publish. It prints one table
with throughput, throughput per core, CPU seconds per million items, p50/p99
latencies where a stage has them, and peak memory, next to the targets.

The Kafka stages use kfake (franz-go's in-memory broker, real wire protocol)
in a child process ("portrait broker"), so that the CPU columns are the
pipeline's own; each stage's note adds the broker's CPU and the rate with
it. The live ingest during the lookup stage is sent by another child process
("portrait produce", from a CSV file the pre-fill writes), as producers are
other services in production; its CPU is in the note, not counted.
--broker-process=false runs the broker and the ingest in this process instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			cfg.Catalog = cat
			if brokerProcess {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding this binary to run the broker process (or give --broker-process=false): %w", err)
				}
				cfg.BrokerCommand = []string{exe, "broker"}
				cfg.ProducerCommand = []string{exe, "produce", "--catalog", catalogPath}
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			cfg.Progress = cmd.ErrOrStderr()
			opts.Progress = cmd.ErrOrStderr()
			results, err := benchrun.Run(cmd.Context(), cfg.Stages(), opts)
			fmt.Fprintf(cmd.OutOrStdout(), "\ndata set: %s, %d events, %d users, seed %d\n", cat.Name, cfg.Events, cfg.Users, cfg.Seed)
			benchrun.PrintTable(cmd.OutOrStdout(), runtime.NumCPU(), results)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.IntVar(&cfg.Events, "events", 20_000_000, "events to generate")
	f.IntVar(&cfg.Users, "users", 1_000_000, "distinct users")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	f.StringVar(&cfg.Dir, "dir", ".local/bench", "folder for the data set and the warehouse")
	f.StringVar(&cfg.ClickHouse, "clickhouse", "", "ClickHouse DSN: adds the load, SQL engine and publish stages")
	f.StringVar(&opts.ProfileDir, "profile-dir", "", "write a CPU profile of each stage here (<stage>.cpu.pprof, for go tool pprof)")
	f.StringVar(&opts.TraceDir, "trace-dir", "", "write an execution trace of each stage here (<stage>.trace, for go tool trace)")
	f.BoolVar(&brokerProcess, "broker-process", true, "run the Kafka stages' broker (kfake) and the lookup stage's ingest producer as child processes and report their CPU apart")
	f.IntVar(&cfg.StreamEvents, "stream-events", 2_000_000, "events for the Kafka stages (speed, lookups, landing); 0 skips them")
	return cmd
}
