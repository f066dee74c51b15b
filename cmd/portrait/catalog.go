package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/schemas"
)

func init() { commands = append(commands, newCatalogCmd()) }

func newCatalogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Check a tag catalog and show the SQL it compiles to",
	}
	cmd.AddCommand(newCatalogValidateCmd(), newCatalogExplainCmd())
	return cmd
}

// errInvalidCatalog makes the command exit 1 after the problems were
// printed.
var errInvalidCatalog = errors.New("invalid catalog")

func newCatalogValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Validate a catalog: print OK with its tag count, or every problem (exit 1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateCatalog(cmd.OutOrStdout(), args[0])
		},
	}
}

func validateCatalog(w io.Writer, path string) error {
	cat, err := schemas.Load(path)
	var verr *schemas.ValidationError
	if errors.As(err, &verr) {
		for _, p := range verr.Problems {
			fmt.Fprintf(w, "%s: %s\n", path, p)
		}
		return fmt.Errorf("%s: %w: %d problem(s)", path, errInvalidCatalog, len(verr.Problems))
	}
	if err != nil {
		return err
	}
	rules := len(cat.RuleOrder)
	lifetime := 0
	for i := range cat.Tags {
		if cat.Tags[i].Lifetime() {
			lifetime++
		}
	}
	fmt.Fprintf(w, "OK %s: catalog %s, %d tags (%d aggregates of which %d lifetime, %d rules), %d fields, bucket %s, hash %s\n",
		path, cat.Name, len(cat.Tags), len(cat.Tags)-rules, lifetime, rules, len(cat.Fields), shortDuration(cat.BucketDuration()), cat.Hash)
	return nil
}

// shortDuration writes whole hours or minutes as a catalog does (1h, 15m).
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func newCatalogExplainCmd() *cobra.Command {
	var cutoff string
	cmd := &cobra.Command{
		Use:   "explain FILE",
		Short: "Print the ClickHouse DDL and the recompute SQL a catalog compiles to",
		Long: `explain prints the statements that create portrait's ClickHouse tables for
the catalog and the one INSERT … SELECT that recomputes every profile as of
the cutoff (RFC 3339 or unix seconds, a bucket boundary; default: the start
of the current bucket).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := schemas.Load(args[0])
			if err != nil {
				return err
			}
			at := cat.BucketStart(schemas.TimestampOf(time.Now()))
			if cutoff != "" {
				if at, err = parseCutoff(cutoff); err != nil {
					return fmt.Errorf("--cutoff: %w", err)
				}
				if !cat.IsBoundary(at) {
					return fmt.Errorf("--cutoff %s is not a bucket boundary (bucket %s)", at, shortDuration(cat.BucketDuration()))
				}
			}
			explainCatalog(cmd.OutOrStdout(), cat, at)
			return nil
		},
	}
	cmd.Flags().StringVar(&cutoff, "cutoff", "", "as-of time of the recompute SQL: RFC 3339 or unix seconds")
	return cmd
}

func explainCatalog(w io.Writer, cat *schemas.Catalog, cutoff schemas.Timestamp) {
	fmt.Fprintf(w, "-- ClickHouse tables of catalog %s (hash %s)\n\n", cat.Name, cat.Hash)
	fmt.Fprintf(w, "%s;\n\n", strings.Join(chbatch.DDL(cat), ";\n\n"))
	fmt.Fprintf(w, "-- Recompute as of %s: fills the staging table, then\n", cutoff)
	fmt.Fprintf(w, "-- ALTER TABLE profiles REPLACE PARTITION ID '%d' FROM the staging table.\n\n", int64(cutoff)/1000)
	fmt.Fprintf(w, "%s;\n", chbatch.RecomputeSQL(cat, cutoff))
}
