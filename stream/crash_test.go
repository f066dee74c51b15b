package stream

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/state"
)

// TestSpeedChild is the speed layer run as a child process by the crash
// and SIGTERM tests; it does nothing in a normal test run.
func TestSpeedChild(t *testing.T) {
	args := kafkatest.ChildArgs(t, "CATALOG", "BROKERS", "STATE")
	// The SIGTERM handler first: the parent's graceful stop may come
	// early on a busy machine, and without it SIGTERM kills outright.
	ctx, stop := kafkatest.ChildContext()
	defer stop()
	c := loadCatalog(t, args["CATALOG"])
	kc := kafkatest.Config(strings.Split(args["BROKERS"], ","), testTopic)
	cfg := testConfig(t, c, kc, args["STATE"])
	cfg.CheckpointInterval = 20 * time.Millisecond
	cfg.MaxDirtyUsers = 50
	s, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, s.Run(ctx))
	require.NoError(t, s.Close())
}

func startChild(t *testing.T, catalog, state string, brokers []string) *exec.Cmd {
	t.Helper()
	return kafkatest.StartChild(t, "TestSpeedChild", map[string]string{
		"CATALOG": catalog, "BROKERS": strings.Join(brokers, ","), "STATE": state})
}

// TestCrashRecovery SIGKILLs the speed layer at random points while
// events flow, restarts it each time, and finally compares every user
// with the reference: nothing lost, nothing counted twice.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, name := range []string{"ecommerce"} {
		t.Run(name, func(t *testing.T) {
			c := loadCatalog(t, name)
			kc := kafkatest.StartBroker(t, testTopic, 3)
			state := t.TempDir()
			p := kafkatest.NewProducer(t, kc, false)
			kills := kafkatest.SoakKills(t, 10)
			o := gen.Defaults(21)
			o.Users, o.Events = 300, 1200*kills
			events := gen.Events(c, o)
			recs := kafkatest.EncodeEvents(t, c, events, -1)
			r := rand.New(rand.NewPCG(1, 2))
			// Produce in small paced batches while children come and go.
			sent := make(chan error, 1)
			go func() {
				for lo := 0; lo < len(recs); lo += 100 {
					hi := min(lo+100, len(recs))
					msgs := make([]*sarama.ProducerMessage, hi-lo)
					for i := range msgs {
						msgs[i] = &sarama.ProducerMessage{Topic: testTopic, Key: sarama.ByteEncoder(recs[lo+i].Key), Value: sarama.ByteEncoder(recs[lo+i].Value)}
					}
					if err := p.SP.SendMessages(msgs); err != nil {
						sent <- err
						return
					}
					for i, m := range msgs {
						events[lo+i].Partition, events[lo+i].Offset = m.Partition, m.Offset
					}
					time.Sleep(100 * time.Millisecond)
				}
				sent <- nil
			}()
			var stored []int64
			for range kills {
				child := startChild(t, name, state, kc.Brokers)
				time.Sleep(time.Duration(700+r.IntN(1500)) * time.Millisecond)
				require.NoError(t, child.Process.Kill())
				_ = child.Wait()
				stored = append(stored, storedRecords(t, c, state, 3))
			}
			require.NoError(t, <-sent)
			t.Logf("records in the store after each kill: %v of %d", stored, len(recs))
			mid := 0
			for _, n := range stored {
				if n > 0 && n < int64(len(recs)) {
					mid++
				}
			}
			require.GreaterOrEqual(t, mid, kills/2, "most kills should hit while events flow")
			// SIGTERM: the child checkpoints and exits cleanly.
			child := startChild(t, name, state, kc.Brokers)
			time.Sleep(3 * time.Second)
			require.NoError(t, child.Process.Signal(syscall.SIGTERM))
			require.NoError(t, child.Wait(), "graceful stop")

			cfg := testConfig(t, c, kc, state)
			in := startSpeed(t, cfg)
			defer in.close(t)
			in.waitApplied(t, int64(len(events)))
			want, _ := notLate(t, c, in.s.cfg.Grace, events)
			compareWithReference(t, in.s, want)
			t.Logf("after %d kills: %d records re-read by the final instance", kills, int(metricValue(in.s.m.consumed)))
		})
	}
}

// storedRecords sums the next offsets stored for partitions [0, n).
func storedRecords(t *testing.T, c *schemas.Catalog, dir string, n int32) int64 {
	t.Helper()
	st, err := state.Open(dir, c.Hash, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	var sum int64
	for p := range n {
		pos, ok, err := st.Partition(p)
		require.NoError(t, err)
		if ok {
			sum += pos.Next
		}
	}
	return sum
}
