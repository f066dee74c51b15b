package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/stream"
)

func init() { commands = append(commands, newReconcileCmd()) }

func newReconcileCmd() *cobra.Command {
	var (
		catalogPath, root, snapshot, format, dsn, stateDir, api, token string
		repair                                                         bool
		grace                                                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile --catalog C --warehouse DIR --snapshot T|latest (--api ADDR | --state DIR) [--repair] [--format table|json] [--clickhouse DSN]",
		Short: "Compare a batch snapshot with the speed layer's values as of its cutoff, find the causes of drift, repair",
		Long: `reconcile compares every user's tags in the batch snapshot T with the speed
layer's values as of T, per tag (compared, equal, different, only in batch,
only in speed, max and mean absolute error, a sample of user ids), and
attributes the drift to what the speed layer set aside: late events,
dead-lettered records, duplicate event ids, or a catalog change.

It reaches the speed layer in one of two ways:
  --api ADDR   a running speed process (portrait speed) runs the reconcile
               through POST /v1/admin/reconcile (bearer --token or
               $PORTRAIT_ADMIN_TOKEN);
  --state DIR  no speed process runs: the state store is opened directly
               (Pebble allows one opener; a running process holds it).

The report goes to stdout as a table or, with --format json, one JSON
object; it is also written to <snapshot>/_reconcile.json, and with
--clickhouse inserted into tag_drift. --repair rebuilds the drifting users'
speed state from the warehouse and reconciles again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json", format)
			}
			if (api == "") == (stateDir == "") {
				return errors.New("give exactly one of --api ADDR (a running speed process) or --state DIR (its state store, no process running)")
			}
			if _, err := serving.ParseSnapshotParam(snapshot); err != nil {
				return fmt.Errorf("--snapshot: %w", err)
			}
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			var rep *serving.Report
			if api != "" {
				if token == "" {
					token = os.Getenv("PORTRAIT_ADMIN_TOKEN")
				}
				base := api
				if !strings.Contains(base, "://") {
					base = "http://" + base
				}
				hc := &http.Client{Timeout: 30 * time.Minute}
				rep, err = serving.RequestReconcile(ctx, hc, base, token, snapshot, repair)
			} else {
				rep, err = reconcileState(ctx, cat, root, stateDir, snapshot, grace, repair)
			}
			if err != nil {
				return err
			}
			if dsn != "" {
				ch, err := openClickHouse(ctx, dsn)
				if err != nil {
					return err
				}
				defer ch.Close()
				if err := serving.InsertTagDrift(ctx, ch, cat, rep); err != nil {
					return err
				}
			}
			return writeReport(cmd.OutOrStdout(), rep, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.StringVar(&root, "warehouse", "data/warehouse", "warehouse folder (holds the snapshots and the events)")
	f.StringVar(&snapshot, "snapshot", "latest", "snapshot cutoff: latest, RFC 3339 or unix seconds")
	f.StringVar(&format, "format", "table", "output: table or json")
	f.BoolVar(&repair, "repair", false, "rebuild the drifting users' speed state from the warehouse, then reconcile again")
	f.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN: insert the report into tag_drift")
	f.StringVar(&stateDir, "state", "", "speed state store directory (when no speed process runs)")
	f.DurationVar(&grace, "grace", stream.DefaultGrace, "with --state: the speed layer's grace period")
	f.StringVar(&api, "api", "", "address of a running speed process's API (host:port or URL)")
	f.StringVar(&token, "token", "", "admin bearer token for --api (default $PORTRAIT_ADMIN_TOKEN)")
	return cmd
}

func writeReport(w io.Writer, rep *serving.Report, format string) error {
	if format == "json" {
		return rep.WriteJSON(w)
	}
	return rep.WriteTable(w)
}

// reconcileState reconciles against a speed state store opened here (no
// speed process may run on it).
func reconcileState(ctx context.Context, cat *schemas.Catalog, root, stateDir, snapshot string, grace time.Duration, repair bool) (*serving.Report, error) {
	snap, err := serving.ParseSnapshotParam(snapshot)
	if err != nil {
		return nil, fmt.Errorf("--snapshot: %w", err)
	}
	s, err := stream.OpenState(stream.Config{Catalog: cat, StateDir: stateDir, Grace: grace}, slog.Default())
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	rep, err := serving.Reconcile(ctx, serving.ReconcileConfig{
		Catalog: cat, Root: root, Snapshot: snap, Speed: s, Causes: s, Repair: repair, Repairer: s,
		WriteJSON: true, Logger: slog.Default(),
	})
	if cerr := s.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return rep, err
}
