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
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

func init() { commands = append(commands, newLandCmd()) }

func newLandCmd() *cobra.Command {
	var (
		dsn, listen string
		cfg         landing.Config
		cf          *consumerFlags
	)
	cmd := &cobra.Command{
		Use:   "land --catalog C (--brokers B | --embedded-kafka[=ADDR]) --warehouse DIR [--clickhouse DSN]",
		Short: "Land the events topic in the Parquet warehouse, close hours, load them into ClickHouse",
		Long: `land joins the consumer group portrait-landing on the events topic and
writes its records, exactly once, to the warehouse's events table
(events/dt=…/hour=…/part-<partition>-<first>-<last>.parquet), routed by
event time. Records it cannot use go to the dead-letter topic. An hour is
closed with _SUCCESS once the landing watermark passes its end plus
--allowed-lateness; with --clickhouse every closed (or re-opened) hour is
loaded into the events table. Metrics are served on --listen.
SIGTERM or SIGINT commits what is buffered and stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.Default()
			c, b, err := cf.open(ctx, logger)
			if err != nil {
				return err
			}
			defer b.Close()
			cfg.Catalog = c
			if dsn != "" {
				chc, err := clickhouse.ParseDSN(dsn)
				if err != nil {
					return fmt.Errorf("--clickhouse: %w", err)
				}
				ch, err := clickhouse.Open(ctx, chc)
				if err != nil {
					return err
				}
				defer ch.Close()
				cfg.ClickHouse = ch
			}
			return runLand(ctx, cfg, listen, logger)
		},
	}
	f := cmd.Flags()
	cf = addConsumerFlags(f, &cfg.Kafka, &cfg.ConsumerTuning, landing.DefaultGroup)
	f.StringVar(&cfg.Warehouse, "warehouse", "warehouse", "warehouse folder")
	f.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN; closed hours are loaded into its events table")
	f.StringVar(&listen, "listen", "127.0.0.1:9464", "address of /metrics (empty: none)")
	f.Int64Var(&cfg.RollBytes, "roll-bytes", landing.DefaultRollBytes, "roll a partition's files after this many bytes of records")
	f.DurationVar(&cfg.RollAge, "roll-age", landing.DefaultRollAge, "roll a partition's files when its oldest buffered record is this old")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", landing.DefaultIdleTimeout, "a caught-up partition without records this long does not hold the watermark back")
	f.DurationVar(&cfg.AllowedLateness, "allowed-lateness", landing.DefaultAllowedLateness, "close an hour once the watermark passes its end plus this")
	f.DurationVar(&cfg.CloseInterval, "close-interval", landing.DefaultCloseInterval, "how often hours are closed and loaded")
	return cmd
}

func runLand(ctx context.Context, cfg landing.Config, listen string, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l, err := landing.New(cfg, logger, reg)
	if err != nil {
		return err
	}
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "err", err)
			}
		}()
		defer func() {
			shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutCtx)
		}()
		fmt.Fprintf(os.Stderr, "land: metrics on http://%s/metrics (catalog %s, warehouse %s)\n", ln.Addr(), cfg.Catalog.Name, cfg.Warehouse)
	}
	return l.Run(ctx)
}
