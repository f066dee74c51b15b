package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

func init() { commands = append(commands, newWarehouseCmd()) }

func newWarehouseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "warehouse",
		Short: "Inspect the Parquet warehouse",
	}
	cmd.AddCommand(newWarehouseLsCmd(), newWarehouseCompactCmd(), newWarehouseRetentionCmd(), newWarehouseVerifyCmd())
	return cmd
}

func newWarehouseLsCmd() *cobra.Command {
	var (
		root  string
		files bool
	)
	cmd := &cobra.Command{
		Use:   "ls [--warehouse DIR] [--files]",
		Short: "List the tables' partitions with their files and rows",
		Long: `ls lists every events hour and profiles snapshot with its number of data
files, rows and bytes (rows from the _SUCCESS markers; "?" marks files a
marker does not list), and its state: closed (the marker lists exactly the
files present), open (files but no marker, or files the marker does not
list). --files lists each data file. Then, when the landing consumer has
written here, each Kafka partition's landing position (next offset, newest
event time landed) and the landing watermark: the oldest of those event
times (the running landing also lets idle partitions pass).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			parts, err := warehouse.Inventory(root)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "TABLE\tPARTITION\tFILES\tROWS\tBYTES\tSTATE\t")
			var totalRows, totalBytes, totalFiles int64
			for _, p := range parts {
				state := "closed"
				if !p.Complete {
					state = "open"
				}
				rows := fmt.Sprint(p.Rows)
				if unknown(p) {
					rows += "+?"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t\n", p.Table, p.Name, len(p.Files), rows, p.Bytes, state)
				if files {
					for _, f := range p.Files {
						r := fmt.Sprint(f.Rows)
						if f.Rows < 0 {
							r = "?"
						}
						fmt.Fprintf(tw, "\t  %s\t\t%s\t%d\t\t\n", f.Name, r, f.Bytes)
					}
				}
				totalRows += p.Rows
				totalBytes += p.Bytes
				totalFiles += int64(len(p.Files))
			}
			fmt.Fprintf(tw, "total\t%d partitions\t%d\t%d\t%d\t\t\n", len(parts), totalFiles, totalRows, totalBytes)
			if err := tw.Flush(); err != nil {
				return err
			}
			return printLandingPositions(cmd.OutOrStdout(), root)
		},
	}
	cmd.Flags().StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	cmd.Flags().BoolVar(&files, "files", false, "list every data file")
	return cmd
}

func unknown(p warehouse.PartitionInfo) bool {
	for _, f := range p.Files {
		if f.Rows < 0 {
			return true
		}
	}
	return false
}

// printLandingPositions lists the landing's per-partition positions and
// the watermark they give, when there are any.
func printLandingPositions(w io.Writer, root string) error {
	pos, err := landing.Positions(root)
	if err != nil || len(pos) == 0 {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nLANDING\tPARTITION\tNEXT OFFSET\tEVENT TIME REACHED\tWRITTEN\t")
	var wm schemas.Timestamp
	have := false
	for _, p := range pos {
		reached := "-"
		if p.HasReached {
			reached = p.Reached.String()
			if !have || p.Reached < wm {
				wm, have = p.Reached, true
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", p.Topic, p.Partition, p.Next, reached, p.Written.Format(time.RFC3339))
	}
	if have {
		fmt.Fprintf(tw, "watermark\t\t\t%s\t\t\n", wm)
	}
	return tw.Flush()
}
