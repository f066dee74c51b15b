package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/config"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/jobs"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/serving/ui"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse/landing"
)

func init() { commands = append(commands, newRunCmd()) }

// runFlags are the flags of portrait run; a flag given overrides the
// config file and the environment.
type runFlags struct {
	config, catalog, warehouse, brokers, clickhouse, listen, state string
	emb                                                            *kafka.EmbeddedFlag
}

func newRunCmd() *cobra.Command {
	var fl runFlags
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [flags]",
		Short: "Run the whole system in one process: speed layer, landing, scheduled jobs, lookup API, status page",
		Long: `run starts, in one process, the speed layer (state in speed.state_dir), the
landing (events into the warehouse), the job scheduler (recompute, then
reconcile; load-events; compact; retention) and one HTTP server on api.listen
with the lookup API (/v1/profiles), the status page (/ui, /ui/status.json),
/metrics, /healthz and /readyz.

Settings come from the config file (portrait config print-defaults shows
every one), then the environment (portrait config env), then these flags.
Without kafka.brokers it starts the embedded development broker on
embedded_kafka.addr; --embedded-kafka forces it. SIGTERM or SIGINT stops the
HTTP server and the jobs, checkpoints the speed layer and flushes the
landing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := runConfig(cmd, &fl)
			if err != nil {
				return err
			}
			return runSystem(cmd.Context(), cfg, fl.emb.Enabled(), slog.Default(), cmd.ErrOrStderr(), nil)
		},
	}
	addRunFlags(cmd, &fl)
	return cmd
}

// addRunFlags registers the flags of portrait run on cmd.
func addRunFlags(cmd *cobra.Command, fl *runFlags) {
	f := cmd.Flags()
	f.StringVar(&fl.config, "config", "", "config file (default: the built-in defaults)")
	f.StringVar(&fl.catalog, "catalog", "", "catalog file (overrides catalog)")
	f.StringVar(&fl.warehouse, "warehouse", "", "warehouse folder (overrides warehouse)")
	f.StringVar(&fl.brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated (overrides kafka.brokers)")
	f.StringVar(&fl.clickhouse, "clickhouse", "", "ClickHouse DSN (overrides clickhouse)")
	f.StringVar(&fl.listen, "listen", "", "HTTP listen address (overrides api.listen)")
	f.StringVar(&fl.state, "state", "", "speed layer state folder (overrides speed.state_dir)")
	fl.emb = kafka.AddEmbeddedFlag(f)
}

// runConfig is the config file, then the environment, then the flags
// given.
func runConfig(cmd *cobra.Command, fl *runFlags) (config.Config, error) {
	c := config.Default()
	if fl.config != "" {
		var err error
		if c, err = config.Load(fl.config); err != nil {
			return c, err
		}
	}
	if err := c.ApplyEnv(os.Getenv); err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("catalog", &c.Catalog, fl.catalog)
	set("warehouse", &c.Warehouse, fl.warehouse)
	set("clickhouse", &c.ClickHouse, fl.clickhouse)
	set("listen", &c.API.Listen, fl.listen)
	set("state", &c.Speed.StateDir, fl.state)
	if cmd.Flags().Changed("brokers") {
		c.Kafka.Brokers = strings.Split(fl.brokers, ",")
	}
	if fl.emb.Enabled() {
		c.Kafka.Brokers = nil
		c.EmbeddedKafka.Addr = fl.emb.Addr
	}
	if cmd.Flags().Changed("embedded-kafka-partitions") {
		c.EmbeddedKafka.Partitions = fl.emb.Partitions
	}
	if err := c.Validate(); err != nil {
		if fl.config != "" {
			return c, fmt.Errorf("config %s: %w", fl.config, err)
		}
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// runHooks let a test reach the running components.
type runHooks struct {
	// started is called once everything runs.
	started func(runInfo)
}

// runInfo is what runs: the HTTP address, the effective config (with the
// embedded broker's address) and the components.
type runInfo struct {
	Addr   string
	Config config.Config
	Sched  *jobs.Scheduler
	Speed  *stream.Speed
	Lander *landing.Lander
}

// runSystem runs every component until ctx is done or one fails, then
// stops them in order.
func runSystem(ctx context.Context, cfg config.Config, forceEmbedded bool, logger *slog.Logger, out io.Writer, hooks *runHooks) (err error) {
	cat, err := schemas.Load(cfg.Catalog)
	if err != nil {
		return err
	}
	restoreGC, err := cfg.GC().Apply(logger)
	if err != nil {
		return err
	}
	defer restoreGC()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The embedded broker outlives ctx so that the final checkpoint and
	// the group leaves happen while it still answers.
	if forceEmbedded || len(cfg.Kafka.Brokers) == 0 {
		emb := &kafka.EmbeddedFlag{Addr: cfg.EmbeddedKafka.Addr, Partitions: cfg.EmbeddedKafka.Partitions}
		b, err := emb.Start(context.WithoutCancel(ctx), &cfg.Kafka, logger)
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer b.Close()
	}

	var ch *clickhouse.Client
	if cfg.ClickHouse != "" {
		if ch, err = openClickHouse(ctx, cfg.ClickHouse); err != nil {
			return err
		}
		defer ch.Close()
		if err := chbatch.EnsureSchema(ctx, ch, cat); err != nil {
			return err
		}
	}

	speed, err := stream.New(cfg.StreamConfig(cat), logger.With("component", "speed"), reg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := speed.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing speed state: %w", cerr)
		}
	}()
	lc := cfg.LandingConfig(cat)
	lc.ClickHouse = ch
	lander, err := landing.New(lc, logger.With("component", "landing"), reg)
	if err != nil {
		return err
	}

	pm := newPublishMetrics(reg)
	pm.refreshCutoff(cfg.Warehouse)
	rj := &runJobs{cfg: cfg, cat: cat, speed: speed, lander: lander, ch: ch, pm: pm,
		drift: serving.NewDriftMetrics(reg, cat), log: logger.With("component", "jobs")}
	var recorders []jobs.Recorder
	if ch != nil {
		recorders = append(recorders, countingRecorder{inner: jobs.ClickHouseRecorder{Client: ch}, m: pm})
	}
	sched, err := jobs.New(jobs.Options{
		Root: cfg.Warehouse, Config: cfg.Jobs, Jobs: rj.jobs(), Recorders: recorders,
		Logger: logger.With("component", "jobs"), Registerer: reg,
	})
	if err != nil {
		return err
	}
	rj.sched = sched

	status := &statusSource{cfg: cfg, speed: speed, lander: lander, runs: sched.RunLog(), reg: reg, now: time.Now}
	rj.status = status
	status.loadDrift()
	api, err := serving.NewHandler(cat, speed, servingConfig(cfg), reg, logger.With("component", "api"))
	if err != nil {
		return err
	}
	if cfg.API.Token != "" {
		admin, err := serving.NewAdminHandler(serving.AdminConfig{Token: cfg.API.Token, Catalog: cat,
			Root: cfg.Warehouse, Speed: speed, ClickHouse: ch, Metrics: rj.drift, Logger: logger.With("component", "admin")})
		if err != nil {
			return err
		}
		api = serving.WithAdmin(api, admin)
	} else {
		logger.Info("admin endpoints (POST /v1/admin/reconcile) are off: set api.token to enable them")
	}
	// Lifetime tags start from the newest snapshot, when there is one.
	if c, ok, err := speed.Rebase(ctx, cfg.Warehouse); err != nil {
		logger.Warn("lifetime tags not rebased on the newest snapshot", "err", err)
	} else if ok {
		logger.Info("lifetime tags rebased", "snapshot", c)
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/ui", requireToken(cfg.API.Token, ui.NewHandler(status, nil, logger)))
	mux.Handle("/ui/", requireToken(cfg.API.Token, ui.NewHandler(status, nil, logger)))
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		if err != nil {
			cancel(fmt.Errorf("%s: %w", what, err))
		}
	}
	// The consumers get their own context: they stop after the HTTP
	// server and the jobs, so that a job in flight still sees them.
	compCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopComponents()
	var compWG sync.WaitGroup
	compWG.Add(2)
	go func() { defer compWG.Done(); fail("speed layer", speed.Run(compCtx)); cancel(nil) }()
	go func() { defer compWG.Done(); fail("landing", lander.Run(compCtx)); cancel(nil) }()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail("http server", err)
		}
	}()
	go func() { defer wg.Done(); status.sampleLoop(runCtx) }()
	if err := sched.Start(runCtx); err != nil {
		cancel(err)
	}

	brokers := strings.Join(cfg.Kafka.Brokers, ",")
	fmt.Fprintf(out, "run: http://%s (lookups /v1/profiles/{id}, status /ui, /metrics); kafka %s topic %s; warehouse %s; state %s; clickhouse %s\n",
		ln.Addr(), brokers, cfg.Kafka.Topic, cfg.Warehouse, cfg.Speed.StateDir, orNone(cfg.ClickHouse != ""))
	if hooks != nil && hooks.started != nil {
		hooks.started(runInfo{Addr: ln.Addr().String(), Config: cfg, Sched: sched, Speed: speed, Lander: lander})
	}

	<-runCtx.Done()
	logger.Info("stopping", "cause", context.Cause(runCtx))
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = srv.Shutdown(shutCtx)
	sched.Stop()
	stopComponents() // speed checkpoints, landing flushes
	compWG.Wait()
	wg.Wait()
	if c := context.Cause(runCtx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return nil
}

func orNone(ok bool) string {
	if ok {
		return "on"
	}
	return "off"
}

// requireToken guards the status page with the API's bearer token.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portrait"`)
			http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// servingConfig is the lookup API's part of the api section.
func servingConfig(c config.Config) serving.Config {
	return serving.Config{Token: c.API.Token, MaxBodyBytes: c.API.MaxBodyBytes, MaxBatchKeys: c.API.MaxBatchKeys}
}
