package stream

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/portrait-dev/portrait/schemas"
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
// attributes drift with it. It lives in memory: a restart forgets the
// marks of records before the resumed offset.
type driftLog struct {
	mu    sync.Mutex
	marks map[driftKey]*driftMark
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
	return &driftLog{marks: map[driftKey]*driftMark{}, dlqNext: map[int32]int64{}}
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
	d.mu.Unlock()
}

// forget drops every mark of keys (after they were rebuilt).
func (d *driftLog) forget(keys []any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		for _, c := range []string{causeLate, causeDuplicate, causeDLQ} {
			delete(d.marks, driftKey{c, k})
		}
	}
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
