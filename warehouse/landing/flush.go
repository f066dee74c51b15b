package landing

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// commit is one flush of a partition's buffers: the files of its hours,
// then the partition's position, written by a goroutine of its own while
// the claim decodes on into fresh buffers (so that one partition's
// Parquet writing overlaps another's — or its own — decoding). A
// partition has at most one commit in flight, and the claim applies a
// commit's outcome to its in-memory state (committed offsets, watermark,
// group offset, pending hours) only once the commit is durable, in its
// own goroutine. Buffering is bounded by twice RollBytes per partition.
type commit struct {
	hours []schemas.Timestamp
	cols  []*warehouse.EventColumns // by hour
	st    partitionState
	start time.Time
	done  chan struct{}
	// Set by the goroutine before done is closed.
	sizes []int64
	err   error
}

// committing is closed when the commit in flight is durable (nil: none
// in flight; a nil channel never fires in a select).
func (c *claimState) committing() <-chan struct{} {
	if c.inflight == nil {
		return nil
	}
	return c.inflight.done
}

// tick rolls files that are old enough, moves the position past records
// that left no file (DLQ'd or already committed), and tells whether the
// partition is idle.
func (c *claimState) tick(claim sarama.ConsumerGroupClaim) error {
	cfg := &c.l.cfg
	now := cfg.Now()
	if (c.bufBytes > 0 && now.Sub(c.bufSince) >= cfg.RollAge) || (c.bufBytes == 0 && c.next != c.launched) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	hwm := claim.HighWaterMarkOffset()
	if hwm > 0 {
		// 0 until the first fetch: the lag set on assignment stands.
		c.lag.Set(hwm, c.next)
	}
	// Not idle while a commit is in flight: the watermark must not pass
	// event times whose files are not committed yet.
	idle := c.bufBytes == 0 && c.inflight == nil && hwm <= c.next && now.Sub(c.lastRecord) >= cfg.IdleTimeout
	c.l.setPartition(c.p, func(pw *partWatermark) { pw.idle = idle })
	return nil
}

// stop commits what is buffered and waits until it is durable.
func (c *claimState) stop() error {
	err := c.flush()
	if err == nil {
		err = c.wait()
	}
	if err != nil {
		c.l.log.Error("committing buffered records on stop", "partition", c.p, "err", err)
	}
	return err
}

// flush starts committing the buffered records, after the commit in
// flight (if any) is durable: one file per hour (all written to temp
// names and fsynced, then renamed, then each folder fsynced), then the
// partition's position and reached event time. A crash in between leaves
// files whose records the next run drops when it reads them again.
func (c *claimState) flush() error {
	if c.bufBytes == 0 && c.next == c.launched {
		return nil
	}
	if err := c.wait(); err != nil {
		return err
	}
	l := c.l
	now := l.cfg.Now()
	ingest := schemas.TimestampOf(now)
	cm := &commit{start: time.Now(), done: make(chan struct{}), hours: make([]schemas.Timestamp, 0, len(c.bufs))}
	for h := range c.bufs {
		cm.hours = append(cm.hours, h)
	}
	sort.Slice(cm.hours, func(i, j int) bool { return cm.hours[i] < cm.hours[j] })
	files := make([]warehouse.AtomicFile, len(cm.hours))
	for i, h := range cm.hours {
		cols := c.bufs[h].cols
		delete(c.bufs, h)
		cm.cols = append(cm.cols, cols)
		first, last := cols.Offset(0), cols.Offset(cols.Len()-1)
		files[i] = warehouse.AtomicFile{
			Path:  filepath.Join(hourDir(l.cfg.Warehouse, h), warehouse.PartName(c.p, first, last)),
			Write: func(w io.Writer) error { return warehouse.WriteEventColumns(w, cols, ingest) },
		}
	}
	if c.hasBufMax && (!c.hasReached || c.bufMax > c.reached) {
		c.reached, c.hasReached = c.bufMax, true
	}
	cm.st = partitionState{Topic: l.cfg.Kafka.Topic, Partition: c.p, Next: c.next,
		Reached: int64(c.reached), HasReached: c.hasReached, Written: now.UTC()}
	c.launched = c.next
	c.bufBytes, c.bufSince, c.hasBufMax = 0, time.Time{}, false
	c.inflight = cm
	go func() {
		defer close(cm.done)
		// One commit for every hour's file: written and fsynced
		// concurrently, then renamed, then one fsync per hour folder;
		// the position only after.
		sizes, err := warehouse.WriteFilesAtomic(files)
		if err == nil {
			err = writePartitionState(l.cfg.Warehouse, cm.st)
		}
		if err != nil {
			cm.err = fmt.Errorf("landing partition %d: %w", cm.st.Partition, err)
		}
		cm.sizes = sizes
	}()
	return nil
}

// wait waits for the commit in flight, if any, and applies it: its hours'
// committed offsets, the partition's reached event time, the group offset
// and the hours to close. Its buffers go back to the free list.
func (c *claimState) wait() error {
	cm := c.inflight
	if cm == nil {
		return nil
	}
	<-cm.done
	c.inflight = nil
	if cm.err != nil {
		return cm.err
	}
	l := c.l
	for i, h := range cm.hours {
		cols := cm.cols[i]
		c.committed[h] = cols.Offset(cols.Len() - 1)
		l.m.files.Inc()
		l.m.rows.Add(float64(cols.Len()))
		l.m.bytes.Add(float64(cm.sizes[i]))
		cols.Reset()
		c.free = append(c.free, cols)
	}
	c.sess.MarkOffset(l.cfg.Kafka.Topic, c.p, cm.st.Next, "")
	reached, has := schemas.Timestamp(cm.st.Reached), cm.st.HasReached
	l.setPartition(c.p, func(pw *partWatermark) { pw.reached, pw.hasReached = reached, has })
	l.noteWritten(cm.hours)
	l.m.flushSeconds.Observe(time.Since(cm.start).Seconds())
	return nil
}
