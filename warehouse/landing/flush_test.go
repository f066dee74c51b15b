package landing

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// markingSession records the group offsets a claim marks (the rest of
// the session is never called by flush and wait).
type markingSession struct {
	sarama.ConsumerGroupSession
	marked []int64
}

func (s *markingSession) MarkOffset(_ string, _ int32, offset int64, _ string) {
	s.marked = append(s.marked, offset)
}

// TestCommitInFlight drives one partition's claim state by hand: a
// commit runs while the next records are buffered, and nothing of it is
// applied (committed offsets, group offset, event time reached, hours to
// close, idleness) before it is durable; a second flush waits for the
// first, so the files and positions follow offset order.
func TestCommitInFlight(t *testing.T) {
	c := loadCatalog(t, "taobao")
	root := t.TempDir()
	cfg := testConfig(c, kafkatest.Config([]string{"127.0.0.1:1"}, testTopic), root)
	cfg.IdleTimeout = time.Nanosecond
	l, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	sess := &markingSession{}
	cs := newClaimState(l, sess, 2, 10, nil, partitionState{})

	const hour = 1511568000 // 2017-11-25T00:00:00Z, in seconds
	batch := func(first int64, n int) []*sarama.ConsumerMessage {
		var out []*sarama.ConsumerMessage
		for i := range n {
			v := fmt.Sprintf(`{"user_id":1,"item_id":%d,"category_id":3,"behavior":"pv","ts":%d}`, i, hour+60*i)
			out = append(out, &sarama.ConsumerMessage{Topic: testTopic, Partition: 2, Offset: first + int64(i),
				Key: []byte("1"), Value: []byte(v)})
		}
		return out
	}
	ctx := context.Background()
	require.NoError(t, cs.process(ctx, nil, batch(10, 5)))
	require.NoError(t, cs.flush())
	require.NotNil(t, cs.inflight, "the commit runs in the background")
	require.Empty(t, sess.marked, "no group offset before the commit is durable")
	require.Empty(t, cs.committed, "no committed offset before the commit is durable")
	_, reached := l.Watermark()
	require.False(t, reached, "no event time reached before the commit is durable")
	require.Empty(t, l.PendingHours())

	// The next records go to fresh buffers; the partition is not idle
	// while the commit is in flight, even past IdleTimeout.
	require.NoError(t, cs.process(ctx, nil, batch(15, 3)))
	require.Equal(t, 3, cs.bufs[schemas.Timestamp(hour*1000)].cols.Len())
	require.NoError(t, cs.tick(fakeClaim{hwm: 18}))
	require.False(t, l.parts[2].idle)

	// A second flush waits for the first and applies it.
	require.NoError(t, cs.flush())
	require.Equal(t, []int64{15}, sess.marked)
	require.NoError(t, cs.wait())
	require.Equal(t, []int64{15, 18}, sess.marked)
	require.Nil(t, cs.inflight)
	h := schemas.Timestamp(hour * 1000)
	require.Equal(t, map[schemas.Timestamp]int64{h: 17}, cs.committed)
	require.Equal(t, []schemas.Timestamp{h}, l.PendingHours())
	wm, ok := l.Watermark()
	require.True(t, ok)
	require.Equal(t, schemas.Timestamp((hour+60*4)*1000), wm, "the newest event time of both commits")
	require.Len(t, cs.free, 2, "both commits' buffers were recycled")

	files, err := warehouse.DataFiles(warehouse.HourDir(root, h))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	require.ElementsMatch(t, []string{"part-2-10-14.parquet", "part-2-15-17.parquet"}, names)
	st, ok, err := readPartitionState(root, testTopic, 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(18), st.Next)

	// Idle once nothing is buffered or in flight.
	require.NoError(t, cs.tick(fakeClaim{hwm: 18}))
	require.True(t, l.parts[2].idle)
}

// fakeClaim is a claim whose high-water mark is hwm (tick reads nothing
// else).
type fakeClaim struct {
	sarama.ConsumerGroupClaim
	hwm int64
}

func (f fakeClaim) HighWaterMarkOffset() int64 { return f.hwm }
