package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/jobs"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

func init() { commands = append(commands, newJobsCmd()) }

// jobsConfigFile is the part of portrait's config file the jobs commands
// read; other sections are ignored.
type jobsConfigFile struct {
	Jobs jobs.Config `yaml:"jobs"`
}

// loadJobsConfig reads the jobs section of a config file; no file means
// the defaults.
func loadJobsConfig(path string) (jobs.Config, error) {
	cfg := jobs.DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reading config: %w", err)
	}
	f := jobsConfigFile{Jobs: cfg}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := f.Jobs.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return f.Jobs, nil
}

func newJobsCmd() *cobra.Command {
	var configPath, root string
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, run and inspect the scheduled batch jobs",
		Long: `jobs shows the scheduled jobs (recompute, reconcile, load-events, compact,
retention) with their schedules from the config file's jobs section, runs one
by hand through the scheduler's own path (locks, retries, run records), and
prints the run records kept in <warehouse>/_jobs/.`,
	}
	cmd.PersistentFlags().StringVar(&configPath, "config", "", "config file (its jobs section); default: the built-in defaults")
	cmd.PersistentFlags().StringVar(&root, "warehouse", "warehouse", "warehouse folder")
	cmd.AddCommand(newJobsListCmd(&configPath, &root), newJobsHistoryCmd(&root), newJobsRunCmd(&configPath, &root))
	return cmd
}

func newJobsListCmd(configPath, root *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the jobs: schedule, next activation, last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadJobsConfig(*configPath)
			if err != nil {
				return err
			}
			infos, err := jobs.List(cfg, cfg.Names(), jobs.NewRunLog(*root), time.Now())
			if err != nil {
				return err
			}
			return printJobList(cmd.OutOrStdout(), infos)
		},
	}
}

func printJobList(w io.Writer, infos []jobs.JobInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSCHEDULE\tENABLED\tNEXT\tLAST RUN\tSTATUS\tLAST OK")
	for _, in := range infos {
		next, last, status, lastOK := "-", "-", "-", "-"
		if !in.Next.IsZero() {
			next = in.Next.Format(time.RFC3339)
		}
		if in.Last != nil {
			last, status = in.Last.Started.Format(time.RFC3339), string(in.Last.Status)
		}
		if in.LastOK != nil {
			lastOK = in.LastOK.Ended.Format(time.RFC3339)
		}
		sched := in.Schedule
		if sched == "" {
			sched = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\n", in.Name, sched, in.Enabled, next, last, status, lastOK)
	}
	return tw.Flush()
}

func newJobsHistoryCmd(root *string) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history [NAME]",
		Short: "Print the run records of one job or of all, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			runs, err := jobs.NewRunLog(*root).History(name, limit)
			if err != nil {
				return err
			}
			return printRuns(cmd.OutOrStdout(), runs)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "records to print (0: all)")
	return cmd
}

func printRuns(w io.Writer, runs []jobs.Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tRUN ID\tATTEMPT\tTRIGGER\tSTARTED\tDURATION\tSTATUS\tROWS\tDETAIL / ERROR")
	for _, r := range runs {
		msg := r.Detail
		if r.Error != "" {
			msg = r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Job, r.RunID, r.Attempt, r.Trigger,
			r.Started.Format(time.RFC3339), r.Ended.Sub(r.Started).Round(time.Millisecond), r.Status, r.Rows, msg)
	}
	return tw.Flush()
}

func newJobsRunCmd(configPath, root *string) *cobra.Command {
	var (
		catalogPath, cutoff, dsn string
		retries                  int
	)
	cmd := &cobra.Command{
		Use:   "run NAME [--cutoff T]",
		Short: "Run a job now, by hand, with the scheduler's locks, retries and run records",
		Long: `run runs one job now through the same path as a scheduled run: it never
overlaps a run of the same job (in any process), retries with backoff as
configured, and records every attempt in <warehouse>/_jobs/ (and in ClickHouse
job_runs with --clickhouse).

recompute takes --cutoff, or else the newest bucket boundary at or before the
end of the newest closed hour, and refuses to run over events hours that are
not closed. compact merges small files of closed hours. The other jobs need
the running service (portrait run).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			cfg, err := loadJobsConfig(*configPath)
			if err != nil {
				return err
			}
			switch name {
			case jobs.Recompute, jobs.Compact:
			case jobs.Reconcile, jobs.LoadEvents, jobs.Retention:
				return fmt.Errorf("job %s: not available outside portrait run yet", name)
			default:
				return fmt.Errorf("no job %q (jobs: %v)", name, cfg.Names())
			}
			if catalogPath == "" {
				return errors.New("--catalog is required")
			}
			if retries >= 0 {
				jc := cfg.Job(name)
				jc.Retries = retries
				cfg.Jobs[name] = jc
			}
			cat, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			var opts jobs.RunOptions
			if cutoff != "" {
				c, err := parseCutoff(cutoff)
				if err != nil {
					return fmt.Errorf("--cutoff: %w", err)
				}
				opts.Cutoff = &c
			}
			rj := recomputeJob{Root: *root, Catalog: cat}
			var recorders []jobs.Recorder
			if dsn != "" {
				ch, err := openClickHouse(ctx, dsn)
				if err != nil {
					return err
				}
				defer ch.Close()
				if err := chbatch.EnsureSchema(ctx, ch, cat); err != nil {
					return err
				}
				rj.Publisher = chbatch.Publisher{Client: ch}
				recorders = append(recorders, jobs.ClickHouseRecorder{Client: ch})
			}
			s, err := jobs.New(jobs.Options{
				Root:       *root,
				Config:     cfg,
				Jobs:       []jobs.Job{rj.Job(), compactJob(*root, cat)},
				Recorders:  recorders,
				Logger:     slog.Default(),
				Registerer: prometheus.NewRegistry(),
			})
			if err != nil {
				return err
			}
			r, err := s.RunNow(ctx, name, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s run %s ok after %d attempt(s) in %s: %s\n",
				name, r.RunID, r.Attempt, r.Ended.Sub(r.Started).Round(time.Millisecond), r.Detail)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "", "catalog YAML file")
	f.StringVar(&cutoff, "cutoff", "", "recompute: cutoff (RFC 3339 or unix seconds, a bucket boundary); default from the closed hours")
	f.IntVar(&retries, "retries", -1, "retries of a failed attempt (-1: as configured)")
	f.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN: publish the snapshot and record runs in job_runs")
	return cmd
}

// recomputeJob is the scheduled recompute: the cutoff is the newest
// bucket boundary at or before the landing watermark (or the one asked
// for), and it refuses to run over events hours that are not closed.
type recomputeJob struct {
	Root    string
	Catalog *schemas.Catalog
	// Publisher, when set, loads the snapshot into ClickHouse.
	Publisher batch.Publisher
	// Watermark is the landing watermark (portrait run passes the
	// Lander's); nil takes the end of the newest closed hour
	// (jobs.ClosedWatermark).
	Watermark func() (schemas.Timestamp, bool)
}

// Job returns the job the scheduler runs.
func (rj recomputeJob) Job() jobs.Job {
	return jobs.Job{Name: jobs.Recompute, Run: rj.run}
}

func (rj recomputeJob) run(ctx context.Context, rc jobs.RunContext) (jobs.RunResult, error) {
	cat := rj.Catalog
	var cutoff schemas.Timestamp
	if rc.Cutoff != nil {
		cutoff = *rc.Cutoff
		if !cat.IsBoundary(cutoff) {
			return jobs.RunResult{}, jobs.Permanent(fmt.Errorf("cutoff %s is not a bucket boundary (bucket %s); try %s",
				cutoff, cat.BucketDuration(), cat.BucketStart(cutoff)))
		}
	} else {
		wm, ok, err := rj.watermark()
		if err != nil {
			return jobs.RunResult{}, err
		}
		if !ok {
			return jobs.RunResult{}, errors.New("no landing watermark yet: no closed events hour")
		}
		cutoff = jobs.RecomputeCutoff(wm, cat.BucketDuration())
	}
	snaps, err := warehouse.ListSnapshots(rj.Root)
	if err != nil {
		return jobs.RunResult{}, fmt.Errorf("listing snapshots: %w", err)
	}
	if err := jobs.ClosedHours(rj.Root, jobs.RecomputeFrom(cat, snaps, cutoff), cutoff); err != nil {
		return jobs.RunResult{}, fmt.Errorf("refusing to recompute snapshot %s: %w", cutoff, err)
	}
	st, err := batch.Recompute(ctx, batch.Config{
		Root: rj.Root, Catalog: cat, Cutoff: cutoff, Publisher: rj.Publisher, Logger: rc.Logger, Now: rc.Now,
	})
	if err != nil {
		return jobs.RunResult{}, err
	}
	return jobs.RunResult{
		Rows:   int64(st.Users),
		Detail: fmt.Sprintf("snapshot %s: %d users from %d events in %d hours", st.Cutoff, st.Users, st.Events, st.Hours),
	}, nil
}

func (rj recomputeJob) watermark() (schemas.Timestamp, bool, error) {
	if rj.Watermark != nil {
		wm, ok := rj.Watermark()
		return wm, ok, nil
	}
	return jobs.ClosedWatermark(rj.Root)
}

// compactJob compacts every closed events hour.
func compactJob(root string, cat *schemas.Catalog) jobs.Job {
	return jobs.Job{Name: jobs.Compact, Run: func(ctx context.Context, _ jobs.RunContext) (jobs.RunResult, error) {
		st, err := warehouse.Compact(ctx, root, cat, math.MinInt64, math.MaxInt64, warehouse.CompactOptions{})
		if err != nil {
			return jobs.RunResult{}, err
		}
		return jobs.RunResult{
			Rows:   st.Rows,
			Detail: fmt.Sprintf("%d of %d hours compacted: %d files into %d", st.Hours, st.HoursSeen, st.FilesIn, st.FilesOut),
		}, nil
	}}
}
