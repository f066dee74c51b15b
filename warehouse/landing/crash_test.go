package landing

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
	"github.com/portrait-dev/portrait/warehouse"
)

// TestLandingChild is the landing run as a child process by the crash
// test; it does nothing in a normal test run.
func TestLandingChild(t *testing.T) {
	args := kafkatest.ChildArgs(t, "CATALOG", "BROKERS", "WAREHOUSE")
	// The SIGTERM handler first: the parent's graceful stop may come
	// early on a busy machine, and without it SIGTERM kills outright.
	ctx, stop := kafkatest.ChildContext()
	defer stop()
	c := loadCatalog(t, args["CATALOG"])
	cfg := testConfig(c, kafkatest.Config(strings.Split(args["BROKERS"], ","), testTopic), args["WAREHOUSE"])
	cfg.RollAge = 20 * time.Millisecond
	cfg.RollBytes = 32 << 10
	cfg.SessionTimeout = 500 * time.Millisecond
	l, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, l.Run(ctx))
}

// TestCrashExactlyOnce SIGKILLs the landing at random points while events
// flow, restarting it each time; afterwards every produced record is in
// the warehouse exactly once by (partition, offset), and the local batch
// engine over the warehouse computes what the reference evaluator does
// over the produced events.
func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 3)
	root := t.TempDir()
	kills := kafkatest.SoakKills(t, 12)
	o := gen.Defaults(11)
	o.Users, o.Events = 300, 1700*kills
	events := gen.Events(c, o)
	recs := kafkatest.EncodeEvents(t, c, events, -1)
	bad, _ := badRecords()
	p := kafkatest.NewProducer(t, kc, false)

	// Events flow the whole time, in small batches with bad records mixed in.
	var (
		mu sync.Mutex
		at = make([]kafkatest.Placed, 0, len(events))
	)
	produced, quit := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(quit); <-produced })
	go func() {
		defer close(produced)
		for lo := 0; lo < len(recs); lo += 250 {
			select {
			case <-quit:
				return
			default:
			}
			hi := min(lo+250, len(recs))
			got := p.Send(t, recs[lo:hi])
			mu.Lock()
			at = append(at, got...)
			mu.Unlock()
			p.Send(t, bad[:1])
			time.Sleep(150 * time.Millisecond)
		}
	}()

	r := rand.New(rand.NewPCG(3, 4))
	for i := range kills {
		child := startChild(t, root, kc.Brokers)
		time.Sleep(time.Duration(400+r.IntN(1200)) * time.Millisecond)
		require.NoError(t, child.Process.Kill())
		_ = child.Wait()
		st := positions(t, root, 3)
		t.Logf("kill %d: positions %v", i+1, st)
	}
	<-produced
	// One clean stop, then a final run that catches up.
	child := startChild(t, root, kc.Brokers)
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, child.Process.Signal(syscall.SIGTERM))
	require.NoError(t, child.Wait(), "graceful stop")

	cfg := testConfig(c, kc, root)
	in := startLander(t, cfg)
	waitFor(t, 30*time.Second, "the landing to catch up", func() bool {
		ps := positions(t, root, 3)
		hw := highWatermarks(t, kc, 3)
		for i := range ps {
			if ps[i] != hw[i] {
				return false
			}
		}
		return true
	})
	in.stop(t)
	got := landed(t, c, root)
	checkExactlyOnce(t, got, at)
	t.Logf("%d kills; %d events landed; final run re-read %v records and dropped %v already landed",
		kills, len(got), counter(in.l.m.consumed), counter(in.l.m.skipped))

	// Batch recompute over the warehouse = reference over what was produced.
	for i := range events {
		events[i].Partition, events[i].Offset = at[i].Partition, at[i].Offset
	}
	cutoff := o.Start + schemas.Timestamp(o.Span)
	want := reference.Evaluate(c, events, cutoff)
	files, err := warehouse.AllEventFiles(root)
	require.NoError(t, err)
	files = warehouse.LiveFiles(files)
	res, err := local.Compute(context.Background(), c, cutoff, func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		return warehouse.ReadEvents(ctx, c, files, fn)
	}, nil)
	require.NoError(t, err)
	require.Empty(t, reference.Diff(c, want, res.Profiles.Boxed(), 10))
	require.NotEmpty(t, want)
}

func startChild(t *testing.T, root string, brokers []string) *exec.Cmd {
	t.Helper()
	return kafkatest.StartChild(t, "TestLandingChild", map[string]string{
		"CATALOG": "taobao", "BROKERS": strings.Join(brokers, ","), "WAREHOUSE": root})
}
