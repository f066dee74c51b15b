package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/serving/ui"
)

func init() { commands = append(commands, newStatusCmd()) }

// Exit codes of portrait status.
const (
	statusHealthy     = 0
	statusDegraded    = 1
	statusUnreachable = 2
)

func newStatusCmd() *cobra.Command {
	var (
		api, token string
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [--api ADDR]",
		Short: "Print the health summary of a running portrait run; exit 0 healthy, 1 degraded, 2 unreachable",
		Long: `status reads /ui/status.json of a running "portrait run" and prints freshness,
consumer lag, throughput, the newest snapshot and its age, the last job runs,
drift per tag and the conditions that are firing. It exits 0 when nothing
fires, 1 when a condition fires (degraded) and 2 when the process cannot be
reached or answers with an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv("PORTRAIT_API_TOKEN")
			}
			// main maps every error to exit code 1; status needs 2 as
			// well, so it exits itself.
			if code := runStatus(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), api, token, timeout); code != statusHealthy {
				os.Exit(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&api, "api", "127.0.0.1:8080", "address (host:port or URL) of the running portrait run")
	f.StringVar(&token, "token", "", "bearer token (default $PORTRAIT_API_TOKEN)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// fetchStatus reads /ui/status.json of the process at api.
func fetchStatus(ctx context.Context, api, token string, timeout time.Duration) (ui.Status, error) {
	var st ui.Status
	base := api
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/ui/status.json", nil)
	if err != nil {
		return st, fmt.Errorf("--api %s: %w", api, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("reaching portrait at %s: %w", api, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return st, fmt.Errorf("reading status from %s: %w", api, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status from %s: HTTP %d: %s", api, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decoding status from %s: %w", api, err)
	}
	return st, nil
}

// printStatus writes the health summary.
func printStatus(w io.Writer, st ui.Status) error {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	health := "HEALTHY"
	if len(st.Firing) > 0 {
		health = "DEGRADED"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "portrait\t%s at %s\n", health, ts(st.Now))
	fresh := "-"
	if !st.SpeedWatermark.IsZero() {
		fresh = fmt.Sprintf("%s behind the clock (target %s)", secs(st.FreshnessSeconds), secs(st.FreshnessTargetSeconds))
	}
	fmt.Fprintf(tw, "freshness\t%s\n", fresh)
	fmt.Fprintf(tw, "speed watermark\t%s\n", ts(st.SpeedWatermark))
	fmt.Fprintf(tw, "landing watermark\t%s\n", ts(st.LandingWatermark))
	var lag int64
	var parts []string
	for _, l := range st.Lag {
		lag += l.Records
		parts = append(parts, fmt.Sprintf("%d:%d", l.Partition, l.Records))
	}
	fmt.Fprintf(tw, "consumer lag\t%d records (partition:records %s)\n", lag, strings.Join(parts, " "))
	t := st.Throughput
	fmt.Fprintf(tw, "throughput\t%.0f consumed/s, %.0f applied/s, %.0f landed/s, %.1f dead-lettered/s\n", t.Consumed, t.Applied, t.Landed, t.DLQ)
	if st.Snapshot != nil {
		fmt.Fprintf(tw, "newest snapshot\t%s, %d users, age %s\n", ts(st.Snapshot.Cutoff), st.Snapshot.Users, secs(st.Snapshot.AgeSeconds))
	} else {
		fmt.Fprintf(tw, "newest snapshot\tnone yet\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\njobs:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  JOB\tSTATUS\tSTARTED\tDURATION\tROWS\tERROR")
	for _, j := range st.Jobs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", j.Job, j.Status, ts(j.Started), j.Ended.Sub(j.Started).Round(time.Millisecond), j.Rows, j.Error)
	}
	if len(st.Jobs) == 0 {
		fmt.Fprintln(tw, "  (no runs yet)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\ndrift (last reconcile):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TAG\tCOMPARED\tDIFFERENT\tSHARE")
	for _, d := range st.Drift {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%.4f\n", d.Tag, d.Compared, d.Different, d.Share)
	}
	if len(st.Drift) == 0 {
		fmt.Fprintln(tw, "  (no reconcile yet)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nfiring:")
	for _, c := range st.Firing {
		fmt.Fprintf(w, "  [%s] %s: %s (%s)\n", c.Severity, c.Name, c.Summary, c.Runbook)
	}
	if len(st.Firing) == 0 {
		fmt.Fprintln(w, "  nothing")
	}
	return nil
}

// secs formats seconds as a rounded duration.
func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// runStatus fetches and prints the status and returns the exit code.
func runStatus(ctx context.Context, out, errOut io.Writer, api, token string, timeout time.Duration) int {
	st, err := fetchStatus(ctx, api, token, timeout)
	if err != nil {
		fmt.Fprintln(errOut, "portrait status: unreachable:", err)
		return statusUnreachable
	}
	if err := printStatus(out, st); err != nil {
		fmt.Fprintln(errOut, "portrait status:", err)
		return statusUnreachable
	}
	if len(st.Firing) > 0 {
		fmt.Fprintf(errOut, "portrait status: degraded: %d condition(s) firing\n", len(st.Firing))
		return statusDegraded
	}
	return statusHealthy
}
