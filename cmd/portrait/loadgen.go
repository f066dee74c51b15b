package main

import (
	"bufio"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/loadgen"
)

func init() { commands = append(commands, newLoadgenCmd()) }

func newLoadgenCmd() *cobra.Command {
	var (
		o       loadgen.Options
		seconds float64
	)
	cmd := &cobra.Command{
		Use:    "loadgen --addr HOST:PORT [--rate N] [--seconds S] [--users N]",
		Short:  "Drive an open-loop load of profile lookups (bench's load generator process)",
		Hidden: true,
		Long: `loadgen sends GET /v1/profiles/{id} requests for ids drawn from 1..--users to
a lookup API at --rate per second for --seconds, over --conns keep-alive
connections, and writes every request's latency and issue lateness to
standard output in internal/loadgen's binary encoding. portrait bench runs it
as a child process.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Duration = time.Duration(seconds * float64(time.Second))
			res, err := loadgen.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(os.Stdout)
			if err := res.Encode(w); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "", "host:port of the lookup API")
	f.IntVar(&o.Rate, "rate", 20_000, "requests per second")
	f.Float64Var(&seconds, "seconds", 20, "how long to issue requests")
	f.IntVar(&o.Users, "users", 1_000_000, "ids are drawn from 1..users")
	f.IntVar(&o.Conns, "conns", 32, "keep-alive connections, one request in flight on each")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed of the ids")
	_ = cmd.MarkFlagRequired("addr")
	return cmd
}
