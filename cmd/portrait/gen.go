package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

func init() { commands = append(commands, newGenCmd()) }

func newGenCmd() *cobra.Command {
	var (
		catalogPath, out, format, start string
		span                            string
		o                               = gen.Options{Partitions: 1}
	)
	cmd := &cobra.Command{
		Use:   "gen --catalog C [--users N] [--events M] [--out FILE]",
		Short: "Generate deterministic synthetic events for a catalog (CSV or JSON Lines)",
		Long: `gen writes a deterministic stream of synthetic events: the same flags give
the same bytes on every machine. Timestamps are written as unix milliseconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			t0, err := schemas.ParseTimestamp(start, schemas.TimeAuto)
			if err != nil {
				return fmt.Errorf("--start: %w", err)
			}
			sp, err := schemas.ParseWindow(span)
			if err != nil {
				return fmt.Errorf("--span: %w", err)
			}
			o.Start, o.Span = t0, sp
			var w io.Writer = os.Stdout
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			gw, err := gen.NewWriter(w, cat, format)
			if err != nil {
				return err
			}
			n, began, last := 0, time.Now(), time.Now()
			err = gen.Stream(cat, o, func(e *schemas.Event) error {
				n++
				if out != "" && time.Since(last) > time.Second {
					last = time.Now()
					fmt.Fprintf(os.Stderr, "\rgen: %d events (%.0f%%)", n, 100*float64(n)/float64(max(o.Events, 1)))
				}
				return gw.Write(e)
			})
			if err == nil {
				err = gw.Flush()
			}
			if err != nil {
				return fmt.Errorf("writing events: %w", err)
			}
			if out != "" && out != "-" {
				fmt.Fprintf(os.Stderr, "\rgen: wrote %d events for %d users to %s in %s\n", n, o.Users, out, time.Since(began).Round(time.Millisecond))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.StringVar(&out, "out", "", "output file (default standard output)")
	f.StringVar(&format, "format", "csv", "csv or jsonl")
	f.StringVar(&start, "start", "2017-11-25T00:00:00Z", "first event time (RFC 3339 or unix seconds)")
	f.StringVar(&span, "span", "9d", "time span of the events")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed")
	f.IntVar(&o.Users, "users", 1000, "distinct users")
	f.IntVar(&o.Events, "events", 100000, "events (before duplicates)")
	f.IntVar(&o.Partitions, "partitions", 1, "partitions to spread offsets over")
	f.Float64Var(&o.TieRate, "tie-rate", 0.05, "share of events that repeat the user's previous event time")
	f.Float64Var(&o.DupRate, "dup-rate", 0, "share of events sent twice (needs an id field)")
	f.Float64Var(&o.Disorder, "disorder", 0, "share of events out of time order")
	f.IntVar(&o.Cardinality, "cardinality", 1000, "distinct values of non-key int64/string fields")
	return cmd
}
