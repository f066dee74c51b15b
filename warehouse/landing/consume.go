package landing

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// handler is the sarama consumer-group handler. The group assigns
// partitions; where a claimed partition starts comes from the warehouse
// (its partition state), and the group's committed offsets only follow
// for monitoring.
type handler struct {
	l      *Lander
	client sarama.Client
	dlq    *dlq.Writer
	fatal  context.CancelCauseFunc

	mu        sync.Mutex
	start     map[int32]int64
	committed map[int32]map[schemas.Timestamp]int64
	reached   map[int32]partitionState
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	l := h.l
	topic := l.cfg.Kafka.Topic
	claims := sess.Claims()[topic]
	keep := map[int32]bool{}
	for _, p := range claims {
		keep[p] = true
	}
	l.dropPartitions(keep)
	l.m.lag.Keep(keep)
	committed, err := committedOffsets(l.cfg.Warehouse)
	if err != nil {
		h.fatal(err)
		return err
	}
	start := map[int32]int64{}
	states := map[int32]partitionState{}
	for _, p := range claims {
		st, ok, err := readPartitionState(l.cfg.Warehouse, topic, p)
		if err != nil {
			h.fatal(err)
			return err
		}
		next := st.Next
		if !ok {
			// No position: start at the oldest record; what the files
			// already hold is dropped record by record.
			next, err = h.client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return fmt.Errorf("partition %d: oldest offset: %w", p, err)
			}
			st = partitionState{Topic: topic, Partition: p, Next: next}
		}
		// ResetOffset moves back, MarkOffset forward: together they set
		// the session's start to exactly next.
		sess.ResetOffset(topic, p, next, "")
		sess.MarkOffset(topic, p, next, "")
		start[p] = next
		states[p] = st
		// The lag series exists from the assignment on; ConsumeClaim
		// keeps it current.
		l.m.lag.Assign(h.client, topic, p, next)
		l.setPartition(p, func(pw *partWatermark) {
			pw.reached, pw.hasReached, pw.idle = schemas.Timestamp(st.Reached), st.HasReached, false
		})
	}
	h.mu.Lock()
	h.start, h.committed, h.reached = start, committed, states
	h.mu.Unlock()
	l.log.Info("partitions assigned", "partitions", claims, "generation", sess.GenerationID())
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// maxBatch bounds the records decoded between two checks of the roll
// conditions.
const maxBatch = 4096

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	l := h.l
	p := claim.Partition()
	h.mu.Lock()
	next, ok := h.start[p]
	committed := h.committed[p]
	st := h.reached[p]
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("partition %d claimed without setup", p)
	}
	if committed == nil {
		committed = map[schemas.Timestamp]int64{}
	}
	c := &claimState{l: l, sess: sess, p: p, next: next, durable: next, committed: committed,
		reached: schemas.Timestamp(st.Reached), hasReached: st.HasReached, dec: newDecoder(l.cfg.Catalog, l.cfg.limits()),
		bufs: map[schemas.Timestamp]*hourBuf{}, lastRecord: l.cfg.Now(), lag: l.m.lag.Partition(p)}
	tick := time.NewTicker(tickEvery(l.cfg))
	defer tick.Stop()
	msgs := make([]*sarama.ConsumerMessage, 0, maxBatch)
	for {
		msgs = msgs[:0]
		select {
		case <-sess.Context().Done():
			// A clean stop or a rebalance: commit what is buffered, so
			// the next owner need not read it again.
			return c.stop(claim)
		case <-tick.C:
			if err := c.tick(claim); err != nil {
				h.fatal(err)
				return err
			}
			continue
		case m, ok := <-claim.Messages():
			if !ok {
				return c.stop(claim)
			}
			msgs = append(msgs, m)
		}
		msgs = kafka.AppendWaiting(msgs, claim.Messages(), maxBatch)
		if err := c.process(sess.Context(), h.dlq, msgs); err != nil {
			if sess.Context().Err() != nil {
				return c.stop(claim)
			}
			h.fatal(err)
			return err
		}
		c.lag.Set(claim.HighWaterMarkOffset(), c.next)
		if c.bufBytes >= l.cfg.RollBytes {
			if err := c.flush(); err != nil {
				h.fatal(err)
				return err
			}
		}
	}
}

func tickEvery(cfg Config) time.Duration {
	d := min(cfg.RollAge, cfg.IdleTimeout) / 4
	return max(min(d, time.Second), 5*time.Millisecond)
}

// hourBuf holds the records of one partition for one event-time hour,
// in offset order, column by column (no value boxed, nothing for the
// garbage collector to scan).
type hourBuf struct {
	cols  *warehouse.EventColumns
	bytes int64
}

// claimState is the landing state of one claimed partition.
type claimState struct {
	l    *Lander
	sess sarama.ConsumerGroupSession
	p    int32
	// next is the next offset to read; durable the partition's position
	// in the warehouse (every record before it is committed).
	next, durable int64
	// committed is the highest committed offset by hour (see
	// committedOffsets): records at or below it are dropped.
	committed map[schemas.Timestamp]int64
	// reached is the newest event time committed; bufMax the newest
	// buffered.
	reached, bufMax       schemas.Timestamp
	hasReached, hasBufMax bool
	dec                   *decoder
	lag                   kafka.LagGauge
	bufs                  map[schemas.Timestamp]*hourBuf
	free                  []*warehouse.EventColumns
	bufBytes              int64
	bufSince              time.Time
	lastRecord            time.Time
	rejects               []dlq.Record
	// undo is where each hour touched by the batch being processed stood
	// before it, to take the batch back when its rejects cannot be sent.
	undo []bufMark
}

type bufMark struct {
	h     schemas.Timestamp
	b     *hourBuf
	n     int
	bytes int64
}

// buf returns the buffer of hour h, remembering where it stood before
// the current batch.
func (c *claimState) buf(h schemas.Timestamp) *hourBuf {
	b := c.bufs[h]
	if b == nil {
		b = &hourBuf{}
		if k := len(c.free); k > 0 {
			b.cols, c.free = c.free[k-1], c.free[:k-1]
		} else {
			b.cols = warehouse.NewEventColumns(c.l.cfg.Catalog)
		}
		c.bufs[h] = b
	}
	for i := range c.undo {
		if c.undo[i].b == b {
			return b
		}
	}
	c.undo = append(c.undo, bufMark{h: h, b: b, n: b.cols.Len(), bytes: b.bytes})
	return b
}

// rollback takes back what the current batch buffered.
func (c *claimState) rollback() {
	for _, u := range c.undo {
		u.b.cols.Truncate(u.n)
		u.b.bytes = u.bytes
		if u.n == 0 {
			c.release(u.h)
		}
	}
	c.undo = c.undo[:0]
}

// release drops the (empty) buffer of hour h, keeping its memory.
func (c *claimState) release(h schemas.Timestamp) {
	if b := c.bufs[h]; b != nil {
		b.cols.Reset()
		c.free = append(c.free, b.cols)
		delete(c.bufs, h)
	}
}

// process decodes a batch into the column buffers of its hours,
// dead-letters the bad records (synchronously) and, when that fails,
// takes the batch back out of the buffers.
func (c *claimState) process(ctx context.Context, w *dlq.Writer, msgs []*sarama.ConsumerMessage) error {
	l := c.l
	now := l.cfg.Now()
	c.rejects = c.rejects[:0]
	c.undo = c.undo[:0]
	next := c.next
	var (
		consumed, skipped, bytes int64
		lastH                    schemas.Timestamp
		lastB                    *hourBuf
		bufMax                   = c.bufMax
		hasBufMax                = c.hasBufMax
	)
	for _, m := range msgs {
		if m.Offset < next {
			continue // before the position (a fetch may start early)
		}
		next = m.Offset + 1
		consumed++
		t, r := c.dec.decode(m.Key, m.Value, now)
		if r != nil {
			c.rejects = append(c.rejects, r.Record(m.Topic, m.Partition, m.Offset, m.Key, m.Value))
			continue
		}
		h := warehouse.HourStart(t)
		if last, ok := c.committed[h]; ok && m.Offset <= last {
			skipped++ // already in a committed file
			continue
		}
		if lastB == nil || h != lastH {
			lastH, lastB = h, c.buf(h)
		}
		if err := c.dec.appendTo(lastB.cols, m.Partition, m.Offset); err != nil {
			c.rollback()
			return fmt.Errorf("partition %d offset %d: buffering: %w", m.Partition, m.Offset, err)
		}
		n := int64(len(m.Key) + len(m.Value))
		lastB.bytes += n
		bytes += n
		if !hasBufMax || t > bufMax {
			bufMax, hasBufMax = t, true
		}
	}
	l.m.consumed.Add(float64(consumed))
	if skipped > 0 {
		l.m.skipped.Add(float64(skipped))
	}
	if next == c.next {
		return nil
	}
	if len(c.rejects) > 0 {
		if err := w.Send(ctx, c.rejects); err != nil {
			c.rollback()
			return err
		}
		for i := range c.rejects {
			l.m.dlq.WithLabelValues(c.rejects[i].Reason).Inc()
		}
	}
	c.undo = c.undo[:0]
	c.bufBytes += bytes
	c.bufMax, c.hasBufMax = bufMax, hasBufMax
	if c.bufSince.IsZero() && bytes > 0 {
		c.bufSince = now
	}
	c.next = next
	c.lastRecord = now
	c.l.setPartition(c.p, func(pw *partWatermark) { pw.idle = false })
	return nil
}

// tick rolls files that are old enough, moves the position past records
// that left no file (DLQ'd or already committed), and tells whether the
// partition is idle.
func (c *claimState) tick(claim sarama.ConsumerGroupClaim) error {
	cfg := &c.l.cfg
	now := cfg.Now()
	if (c.bufBytes > 0 && now.Sub(c.bufSince) >= cfg.RollAge) || (c.bufBytes == 0 && c.next != c.durable) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	hwm := claim.HighWaterMarkOffset()
	if hwm > 0 {
		// 0 until the first fetch: the lag set on assignment stands.
		c.lag.Set(hwm, c.next)
	}
	idle := c.bufBytes == 0 && hwm <= c.next && now.Sub(c.lastRecord) >= cfg.IdleTimeout
	c.l.setPartition(c.p, func(pw *partWatermark) { pw.idle = idle })
	return nil
}

func (c *claimState) stop(claim sarama.ConsumerGroupClaim) error {
	if err := c.flush(); err != nil {
		c.l.log.Error("committing buffered records on stop", "partition", c.p, "err", err)
		return err
	}
	return nil
}

// flush commits the buffered records: one file per hour (all written to
// temp names and fsynced, then renamed, then each folder fsynced), then
// the partition's position and reached event time, then the group offset. A crash in between leaves files whose
// records the next run drops when it reads them again.
func (c *claimState) flush() error {
	if c.bufBytes == 0 && c.next == c.durable {
		return nil
	}
	l := c.l
	start := time.Now()
	now := l.cfg.Now()
	ingest := schemas.TimestampOf(now)
	hours := make([]schemas.Timestamp, 0, len(c.bufs))
	for h := range c.bufs {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	// One commit for every hour's file: written and fsynced
	// concurrently, then renamed, then one fsync per hour folder.
	files := make([]warehouse.AtomicFile, len(hours))
	for i, h := range hours {
		cols := c.bufs[h].cols
		first, last := cols.Offset(0), cols.Offset(cols.Len()-1)
		files[i] = warehouse.AtomicFile{
			Path:  filepath.Join(hourDir(l.cfg.Warehouse, h), warehouse.PartName(c.p, first, last)),
			Write: func(w io.Writer) error { return warehouse.WriteEventColumns(w, cols, ingest) },
		}
	}
	sizes, err := warehouse.WriteFilesAtomic(files)
	if err != nil {
		return fmt.Errorf("landing partition %d: %w", c.p, err)
	}
	for i, h := range hours {
		cols := c.bufs[h].cols
		c.committed[h] = cols.Offset(cols.Len() - 1)
		l.m.files.Inc()
		l.m.rows.Add(float64(cols.Len()))
		l.m.bytes.Add(float64(sizes[i]))
	}
	if c.hasBufMax && (!c.hasReached || c.bufMax > c.reached) {
		c.reached, c.hasReached = c.bufMax, true
	}
	st := partitionState{Topic: l.cfg.Kafka.Topic, Partition: c.p, Next: c.next,
		Reached: int64(c.reached), HasReached: c.hasReached, Written: now.UTC()}
	if err := writePartitionState(l.cfg.Warehouse, st); err != nil {
		return fmt.Errorf("landing partition %d: %w", c.p, err)
	}
	c.durable = c.next
	c.sess.MarkOffset(l.cfg.Kafka.Topic, c.p, c.next, "")
	c.l.setPartition(c.p, func(pw *partWatermark) { pw.reached, pw.hasReached = c.reached, c.hasReached })
	l.noteWritten(hours)
	for _, h := range hours {
		c.release(h)
	}
	c.bufBytes, c.bufSince, c.hasBufMax = 0, time.Time{}, false
	l.m.flushSeconds.Observe(time.Since(start).Seconds())
	return nil
}
