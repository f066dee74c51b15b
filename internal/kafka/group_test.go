package kafka

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

func TestConsumerTuning(t *testing.T) {
	var d ConsumerTuning
	d.ApplyDefaults()
	require.Equal(t, ConsumerTuning{MaxRecordBytes: DefaultMaxRecordBytes, ClockSkew: DefaultClockSkew,
		SessionTimeout: DefaultSessionTimeout, RebalanceTimeout: DefaultRebalanceTimeout}, d)
	for _, tc := range []struct {
		name string
		edit func(*ConsumerTuning)
		err  string
	}{
		{"defaults", func(*ConsumerTuning) {}, ""},
		{"max record bytes", func(c *ConsumerTuning) { c.MaxRecordBytes = -1 }, "max_record_bytes: -1 is negative"},
		{"clock skew", func(c *ConsumerTuning) { c.ClockSkew = -time.Second }, "clock_skew: -1s is negative"},
		{"session timeout", func(c *ConsumerTuning) { c.SessionTimeout = -time.Second }, "session_timeout: -1s is negative"},
		{"rebalance timeout", func(c *ConsumerTuning) { c.RebalanceTimeout = -time.Second }, "rebalance_timeout: -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := d
			tc.edit(&c)
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

// countingHandler counts the records it consumes and fails its first
// session when failFirst is set.
type countingHandler struct {
	n         atomic.Int64
	sessions  atomic.Int64
	failFirst bool
}

func (h *countingHandler) Setup(sarama.ConsumerGroupSession) error {
	if h.sessions.Add(1) == 1 && h.failFirst {
		return errors.New("first session fails")
	}
	return nil
}

func (h *countingHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *countingHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.n.Add(1)
			sess.MarkMessage(m, "")
		}
	}
}

// TestRunGroup consumes every record through OpenGroup and Run, rejoining
// after a failed session, and stops when the context is cancelled.
func TestRunGroup(t *testing.T) {
	for _, failFirst := range []bool{false, true} {
		name := map[bool]string{false: "clean", true: "rejoin after a failed session"}[failFirst]
		t.Run(name, func(t *testing.T) {
			_, cfg := startTestBroker(t, []TopicSpec{{Name: "events", Partitions: 2}, {Name: "events.dlq", Partitions: 1}})
			cfg.Group = "g"
			p, err := NewProducer(cfg)
			require.NoError(t, err)
			defer p.Close() //nolint:errcheck // test producer
			const n = 20
			for i := range n {
				m, err := JSONMessage("events", string(rune('a'+i)), map[string]int{"i": i})
				require.NoError(t, err)
				require.NoError(t, p.Send(context.Background(), m))
			}

			sc, err := cfg.Sarama()
			require.NoError(t, err)
			tune := ConsumerTuning{SessionTimeout: time.Second, RebalanceTimeout: time.Second}
			tune.ApplyDefaults()
			g, err := OpenGroup(cfg, tune, sc)
			require.NoError(t, err)
			require.Equal(t, time.Second, sc.Consumer.Group.Session.Timeout)
			require.True(t, sc.Consumer.Offsets.AutoCommit.Enable)

			h := &countingHandler{failFirst: failFirst}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var (
				wg     sync.WaitGroup
				runErr error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				runErr = g.Run(ctx, []string{"events"}, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}()
			require.Eventually(t, func() bool { return h.n.Load() == n }, 20*time.Second, 10*time.Millisecond)
			cancel()
			wg.Wait()
			require.NoError(t, runErr)
			require.NoError(t, g.Close())
			if failFirst {
				require.GreaterOrEqual(t, h.sessions.Load(), int64(2))
			}
		})
	}
}

func TestAppendWaiting(t *testing.T) {
	msg := func(o int64) *sarama.ConsumerMessage { return &sarama.ConsumerMessage{Offset: o} }
	for _, tc := range []struct {
		name    string
		waiting int
		closed  bool
		limit   int
		want    int
	}{
		{"empty channel", 0, false, 10, 1},
		{"takes all waiting", 3, false, 10, 4},
		{"stops at the limit", 20, false, 10, 10},
		{"closed channel", 2, true, 10, 3},
		{"already full", 5, false, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan *sarama.ConsumerMessage, 32)
			for i := range tc.waiting {
				ch <- msg(int64(i + 1))
			}
			if tc.closed {
				close(ch)
			}
			got := AppendWaiting([]*sarama.ConsumerMessage{msg(0)}, ch, tc.limit)
			require.Len(t, got, tc.want)
			for i, m := range got {
				require.Equal(t, int64(i), m.Offset)
			}
		})
	}
}
