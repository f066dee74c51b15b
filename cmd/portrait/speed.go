package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/stream"
)

func init() { commands = append(commands, newSpeedCmd()) }

func newSpeedCmd() *cobra.Command {
	var (
		listen string
		cfg    stream.Config
		cf     *consumerFlags
		opts   speedServeOptions
		gc     = stream.DefaultGC()
	)
	cmd := &cobra.Command{
		Use:   "speed --catalog C (--brokers B | --embedded-kafka[=ADDR]) --state DIR [--listen ADDR]",
		Short: "Run the speed layer: consume events, keep every user's tags fresh, serve lookups",
		Long: `speed joins the consumer group portrait-speed on the events topic, applies
each event to its users' tags, keeps the state (and the Kafka offsets it
reflects) in a Pebble store under --state, and sends records it cannot use
to the dead-letter topic. It serves the lookup API and /metrics on --listen.
With --warehouse, lifetime tags are served as the newest batch snapshot's
base merged with the speed partials since it (checked every minute), and
with --token too, POST /v1/admin/reconcile runs the reconciler in this
process (portrait reconcile --api). SIGTERM or SIGINT checkpoints and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.Default()
			c, b, err := cf.open(ctx, logger)
			if err != nil {
				return err
			}
			cfg.Catalog = c
			defer b.Close()
			restoreGC, err := gc.Apply(logger)
			if err != nil {
				return err
			}
			defer restoreGC()
			return runSpeed(ctx, cfg, listen, opts, logger)
		},
	}
	f := cmd.Flags()
	cf = addConsumerFlags(f, &cfg.Kafka, &cfg.ConsumerTuning, stream.DefaultGroup)
	f.StringVar(&cfg.StateDir, "state", "data/speed", "state store directory (Pebble)")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address of the lookup API and /metrics")
	f.StringVar(&opts.warehouse, "warehouse", "", "warehouse folder: rebase lifetime tags on its newest snapshot")
	f.StringVar(&opts.token, "token", os.Getenv("PORTRAIT_API_TOKEN"), "bearer token for the API; enables the admin endpoints with --warehouse (default $PORTRAIT_API_TOKEN)")
	f.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", stream.DefaultCheckpointInterval, "how often state and offsets are synced")
	f.DurationVar(&cfg.Grace, "grace", stream.DefaultGrace, "how long buckets are kept beyond the longest window (also the allowed lateness)")
	f.IntVar(&gc.Percent, "gc-percent", gc.Percent, "garbage collector target (GOGC) of the process; 0: the runtime's, -1: off (needs --memory-limit-mb); see speed.gc_percent in portrait.example.yaml")
	f.Int64Var(&gc.MemoryLimitMB, "memory-limit-mb", gc.MemoryLimitMB, "soft memory limit of the process in MiB (GOMEMLIMIT); 0: the runtime's")
	f.IntVar(&gc.ProcsPerCPU, "procs-per-cpu", gc.ProcsPerCPU, "Go processors (GOMAXPROCS) per CPU; 0: the runtime's; see speed.procs_per_cpu in portrait.example.yaml")
	return cmd
}

// speedServeOptions are the optional serving features of portrait speed.
type speedServeOptions struct{ warehouse, token string }

func runSpeed(ctx context.Context, cfg stream.Config, listen string, opts speedServeOptions, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := stream.New(cfg, logger, reg)
	if err != nil {
		return err
	}
	h, err := serving.NewHandler(cfg.Catalog, s, serving.Config{Token: opts.token}, reg, logger)
	if err != nil {
		_ = s.Close()
		return err
	}
	if opts.warehouse != "" {
		go s.WatchSnapshots(ctx, opts.warehouse, time.Minute)
		if opts.token != "" {
			admin, err := serving.NewAdminHandler(serving.AdminConfig{Token: opts.token, Catalog: cfg.Catalog,
				Root: opts.warehouse, Speed: s, Metrics: serving.NewDriftMetrics(reg, cfg.Catalog), Logger: logger})
			if err != nil {
				_ = s.Close()
				return err
			}
			h = serving.WithAdmin(h, admin)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("lookup API stopped", "err", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "speed: lookup API on http://%s (catalog %s, state %s)\n", ln.Addr(), cfg.Catalog.Name, cfg.StateDir)
	runErr := s.Run(ctx)
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	if err := s.Close(); runErr == nil {
		runErr = err
	}
	return runErr
}
