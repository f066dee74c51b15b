package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/schemas"
)

func init() { commands = append(commands, newRecomputeCmd()) }

func newRecomputeCmd() *cobra.Command {
	var (
		catalogPath, root, cutoff, engine, dsn string
		full                                   bool
	)
	cmd := &cobra.Command{
		Use:   "recompute",
		Short: "Recompute every profile as of a cutoff and write the snapshot",
		Long: `recompute reads the event hours the catalog's tags need from the warehouse,
computes every profile as of the cutoff (a bucket boundary, RFC 3339 or unix
seconds) and writes warehouse/profiles/snapshot=<cutoff>/, replacing a
snapshot of the same cutoff. Lifetime tags start from the newest earlier
snapshot when it is still valid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			c, err := parseCutoff(cutoff)
			if err != nil {
				return fmt.Errorf("--cutoff: %w", err)
			}
			cfg := batch.Config{Root: root, Catalog: cat, Cutoff: c, Engine: engine, Full: full, Logger: slog.Default()}
			if engine == batch.EngineClickHouse && dsn == "" {
				return fmt.Errorf("--engine clickhouse needs --clickhouse DSN")
			}
			if dsn != "" {
				ch, err := openClickHouse(cmd.Context(), dsn)
				if err != nil {
					return err
				}
				defer ch.Close()
				if engine == batch.EngineClickHouse {
					cfg.SQL = chbatch.Engine{Client: ch} // publishes as it computes
				} else {
					cfg.Publisher = chbatch.Publisher{Client: ch}
				}
			}
			st, err := batch.Recompute(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s (%s engine): %d users from %d events in %d hours (%s)\n",
				st.Cutoff, engine, st.Users, st.Events, st.Hours, st.Duration.Round(time.Millisecond))
			if dsn != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "published to ClickHouse profiles (snapshot %s)\n", st.Cutoff)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "", "catalog YAML file")
	f.StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	f.StringVar(&cutoff, "cutoff", "", "cutoff: RFC 3339 or unix seconds, a bucket boundary")
	f.StringVar(&engine, "engine", batch.EngineLocal, "engine: local or clickhouse")
	f.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN (engine clickhouse, and publishing)")
	f.BoolVar(&full, "full", false, "ignore earlier snapshots and read every event hour")
	_ = cmd.MarkFlagRequired("catalog")
	_ = cmd.MarkFlagRequired("cutoff")
	return cmd
}

// parseCutoff reads an instant written as RFC 3339 or unix seconds.
func parseCutoff(s string) (schemas.Timestamp, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return schemas.Timestamp(n * 1000), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither RFC 3339 nor unix seconds", s)
	}
	return schemas.TimestampOf(t), nil
}
