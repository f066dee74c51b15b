package stream

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
)

func testConfig(t testing.TB, c *schemas.Catalog, kc kafka.Config, dir string) Config {
	t.Helper()
	return Config{Catalog: c, Kafka: kc, StateDir: dir, CheckpointInterval: 50 * time.Millisecond,
		ConsumerTuning: kafka.ConsumerTuning{SessionTimeout: time.Second, RebalanceTimeout: 2 * time.Second}}
}

// TestEndToEndTaobao produces the Taobao sample and generated events as
// JSON through kfake, and checks every user against the reference, across
// a restart from the Pebble store.
func TestEndToEndTaobao(t *testing.T) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 3)
	cfg := testConfig(t, c, kc, t.TempDir())
	p := kafkatest.NewProducer(t, kc, false)

	phase1 := append(taobaoEvents(t, c, "userbehavior-users-114.csv", 0), taobaoEvents(t, c, "userbehavior-stream-96k.csv", 20000)...)
	placed(phase1, p.Send(t, kafkatest.EncodeEvents(t, c, phase1, -1)))
	all := phase1

	in := startSpeed(t, cfg)
	in.waitApplied(t, int64(len(all)))
	require.Equal(t, float64(len(phase1)), metricValue(in.s.m.consumed))
	want, late := notLate(t, c, in.s.cfg.Grace, all)
	compareWithReference(t, in.s, want)
	lateSeen := metricValue(in.s.m.late)
	in.close(t)

	// Events produced while no instance runs: the restarted one resumes
	// exactly at the stored offsets (it consumes only the new records).
	o := gen.Defaults(5)
	o.Users, o.Events, o.Span = 200, 4000, 12*24*3600*1000
	phase2 := gen.Events(c, o)
	placed(phase2, p.Send(t, kafkatest.EncodeEvents(t, c, phase2, -1)))
	all = append(all, phase2...)

	in = startSpeed(t, cfg)
	in.waitApplied(t, int64(len(all)))
	require.Equal(t, float64(len(phase2)), metricValue(in.s.m.consumed), "restart re-read or skipped records")
	want, late = notLate(t, c, in.s.cfg.Grace, all)
	compareWithReference(t, in.s, want)

	// And events produced while it runs.
	o.Seed, o.Start = 6, o.Start+schemas.Timestamp(o.Span)
	phase3 := gen.Events(c, o)
	placed(phase3, p.Send(t, kafkatest.EncodeEvents(t, c, phase3, -1)))
	all = append(all, phase3...)
	in.waitApplied(t, int64(len(all)))
	want, late = notLate(t, c, in.s.cfg.Grace, all)
	compareWithReference(t, in.s, want)
	require.Equal(t, float64(late), lateSeen+metricValue(in.s.m.late), "late events")
	require.Positive(t, late, "the generated disorder should make some events late")
	in.close(t)
}

// TestDeadLetters sends a known set of bad records among good ones: the
// DLQ topic holds exactly those, with their reason and source position,
// and every good event is applied.
func TestDeadLetters(t *testing.T) {
	c := loadCatalog(t, "ecommerce")
	kc := kafkatest.StartBroker(t, testTopic, 2)
	cfg := testConfig(t, c, kc, t.TempDir())
	cfg.MaxRecordBytes = 2048
	p := kafkatest.NewProducer(t, kc, false)

	o := gen.Defaults(9)
	o.Users, o.Events = 20, 600
	good := gen.Events(c, o)
	goodRecs := kafkatest.EncodeEvents(t, c, good, -1)

	valid := string(goodRecs[0].Value)
	key := string(goodRecs[0].Key)
	future := time.Now().Add(365 * 24 * time.Hour).UnixMilli()
	replace := func(from, to string) string {
		require.Contains(t, valid, from)
		return strings.Replace(valid, from, to, 1)
	}
	tsField := fmt.Sprintf(`"ts":%d`, int64(good[0].Time))
	bad := []struct {
		reason string
		rec    kafkatest.Record
	}{
		{dlq.ReasonDecode, kafkatest.Record{Key: []byte(key), Value: []byte(`{"user_id": 1,`)}},
		{dlq.ReasonDecode, kafkatest.Record{Key: []byte(key), Value: []byte(`not json`)}},
		{dlq.ReasonDecode, kafkatest.Record{Key: []byte(key), Value: []byte(valid + ` {}`)}},
		{dlq.ReasonSchema, kafkatest.Record{Key: []byte(key), Value: []byte(replace(`"sku":`, `"skux":`))}},
		{dlq.ReasonSchema, kafkatest.Record{Key: []byte(key), Value: []byte(replace(`"event_type":"`, `"event_type":"zz`))}},
		{dlq.ReasonSchema, kafkatest.Record{Key: []byte(key), Value: []byte(replace(`"promo":`, `"promo":"yes","x":`))}},
		{dlq.ReasonKey, kafkatest.Record{Key: []byte("someone-else"), Value: []byte(valid)}},
		{dlq.ReasonFuture, kafkatest.Record{Key: []byte(key), Value: []byte(replace(tsField, `"ts":`+strconv.FormatInt(future, 10)))}},
		{dlq.ReasonFuture, kafkatest.Record{Key: []byte(key), Value: []byte(replace(tsField, fmt.Sprintf(`"ts":%q`, time.UnixMilli(future).UTC().Format(time.RFC3339))))}},
		{dlq.ReasonTooLarge, kafkatest.Record{Key: []byte(key), Value: []byte(strings.TrimSuffix(valid, "}") + `,"pad":"` + strings.Repeat("x", 3000) + `"}`)}},
		{dlq.ReasonTooLarge, kafkatest.Record{Key: []byte(strings.Repeat("k", 4000)), Value: []byte(valid)}},
	}
	// Interleave: bad record i after good record 50·i.
	var recs []kafkatest.Record
	var isBad []int // index into bad, or -1
	for i := range goodRecs {
		recs = append(recs, goodRecs[i])
		isBad = append(isBad, -1)
		if i%50 == 0 && i/50 < len(bad) {
			recs = append(recs, bad[i/50].rec)
			isBad = append(isBad, i/50)
		}
	}
	require.Len(t, recs, len(good)+len(bad))
	at := p.Send(t, recs)
	var goodPlaced []schemas.Event
	wantPos := map[string]string{} // "partition/offset" → reason
	for i, b := range isBad {
		if b >= 0 {
			wantPos[fmt.Sprintf("%d/%d", at[i].Partition, at[i].Offset)] = bad[b].reason
			continue
		}
		e := good[len(goodPlaced)]
		e.Partition, e.Offset = at[i].Partition, at[i].Offset
		goodPlaced = append(goodPlaced, e)
	}

	in := startSpeed(t, cfg)
	defer in.close(t)
	in.waitApplied(t, int64(len(recs)))

	got := kafkatest.ReadTopic(t, kc, kc.DLQTopic, len(bad))
	require.Len(t, got, len(bad))
	byReason := map[string]int{}
	for _, r := range got {
		pos := r.Headers["source_partition"] + "/" + r.Headers["source_offset"]
		reason, ok := wantPos[pos]
		require.True(t, ok, "unexpected DLQ record from %s: %v", pos, r.Headers)
		require.Equal(t, reason, r.Headers["reason"], "record at %s (%s)", pos, r.Headers["error"])
		require.Equal(t, testTopic, r.Headers["source_topic"])
		require.NotEmpty(t, r.Headers["error"])
		delete(wantPos, pos)
		byReason[reason]++
		// The original key and value travel along.
		found := false
		for _, b := range bad {
			if string(b.rec.Key) == r.Key && string(b.rec.Value) == r.Value {
				found = true
			}
		}
		require.True(t, found, "DLQ record at %s does not carry its original key and value", pos)
	}
	require.Empty(t, wantPos)
	for reason, n := range byReason {
		require.Equal(t, float64(n), metricValue(in.s.m.dlq.WithLabelValues(reason)), reason)
	}
	applied := metricValue(in.s.m.applied) + metricValue(in.s.m.duplicates)
	require.Equal(t, float64(len(good)), applied, "every good event applied or de-duplicated")
	require.Zero(t, metricValue(in.s.m.late))
	compareWithReference(t, in.s, goodPlaced)
}

// TestLateEvents checks that events older than the kept buckets are
// counted late and change nothing.
func TestLateEvents(t *testing.T) {
	c := loadCatalog(t, "taobao")
	kc := kafkatest.StartBroker(t, testTopic, 1)
	cfg := testConfig(t, c, kc, t.TempDir())
	cfg.Grace = time.Hour
	p := kafkatest.NewProducer(t, kc, false)

	const h = int64(time.Hour / time.Millisecond)
	t0 := int64(1511568000000) // 2017-11-25T00:00:00Z
	ev := func(user int64, ts int64, behavior string) schemas.Event {
		return schemas.Event{Values: []any{user, int64(7), int64(100 + user), behavior, schemas.Timestamp(ts)}, Time: schemas.Timestamp(ts)}
	}
	// Kept from: end of the watermark's bucket − 7d window − 1h grace.
	wm := t0 + 10*24*h
	keepFrom := wm - wm%h + h - 7*24*h - h
	events := []schemas.Event{
		ev(1, t0+5*24*h, "pv"),
		ev(1, wm, "buy"),            // moves the watermark
		ev(1, t0, "buy"),            // late
		ev(2, keepFrom-1, "pv"),     // late by 1 ms
		ev(2, keepFrom, "pv"),       // kept
		ev(1, keepFrom+3*h, "cart"), // kept
		ev(3, t0+h, "buy"),          // late: a new user stays absent
	}
	placed(events, p.Send(t, kafkatest.EncodeEvents(t, c, events, -1)))
	in := startSpeed(t, cfg)
	defer in.close(t)
	in.waitApplied(t, int64(len(events)))
	require.Equal(t, float64(3), metricValue(in.s.m.late))
	require.Equal(t, float64(4), metricValue(in.s.m.applied))
	want, late := notLate(t, c, in.s.cfg.Grace, events)
	require.Equal(t, 3, late)
	compareWithReference(t, in.s, want)
	_, ok := in.s.Lookup(int64(3))
	require.False(t, ok)
	_, _, err := in.s.ValuesAsOf(int64(1), schemas.Timestamp(keepFrom))
	require.ErrorIs(t, err, ErrNotCovered)
}
