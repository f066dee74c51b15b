package stream

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
)

// TestLookupsDuringIngest reads profiles from several goroutines while
// the speed layer applies and checkpoints (run with -race), then checks
// the final state against the reference and the harness accessors.
func TestLookupsDuringIngest(t *testing.T) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 2)
	o := gen.Defaults(9)
	o.Users, o.Events, o.Disorder, o.DupRate = 300, 6000, 0, 0
	events := gen.Events(c, o)
	placed(events, kafkatest.NewProducer(t, kc, false).Send(t, kafkatest.EncodeEvents(t, c, events, -1)))

	in := startSpeed(t, testConfig(t, c, kc, t.TempDir()))
	defer in.close(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := events[i%len(events)].Values[c.Key]
				if p, ok := in.s.Lookup(k); ok {
					require.Equal(t, k, p.Key)
					require.Len(t, p.Values, len(c.Tags))
				}
				if i%97 == 0 {
					_, _ = in.s.ProfilesAsOf(in.s.AsOf())
					_, _ = in.s.Lag()
				}
			}
		})
	}
	in.waitApplied(t, int64(len(events)))
	close(stop)
	wg.Wait()
	require.Equal(t, int64(len(events)), in.s.Applied())
	lag, ok := in.s.Lag()
	require.True(t, ok)
	require.Zero(t, lag)
	want, _ := notLate(t, c, in.s.cfg.Grace, events)
	compareWithReference(t, in.s, want)
}

// TestDriftFlushPerPartition: a checkpoint takes each partition's drift
// marks with that partition's state, so flush hands out only the marks of
// the partition asked for and keeps the others for their turn.
func TestDriftFlushPerPartition(t *testing.T) {
	d := newDriftLog()
	d.add(causeLate, int64(1), 10, 0)
	d.add(causeDuplicate, int64(2), 20, 1)
	d.add(causeLate, int64(3), 30, 1)
	d.add(causeDLQ, int64(4), unknownTime, 1) // never stored
	for _, c := range []struct {
		part int32
		want int
	}{{1, 2}, {1, 0}, {2, 0}, {0, 1}, {0, 0}} {
		recs, err := d.flush(schemas.TypeInt64, c.part)
		require.NoError(t, err)
		require.Len(t, recs, c.want, "partition %d", c.part)
		for _, r := range recs {
			require.Equal(t, c.part, r.Partition)
		}
	}
}
