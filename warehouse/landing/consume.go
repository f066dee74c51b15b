package landing

import (
	"context"
	"fmt"
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
// conditions; channelBuffer is the depth of sarama's message channel and
// fetchWait the longest a fetch waits for records (see saramaConfig).
const (
	maxBatch      = 4096
	channelBuffer = 1024
	fetchWait     = 100 * time.Millisecond
)

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := claim.Partition()
	h.mu.Lock()
	next, ok := h.start[p]
	committed := h.committed[p]
	st := h.reached[p]
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("partition %d claimed without setup", p)
	}
	c := newClaimState(h.l, sess, p, next, committed, st)
	err := h.consume(c, claim)
	// Whatever ended the claim, the commit in flight finishes before the
	// partition can move to another owner.
	if werr := c.wait(); err == nil && werr != nil {
		h.fatal(werr)
		err = werr
	}
	return err
}

func (h *handler) consume(c *claimState, claim sarama.ConsumerGroupClaim) error {
	sess := c.sess
	tick := time.NewTicker(tickEvery(h.l.cfg))
	defer tick.Stop()
	msgs := make([]*sarama.ConsumerMessage, 0, maxBatch)
	for {
		msgs = msgs[:0]
		select {
		case <-sess.Context().Done():
			// A clean stop or a rebalance: commit what is buffered, so
			// the next owner need not read it again.
			return c.stop()
		case <-c.committing():
			if err := c.wait(); err != nil {
				h.fatal(err)
				return err
			}
			continue
		case <-tick.C:
			if err := c.tick(claim); err != nil {
				h.fatal(err)
				return err
			}
			continue
		case m, ok := <-claim.Messages():
			if !ok {
				return c.stop()
			}
			msgs = append(msgs, m)
		}
		msgs = kafka.AppendWaiting(msgs, claim.Messages(), maxBatch)
		if err := c.process(sess.Context(), h.dlq, msgs); err != nil {
			if sess.Context().Err() != nil {
				return c.stop()
			}
			h.fatal(err)
			return err
		}
		c.lag.Set(claim.HighWaterMarkOffset(), c.next)
		if c.bufBytes >= h.l.cfg.RollBytes {
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
	// next is the next offset to read; launched the position the last
	// commit started (every record before it is committed or being
	// committed).
	next, launched int64
	// committed is the highest committed offset by hour (see
	// committedOffsets): records at or below it are dropped.
	committed map[schemas.Timestamp]int64
	// reached is the newest event time committed or being committed;
	// bufMax the newest buffered.
	reached, bufMax       schemas.Timestamp
	hasReached, hasBufMax bool
	// inflight is the commit being written, if any (flush.go).
	inflight   *commit
	dec        *decoder
	lag        kafka.LagGauge
	bufs       map[schemas.Timestamp]*hourBuf
	free       []*warehouse.EventColumns
	bufBytes   int64
	bufSince   time.Time
	lastRecord time.Time
	rejects    []dlq.Record
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

// newClaimState starts partition p at offset next, with the highest
// committed offset by hour and the partition's landing state.
func newClaimState(l *Lander, sess sarama.ConsumerGroupSession, p int32, next int64,
	committed map[schemas.Timestamp]int64, st partitionState) *claimState {
	if committed == nil {
		committed = map[schemas.Timestamp]int64{}
	}
	return &claimState{l: l, sess: sess, p: p, next: next, launched: next, committed: committed,
		reached: schemas.Timestamp(st.Reached), hasReached: st.HasReached, dec: newDecoder(l.cfg.Catalog, l.cfg.limits()),
		bufs: map[schemas.Timestamp]*hourBuf{}, lastRecord: l.cfg.Now(), lag: l.m.lag.Partition(p)}
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
		// The hour of the last record, its committed offset and its
		// buffer (nil until a record of it is buffered): records come in
		// runs of one hour, so the maps are read once per run.
		lastH               schemas.Timestamp
		lastCommitted       int64
		haveH, hasCommitted bool
		lastB               *hourBuf
		bufMax              = c.bufMax
		hasBufMax           = c.hasBufMax
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
		if h := warehouse.HourStart(t); !haveH || h != lastH {
			lastH, haveH, lastB = h, true, nil
			lastCommitted, hasCommitted = c.committed[h]
		}
		if hasCommitted && m.Offset <= lastCommitted {
			skipped++ // already in a committed file
			continue
		}
		if lastB == nil {
			lastB = c.buf(lastH)
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
