package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
)

func init() { commands = append(commands, newProfilesCmd()) }

func newProfilesCmd() *cobra.Command {
	var catalogPath, root, snapshot string
	cmd := &cobra.Command{
		Use:   "profiles",
		Short: "Read profiles snapshots from the warehouse",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	pf.StringVar(&catalogPath, "catalog", "", "catalog YAML (optional: checks the snapshot's catalog hash)")
	pf.StringVar(&snapshot, "snapshot", "latest", "snapshot cutoff (RFC 3339 or unix seconds) or latest")

	load := func() (*batch.Table, error) {
		c, err := snapshotCutoff(root, snapshot)
		if err != nil {
			return nil, err
		}
		if catalogPath == "" {
			return batch.ReadSnapshotTable(root, c)
		}
		cat, err := schemas.Load(catalogPath)
		if err != nil {
			return nil, err
		}
		ps, err := batch.ReadSnapshot(root, cat, c)
		if err != nil {
			return nil, err
		}
		return batch.TableFromCatalog(cat, ps), nil
	}

	var format string
	dump := &cobra.Command{
		Use:   "dump",
		Short: "Print every profile of a snapshot (JSON lines or CSV)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := load()
			if err != nil {
				return err
			}
			switch format {
			case "jsonl":
				return t.WriteJSONL(cmd.OutOrStdout())
			case "csv":
				return t.WriteCSV(cmd.OutOrStdout())
			}
			return fmt.Errorf("--format %q: want jsonl or csv", format)
		},
	}
	dump.Flags().StringVar(&format, "format", "jsonl", "output format: jsonl or csv")

	var api, token string
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Print one profile as JSON: from a snapshot, or live from a running speed layer with --api",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if api != "" {
				p, err := (&serving.Client{Base: api, Token: token}).Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			t, err := load()
			if err != nil {
				return err
			}
			p, ok := t.Find(args[0])
			if !ok {
				return fmt.Errorf("no profile for %s %q in snapshot", t.Key, args[0])
			}
			b, err := t.AppendJSON(nil, p)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
	get.Flags().StringVar(&api, "api", "", "address of a running lookup API (host:port or URL) instead of the warehouse")
	get.Flags().StringVar(&token, "token", os.Getenv("PORTRAIT_API_TOKEN"), "bearer token for the lookup API (default $PORTRAIT_API_TOKEN)")
	cmd.AddCommand(dump, get)
	return cmd
}

func snapshotCutoff(root, s string) (schemas.Timestamp, error) {
	if s == "" || s == "latest" {
		c, err := batch.LatestSnapshot(root)
		if errors.Is(err, batch.ErrNoSnapshot) {
			if _, serr := os.Stat(root); serr != nil {
				return 0, fmt.Errorf("warehouse %s: %w", root, serr)
			}
		}
		return c, err
	}
	c, err := parseCutoff(s)
	if err != nil {
		return 0, fmt.Errorf("--snapshot: %w", err)
	}
	return c, nil
}
