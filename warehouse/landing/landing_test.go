package landing

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// badRecords are records the landing must dead-letter, by reason.
func badRecords() ([]kafkatest.Record, map[string]int) {
	return []kafkatest.Record{
		{Key: []byte("1"), Value: []byte(`not json`), Partition: -1},
		{Key: []byte("1"), Value: []byte(`{"user_id":1}`), Partition: -1},
		{Key: []byte("2"), Value: []byte(`{"user_id":1,"item_id":2,"category_id":3,"behavior":"pv","ts":1511568000}`), Partition: -1},
		{Key: []byte("1"), Value: []byte(`{"user_id":1,"item_id":2,"category_id":3,"behavior":"nope","ts":1511568000}`), Partition: -1},
	}, map[string]int{"decode": 1, "schema": 2, "key_mismatch": 1}
}

func TestLandExactlyOnceAndRestartWithoutPositions(t *testing.T) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 3)
	root := t.TempDir()
	o := gen.Defaults(7)
	o.Events = 4000
	events := gen.Events(c, o)
	p := kafkatest.NewProducer(t, kc, false)
	at := p.Send(t, kafkatest.EncodeEvents(t, c, events, -1))
	bad, reasons := badRecords()
	p.Send(t, bad)

	cfg := testConfig(c, kc, root)
	in := startLander(t, cfg)
	waitFor(t, 20*time.Second, "every record landed", func() bool {
		return counter(in.l.m.consumed) == float64(len(events)+len(bad)) && counter(in.l.m.rows) == float64(len(events))
	})
	for r, n := range reasons {
		require.Equal(t, float64(n), counter(in.l.m.dlq.WithLabelValues(r)), "dlq reason %s", r)
	}
	// One lag series per owned partition, zero once every record is read.
	waitFor(t, 10*time.Second, "the lag to reach zero", func() bool {
		lags := lagSeries(t, in.reg)
		return len(lags) == 3 && lags["0"] == 0 && lags["1"] == 0 && lags["2"] == 0
	})
	in.stop(t)
	checkExactlyOnce(t, landed(t, c, root), at)

	// Landed values are the produced ones.
	got := landed(t, c, root)
	byPos := map[kafkatest.Placed]schemas.Event{}
	for _, e := range got {
		byPos[kafkatest.Placed{Partition: e.Partition, Offset: e.Offset}] = e
	}
	for i, w := range at {
		require.Equal(t, events[i].Values, byPos[w].Values, "record %d", i)
	}

	// Wipe the positions: the landing reads everything again and drops it
	// record by record.
	require.NoError(t, os.RemoveAll(filepath.Join(root, StateDir, "partitions")))
	in2 := startLander(t, cfg)
	waitFor(t, 20*time.Second, "every record read again", func() bool {
		return counter(in2.l.m.consumed) == float64(len(events)+len(bad))
	})
	in2.stop(t)
	require.Equal(t, float64(len(events)), counter(in2.l.m.skipped))
	require.Zero(t, counter(in2.l.m.rows))
	checkExactlyOnce(t, landed(t, c, root), at)
}

// TestStopCommitsBuffered: a clean stop commits what is buffered before
// Run returns: with files that would roll only after an hour, nothing is
// in the warehouse while the landing runs, and every record is, with the
// positions at the high watermarks, once Run has returned (a benchmark or
// a deploy can stop the landing as soon as the topic is drained).
func TestStopCommitsBuffered(t *testing.T) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 3)
	root := t.TempDir()
	o := gen.Defaults(11)
	o.Events = 3000
	events := gen.Events(c, o)
	at := kafkatest.NewProducer(t, kc, false).Send(t, kafkatest.EncodeEvents(t, c, events, -1))

	cfg := testConfig(c, kc, root)
	cfg.RollAge = time.Hour
	cfg.RollBytes = 1 << 30
	in := startLander(t, cfg)
	waitFor(t, 20*time.Second, "every record read", func() bool {
		return counter(in.l.m.consumed) == float64(len(events))
	})
	require.Zero(t, counter(in.l.m.rows), "rows committed before the stop")
	require.Equal(t, []int64{-1, -1, -1}, positions(t, root, 3), "positions written before the stop")

	start := time.Now()
	in.stop(t)
	t.Logf("stop took %s", time.Since(start))
	require.Equal(t, float64(len(events)), counter(in.l.m.rows))
	checkExactlyOnce(t, landed(t, c, root), at)
	require.Equal(t, highWatermarks(t, kc, 3), positions(t, root, 3))
}

func ts(s string) schemas.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return schemas.TimestampOf(t)
}

func taobaoRecord(t *testing.T, c *schemas.Catalog, user int64, at schemas.Timestamp, partition int32) kafkatest.Record {
	e := schemas.Event{Values: []any{user, int64(10), int64(20), "pv", at}, Time: at}
	return kafkatest.EncodeEvents(t, c, []schemas.Event{e}, partition)[0]
}

// TestHourClosing runs hour closing with an idle partition and a
// straggler that re-opens a closed hour; with a ClickHouse server it also
// loads every closed hour, again after the straggler, and compares counts.
func TestHourClosing(t *testing.T) {
	t.Run("warehouse", func(t *testing.T) { hourClosing(t, nil) })
	t.Run("clickhouse", func(t *testing.T) { hourClosing(t, chtest.Open(t)) })
}

func hourClosing(t *testing.T, ch *clickhouse.Client) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 2)
	root := t.TempDir()
	p := kafkatest.NewProducer(t, kc, true)
	clk := &clock{}
	cfg := testConfig(c, kc, root)
	cfg.IdleTimeout = time.Minute
	cfg.AllowedLateness = 10 * time.Minute
	cfg.Now = clk.Now
	cfg.ClickHouse = ch
	in := startLander(t, cfg)

	p.Send(t, []kafkatest.Record{
		taobaoRecord(t, c, 1, ts("2017-11-25T10:10:00Z"), 0),
		taobaoRecord(t, c, 1, ts("2017-11-25T11:10:00Z"), 0),
		taobaoRecord(t, c, 1, ts("2017-11-25T12:30:00Z"), 0),
		taobaoRecord(t, c, 2, ts("2017-11-25T10:05:00Z"), 1),
	})
	waitFor(t, 20*time.Second, "4 rows landed", func() bool { return counter(in.l.m.rows) == 4 })
	waitFor(t, 20*time.Second, "partition 1 to hold the watermark back at 10:05", func() bool {
		wm, ok := in.l.Watermark()
		return ok && wm == ts("2017-11-25T10:05:00Z")
	})
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, counter(in.l.m.closed), "nothing closes while partition 1 is behind")

	// Partition 1 goes idle; partition 0 keeps getting records.
	clk.Add(2 * time.Minute)
	p.Send(t, []kafkatest.Record{taobaoRecord(t, c, 1, ts("2017-11-25T12:40:00Z"), 0)})
	waitFor(t, 20*time.Second, "hours 10 and 11 closed", func() bool { return counter(in.l.m.closed) == 2 })
	marker := func(h string) warehouse.Marker {
		m, ok, err := warehouse.ReadMarker(warehouse.HourDir(root, ts(h)))
		require.NoError(t, err)
		require.True(t, ok, "hour %s closed", h)
		return m
	}
	require.EqualValues(t, 2, marker("2017-11-25T10:00:00Z").Rows)
	require.EqualValues(t, 1, marker("2017-11-25T11:00:00Z").Rows)
	_, ok, err := warehouse.ReadMarker(warehouse.HourDir(root, ts("2017-11-25T12:00:00Z")))
	require.NoError(t, err)
	require.False(t, ok, "hour 12 is still open")
	if ch != nil {
		waitFor(t, 20*time.Second, "hours loaded", func() bool { q, _ := ReloadQueue(root); return len(q) == 0 })
		checkClickHouseCounts(t, ch, root)
	}

	// A straggler for hour 10 re-opens it; once partition 1 is idle again,
	// the hour is closed again with three rows and re-loaded.
	p.Send(t, []kafkatest.Record{taobaoRecord(t, c, 3, ts("2017-11-25T10:30:00Z"), 1)})
	waitFor(t, 20*time.Second, "straggler landed", func() bool { return counter(in.l.m.rows) == 6 })
	if ch != nil {
		q, err := ReloadQueue(root)
		require.NoError(t, err)
		require.Empty(t, q, "not re-queued before it is closed again")
	}
	clk.Add(2 * time.Minute)
	waitFor(t, 20*time.Second, "hour 10 re-opened and closed", func() bool { return counter(in.l.m.reopened) == 1 })
	require.EqualValues(t, 3, marker("2017-11-25T10:00:00Z").Rows)
	require.Len(t, marker("2017-11-25T10:00:00Z").Files, 3)
	if ch != nil {
		waitFor(t, 20*time.Second, "hour re-loaded", func() bool { q, _ := ReloadQueue(root); return len(q) == 0 })
		checkClickHouseCounts(t, ch, root)
		// Loading every hour again changes nothing.
		for _, h := range []string{"2017-11-25T10:00:00Z", "2017-11-25T11:00:00Z"} {
			require.NoError(t, enqueueReload(root, ts(h), "test", time.Now()))
		}
		in.stop(t)
		for range 2 {
			_, err := LoadQueued(context.Background(), root, c, ch)
			require.NoError(t, err)
			for _, h := range []string{"2017-11-25T10:00:00Z", "2017-11-25T11:00:00Z"} {
				require.NoError(t, enqueueReload(root, ts(h), "test", time.Now()))
			}
		}
		_, err := LoadQueued(context.Background(), root, c, ch)
		require.NoError(t, err)
		checkClickHouseCounts(t, ch, root)
	} else {
		q, err := ReloadQueue(root)
		require.NoError(t, err)
		require.Equal(t, []schemas.Timestamp{ts("2017-11-25T10:00:00Z"), ts("2017-11-25T11:00:00Z")}, q)
	}
}

// checkClickHouseCounts compares ClickHouse's rows per hour with the
// markers of the closed hours.
func checkClickHouseCounts(t *testing.T, ch *clickhouse.Client, root string) {
	t.Helper()
	got, err := chbatch.EventCounts(context.Background(), ch)
	require.NoError(t, err)
	want := map[schemas.Timestamp]int64{}
	parts, err := warehouse.Inventory(root)
	require.NoError(t, err)
	for _, p := range parts {
		if p.Table == warehouse.EventsTable && p.Marked {
			h, err := warehouse.ParseHourDir(p.Dir)
			require.NoError(t, err)
			m, _, err := warehouse.ReadMarker(p.Dir)
			require.NoError(t, err)
			want[h] = m.Rows
		}
	}
	require.Equal(t, want, got)
}

// lagSeries is portrait_landing_consumer_lag_records by partition label.
func lagSeries(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	lags := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "portrait_landing_consumer_lag_records" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					lags[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return lags
}
