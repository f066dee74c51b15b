package main

import (
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

func newWarehouseCompactCmd() *cobra.Command {
	var (
		root, catalogPath string
		opts              warehouse.CompactOptions
	)
	cmd := &cobra.Command{
		Use:   "compact [--warehouse DIR] [--catalog C] [--target-bytes N]",
		Short: "Merge the small files of closed events hours into larger ones",
		Long: `compact merges, in every closed events hour, runs of adjacent small files of
one Kafka partition into files of up to --target-bytes, named for the union
of their offset ranges. Readers never see an event twice or not at all: the
merged file is committed, the hour's marker rewritten, then the small files
removed (readers that list folders drop files a larger range supersedes).
Corrupt files are moved to _quarantine/ and reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			st, err := warehouse.Compact(cmd.Context(), root, c, math.MinInt64, math.MaxInt64, opts)
			for _, q := range st.Quarantined {
				fmt.Fprintf(cmd.OutOrStdout(), "quarantined %s -> %s: %s\n", q.Path, q.Dest, q.Reason)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted %d of %d hours: %d files into %d (%d rows, %d -> %d bytes); removed %d superseded files\n",
				st.Hours, st.HoursSeen, st.FilesIn, st.FilesOut, st.Rows, st.BytesIn, st.BytesOut, st.Superseded)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	f.StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.Int64Var(&opts.TargetBytes, "target-bytes", 128<<20, "size compacted files grow to; bigger files are left alone")
	return cmd
}

func newWarehouseRetentionCmd() *cobra.Command {
	var (
		root, keep string
		dry        bool
	)
	cmd := &cobra.Command{
		Use:   "retention --keep 90d [--warehouse DIR] [--dry-run]",
		Short: "Remove events hours and profiles snapshots older than --keep",
		Long: `retention removes the events hours that ended more than --keep ago and the
profiles snapshots older than that (never the newest one). Each partition
folder is renamed away before it is deleted, so readers see it whole or not
at all. --keep takes days (90d) or a Go duration (36h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := warehouse.ParseRetention(keep)
			if err != nil {
				return fmt.Errorf("--keep: %w", err)
			}
			st, err := warehouse.Retention(root, d, time.Now(), dry)
			verb := "removed"
			if dry {
				verb = "would remove"
			}
			for _, p := range append(append([]string{}, st.Hours...), st.Snapshots...) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d hours and %d snapshots (%d files, %d bytes)\n", verb, len(st.Hours), len(st.Snapshots), st.Files, st.Bytes)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	f.StringVar(&keep, "keep", "90d", "how long to keep partitions")
	f.BoolVar(&dry, "dry-run", false, "only list what would be removed")
	return cmd
}

func newWarehouseVerifyCmd() *cobra.Command {
	var root, catalogPath string
	cmd := &cobra.Command{
		Use:   "verify [--warehouse DIR] [--catalog C]",
		Short: "Read every events file in full and quarantine the corrupt ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			unlock, err := warehouse.LockWarehouse(root)
			if err != nil {
				return err
			}
			qs, err := warehouse.VerifyEvents(cmd.Context(), root, c, math.MinInt64, math.MaxInt64)
			if uerr := unlock(); err == nil {
				err = uerr
			}
			for _, q := range qs {
				fmt.Fprintf(cmd.OutOrStdout(), "quarantined %s -> %s: %s\n", q.Path, q.Dest, q.Reason)
			}
			all, lerr := warehouse.ListQuarantine(root)
			if lerr == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%d files quarantined now, %d in %s/ in all\n", len(qs), len(all), warehouse.QuarantineDir)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	cmd.Flags().StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	return cmd
}
