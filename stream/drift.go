package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/state"
)

// Causes of drift the speed layer records per user (the reconciler's
// serving.Cause* names).
const (
	causeLate      = "late"
	causeDuplicate = "duplicate"
	causeDLQ       = "dlq"
)

// unknownTime marks a drift mark whose event time is unknown (a record
// that could not be decoded).
const unknownTime = schemas.Timestamp(math.MinInt64)

// driftLog remembers, per user and cause, the events the speed layer set
// aside instead of folding them in: late events (older than the kept
// buckets), duplicates (an id already applied), and dead-lettered records
// (read back from the DLQ topic by RefreshDriftMarks). The reconciler
// attributes drift with it. Late and duplicate marks are written with the
// checkpoint that covers their records (state.DriftRecord) and read back
// when the partition is loaded, so a restart neither loses nor repeats
// them.
type driftLog struct {
	mu    sync.Mutex
	marks map[driftKey]*driftMark
	// dirty are the late and duplicate marks changed since the last
	// checkpoint, with their partition (dead-letter marks are not stored:
	// they are read back from the topic).
	dirty map[driftKey]int32
	// dlqNext is the next DLQ offset to read, per DLQ partition.
	dlqNext map[int32]int64
}

type driftKey struct {
	cause string
	key   any
}

type driftMark struct {
	events int64
	// first is the oldest event time (unknownTime when one is unknown).
	first schemas.Timestamp
	// partition is the Kafka partition the user's records came from.
	partition int32
}

func newDriftLog() *driftLog {
	return &driftLog{marks: map[driftKey]*driftMark{}, dirty: map[driftKey]int32{}, dlqNext: map[int32]int64{}}
}

func (d *driftLog) add(cause string, key any, t schemas.Timestamp, partition int32) {
	d.mu.Lock()
	m := d.marks[driftKey{cause, key}]
	if m == nil {
		m = &driftMark{first: t}
		d.marks[driftKey{cause, key}] = m
	}
	m.events++
	m.first = min(m.first, t)
	m.partition = partition
	if cause != causeDLQ {
		d.dirty[driftKey{cause, key}] = partition
	}
	d.mu.Unlock()
}

// forget drops every mark of keys (after they were rebuilt).
func (d *driftLog) forget(keys []any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		for _, c := range []string{causeLate, causeDuplicate, causeDLQ} {
			dk := driftKey{c, k}
			if m := d.marks[dk]; m != nil && c != causeDLQ {
				d.dirty[dk] = m.partition
			}
			delete(d.marks, dk)
		}
	}
}

// Stored cause bytes (state.DriftRecord.Cause).
var causeBytes = map[string]byte{causeLate: 'l', causeDuplicate: 'u'}

// flush returns the changed late and duplicate marks of partition part
// as store records and clears their change marks; the caller holds the
// partition's writer lock, so they match the partition's offset in the
// same checkpoint.
func (d *driftLog) flush(keyType schemas.Type, part int32) ([]state.DriftRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.dirty) == 0 {
		return nil, nil
	}
	var out []state.DriftRecord
	for k, p := range d.dirty {
		if p != part {
			continue
		}
		delete(d.dirty, k)
		key, err := state.EncodeKey(nil, keyType, k.key)
		if err != nil {
			return nil, fmt.Errorf("encoding drift mark: %w", err)
		}
		r := state.DriftRecord{Partition: p, Cause: causeBytes[k.cause], Key: key}
		if m := d.marks[k]; m != nil {
			r.Value = binary.AppendVarint(nil, m.events)
			r.Value = binary.AppendVarint(r.Value, int64(m.first))
		}
		out = append(out, r)
	}
	return out, nil
}

// load reads the stored marks of partition p; marks in memory already
// (a partition owned again) are newer and kept.
func (d *driftLog) load(store *state.Store, p int32, keyType schemas.Type) error {
	return store.Drift(p, func(cause byte, k, v []byte) error {
		var name string
		for n, b := range causeBytes {
			if b == cause {
				name = n
			}
		}
		key, err := state.DecodeKey(keyType, k)
		if err != nil || name == "" {
			return fmt.Errorf("partition %d: corrupt drift mark %c %x", p, cause, k)
		}
		events, n1 := binary.Varint(v)
		first, n2 := binary.Varint(v[max(n1, 0):])
		if n1 <= 0 || n2 <= 0 {
			return fmt.Errorf("partition %d: corrupt drift mark %c %v", p, cause, key)
		}
		d.mu.Lock()
		if dk := (driftKey{name, key}); d.marks[dk] == nil {
			d.marks[dk] = &driftMark{events: events, first: schemas.Timestamp(first), partition: p}
		}
		d.mu.Unlock()
		return nil
	})
}

// partitionOf is the Kafka partition of key's marked records, if any.
func (d *driftLog) partitionOf(key any) (int32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range []string{causeLate, causeDuplicate, causeDLQ} {
		if m := d.marks[driftKey{c, key}]; m != nil {
			return m.partition, true
		}
	}
	return 0, false
}

// DriftMarks calls fn for every user that received events the speed
// layer set aside (late, duplicate, dlq) with their count, for the marks
// whose oldest event is before asOf or unknown.
func (s *Speed) DriftMarks(asOf schemas.Timestamp, fn func(cause string, key any, events int64)) {
	d := s.eng.drift
	d.mu.Lock()
	type row struct {
		cause  string
		key    any
		events int64
	}
	rows := make([]row, 0, len(d.marks))
	for k, m := range d.marks {
		if m.first < asOf {
			rows = append(rows, row{k.cause, k.key, m.events})
		}
	}
	d.mu.Unlock()
	for _, r := range rows {
		fn(r.cause, r.key, r.events)
	}
}

// RefreshDriftMarks reads the dead-letter topic from where the last call
// stopped up to its end and marks the users of the records (by message
// key). Without brokers configured it does nothing.
func (s *Speed) RefreshDriftMarks(ctx context.Context) error {
	kc := s.cfg.Kafka
	if len(kc.Brokers) == 0 || kc.DLQTopic == "" {
		return nil
	}
	sc, err := kc.Sarama()
	if err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		return fmt.Errorf("reading dead letters: connecting to %v: %w", kc.Brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(kc.DLQTopic)
	if err != nil {
		return fmt.Errorf("reading dead letters of %s: %w", kc.DLQTopic, err)
	}
	d := s.eng.drift
	for _, p := range parts {
		end, err := client.GetOffset(kc.DLQTopic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("reading dead letters of %s/%d: %w", kc.DLQTopic, p, err)
		}
		d.mu.Lock()
		next, ok := d.dlqNext[p]
		d.mu.Unlock()
		if !ok {
			if next, err = client.GetOffset(kc.DLQTopic, p, sarama.OffsetOldest); err != nil {
				return fmt.Errorf("reading dead letters of %s/%d: %w", kc.DLQTopic, p, err)
			}
		}
		if next >= end {
			continue
		}
		if err := s.readDLQ(ctx, consumer, p, next, end); err != nil {
			return err
		}
		d.mu.Lock()
		d.dlqNext[p] = end
		d.mu.Unlock()
	}
	return nil
}

// readDLQ marks the users of the DLQ records of partition p in [from, end).
func (s *Speed) readDLQ(ctx context.Context, consumer sarama.Consumer, p int32, from, end int64) error {
	topic := s.cfg.Kafka.DLQTopic
	pc, err := consumer.ConsumePartition(topic, p, from)
	if err != nil {
		return fmt.Errorf("reading dead letters of %s/%d from %d: %w", topic, p, from, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("reading dead letters of %s/%d: no record at offset %d within 30s", topic, p, from)
		case m := <-pc.Messages():
			source := int32(-1)
			for _, h := range m.Headers {
				if string(h.Key) == "source_partition" {
					if n, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
						source = int32(n)
					}
				}
			}
			if key, ok := s.eng.normalizeKey(string(m.Key)); ok {
				s.eng.drift.add(causeDLQ, key, unknownTime, source)
			}
			from = m.Offset + 1
			if from >= end {
				return nil
			}
		}
	}
}
