package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/eventjson"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
	"github.com/portrait-dev/portrait/stream/internal/yield"
	"github.com/portrait-dev/portrait/stream/state"
)

// Speed is the speed layer: a member of the consumer group that keeps
// every owned user's tags up to date and serves them.
type Speed struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	x     *incremental.Executor
	store *state.Store
	eng   *engine
}

// New validates cfg and opens the state store. Run consumes; Close
// releases the store.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Speed, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("speed layer config: %w", err)
	}
	x, err := incremental.New(cfg.Catalog, cfg.Grace)
	if err != nil {
		return nil, fmt.Errorf("speed layer config: grace: %w", err)
	}
	store, err := state.Open(cfg.StateDir, cfg.Catalog.Hash, logger)
	if err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	m.stateBytes.Set(float64(store.DiskUsage()))
	return &Speed{cfg: cfg, log: logger, m: m, x: x, store: store, eng: newEngine(x, store, m)}, nil
}

// Close closes the state store. Call it after Run returned.
func (s *Speed) Close() error { return s.store.Close() }

// Run consumes the events topic until ctx is done, then checkpoints and
// returns nil; it returns an error when the state cannot be loaded or
// written (the process should exit and restart from the store).
func (s *Speed) Run(ctx context.Context) error {
	kc := s.cfg.Kafka
	sc, err := kc.Sarama()
	if err != nil {
		return fmt.Errorf("speed layer kafka config: %w", err)
	}
	// Deep channels so that a claim finds a whole batch waiting, and
	// large fetches (Config.ApplyDefaults) so that few round trips fill
	// them.
	sc.ChannelBufferSize = max(sc.ChannelBufferSize, 4*maxBatch)
	g, err := kafka.OpenGroup(kc, s.cfg.ConsumerTuning, sc) // positions come from the store
	if err != nil {
		return err
	}
	defer g.Close()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := &handler{s: s, client: g.Client, dlq: dlq.NewWriter(g.Producer, kc.DLQTopic), fatal: cancel,
		trigger: make(chan struct{}, 1), start: map[int32]int64{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.checkpointLoop(runCtx)
	}()

	s.log.Info("speed layer consuming", "brokers", kc.Brokers, "topic", kc.Topic, "group", kc.Group, "state", s.cfg.StateDir)
	cerr := g.Run(runCtx, []string{kc.Topic}, h, s.log)
	cancel(nil)
	wg.Wait()
	if err := context.Cause(runCtx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if _, err := s.eng.checkpoint(true); err != nil {
		return fmt.Errorf("final checkpoint: %w", err)
	}
	if cerr != nil {
		s.log.Warn("closing consumer group", "err", cerr)
	}
	s.log.Info("speed layer stopped", "watermark", s.Watermark())
	return nil
}

// Checkpoint writes the dirty state now (Run also does every
// CheckpointInterval).
func (s *Speed) Checkpoint() error {
	_, err := s.eng.checkpoint(false)
	return err
}

// Lookup returns the live profile of the user with key (an int64 or
// decimal string for int64 keys, a string for string keys): the values as
// of the end of the bucket holding the watermark. False when this instance
// does not hold the user or the user has no event in any window.
func (s *Speed) Lookup(key any) (schemas.Profile, bool) { return s.eng.lookup(key) }

// BatchLookup looks up many keys; found[i] tells whether profiles[i] is
// set.
func (s *Speed) BatchLookup(keys []any) (profiles []schemas.Profile, found []bool) {
	profiles = make([]schemas.Profile, len(keys))
	found = make([]bool, len(keys))
	for i, k := range keys {
		profiles[i], found[i] = s.eng.lookup(k)
	}
	return profiles, found
}

// ValuesAsOf returns the profile of key as of the bucket boundary asOf,
// or ErrNotCovered when the kept buckets do not reach back that far.
func (s *Speed) ValuesAsOf(key any, asOf schemas.Timestamp) (schemas.Profile, bool, error) {
	return s.eng.asOf(key, asOf)
}

// ProfilesAsOf returns every held user's profile as of asOf, sorted by
// key, with the users reference.Evaluate would return.
func (s *Speed) ProfilesAsOf(asOf schemas.Timestamp) ([]schemas.Profile, error) {
	return s.eng.profilesAsOf(asOf)
}

// Positions returns, per owned partition, the offset of the first record
// not yet in the state (-1: none consumed yet). Summed over a topic whose
// partitions start at offset 0, it is the number of records applied or
// dead-lettered: a harness waits for it to reach the record count.
func (s *Speed) Positions() map[int32]int64 { return s.eng.positions() }

// Applied is the number of records consumed so far across the owned
// partitions, counted from offset 0: the sum of Positions.
func (s *Speed) Applied() int64 {
	var n int64
	for _, next := range s.eng.positions() {
		n += max(next, 0)
	}
	return n
}

// Lag is the number of records between the owned partitions' positions
// and their high-water marks as last seen by the consumer; false until
// every owned partition has reported one. Lag 0 with Ready means caught
// up.
func (s *Speed) Lag() (int64, bool) { return s.eng.lag() }

// Watermark is the newest event time applied (never ahead of the wall
// clock plus the allowed skew).
func (s *Speed) Watermark() schemas.Timestamp {
	s.eng.mu.RLock()
	defer s.eng.mu.RUnlock()
	return s.eng.watermark
}

// AsOf is the as-of time of the live values: the end of the watermark's
// bucket.
func (s *Speed) AsOf() schemas.Timestamp { return s.x.LiveAsOf(s.Watermark()) }

// Snapshot is the batch snapshot the lifetime tags rest on (Rebase);
// false before any: the lifetime tags then cover every event applied.
func (s *Speed) Snapshot() (schemas.Timestamp, bool) { return s.Rebased() }

// CatalogHash identifies the catalog the values follow.
func (s *Speed) CatalogHash() string { return s.cfg.Catalog.Hash }

// Catalog is the catalog the values follow.
func (s *Speed) Catalog() *schemas.Catalog { return s.cfg.Catalog }

// Ready reports whether the instance owns its partitions and has caught
// up with each at least once since the last rebalance.
func (s *Speed) Ready() bool { return s.eng.ready() }

// handler is the sarama consumer-group handler. The group is used for
// partition assignment only: every claimed partition starts at the next
// offset in the state store (Setup resets the session's offsets to it),
// and the group's committed offsets are only written for monitoring.
type handler struct {
	s       *Speed
	client  sarama.Client
	dlq     *dlq.Writer
	fatal   context.CancelCauseFunc
	trigger chan struct{}

	mu    sync.Mutex
	sess  sarama.ConsumerGroupSession
	start map[int32]int64
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	topic := h.s.cfg.Kafka.Topic
	claims := sess.Claims()[topic]
	keep := map[int32]bool{}
	for _, p := range claims {
		keep[p] = true
	}
	h.s.eng.release(keep)
	h.s.m.lag.Keep(keep)
	start := map[int32]int64{}
	for _, p := range claims {
		next, err := h.s.eng.load(p)
		if err != nil {
			err = fmt.Errorf("loading partition %d: %w", p, err)
			h.fatal(err)
			return err
		}
		if next < 0 {
			next, err = h.client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return fmt.Errorf("partition %d: oldest offset: %w", p, err)
			}
		}
		// ResetOffset moves back, MarkOffset forward: together they set
		// the session's start to exactly next.
		sess.ResetOffset(topic, p, next, "")
		sess.MarkOffset(topic, p, next, "")
		start[p] = next
		// The lag series exists from the assignment on; ConsumeClaim
		// keeps it current.
		h.s.m.lag.Assign(h.client, topic, p, next)
	}
	h.mu.Lock()
	h.sess, h.start = sess, start
	h.mu.Unlock()
	h.s.eng.setActive(true)
	h.s.log.Info("partitions assigned", "partitions", claims, "generation", sess.GenerationID())
	return nil
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.sess = nil
	h.mu.Unlock()
	h.s.eng.setActive(false)
	// Every claim has returned: the state matches the offsets consumed.
	if err := h.checkpoint(false); err != nil {
		return err
	}
	return nil
}

func (h *handler) checkpoint(sweep bool) error {
	written, err := h.s.eng.checkpoint(sweep)
	if err != nil {
		err = fmt.Errorf("checkpoint: %w", err)
		h.s.log.Error("checkpoint failed; stopping", "err", err)
		h.fatal(err)
		return err
	}
	h.mu.Lock()
	if h.sess != nil {
		for p, next := range written {
			if next >= 0 {
				h.sess.MarkOffset(h.s.cfg.Kafka.Topic, p, next, "")
			}
		}
	}
	h.mu.Unlock()
	return nil
}

func (h *handler) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(h.s.cfg.CheckpointInterval)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.trigger:
		}
		sweep := time.Since(lastSweep) >= h.s.cfg.SweepInterval
		if sweep {
			lastSweep = time.Now()
		}
		if h.checkpoint(sweep) != nil {
			return
		}
	}
}

// maxBatch is the most records a claim decodes and applies at once.
const maxBatch = 2048

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := claim.Partition()
	h.mu.Lock()
	next, ok := h.start[p]
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("partition %d claimed without setup", p)
	}
	if claim.InitialOffset() != next {
		h.s.log.Warn("claim starts away from the stored offset", "partition", p, "claim", claim.InitialOffset(), "stored", next)
	}
	lagGauge := h.s.m.lag.Partition(p)
	if newest, err := h.client.GetOffset(claim.Topic(), p, sarama.OffsetNewest); err == nil {
		h.s.eng.setHighWater(p, newest)
		if newest <= next {
			h.s.eng.markCaughtUp(p)
			lagGauge.Set(newest, next)
		}
	}
	c := &claimState{h: h, p: p, next: next, dec: eventjson.NewDecoder(h.s.cfg.Catalog, h.s.cfg.limits())}
	msgs := make([]*sarama.ConsumerMessage, 0, maxBatch)
	idle := time.NewTicker(500 * time.Millisecond)
	defer idle.Stop()
	for {
		msgs = msgs[:0]
		select {
		case <-sess.Context().Done():
			return nil
		case <-idle.C:
			h.s.eng.setHighWater(p, claim.HighWaterMarkOffset())
			if claim.HighWaterMarkOffset() <= c.next {
				h.s.eng.markCaughtUp(p)
			}
			continue
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs = append(msgs, m)
		}
		msgs = kafka.AppendWaiting(msgs, claim.Messages(), maxBatch)
		if err := c.process(sess.Context(), msgs); err != nil {
			if sess.Context().Err() != nil {
				return nil
			}
			return err
		}
		hwm := claim.HighWaterMarkOffset()
		h.s.eng.setHighWater(p, hwm)
		if lagGauge.Set(hwm, c.next) <= 0 {
			h.s.eng.markCaughtUp(p)
		}
	}
}

// claimState is the decoding state of one claimed partition.
type claimState struct {
	h       *handler
	p       int32
	next    int64
	dec     *eventjson.Decoder
	events  []schemas.Event
	rejects []dlq.Record
}

// process decodes a batch, dead-letters the bad records (synchronously),
// then applies the good ones and moves the partition's next offset past
// the batch in one step.
func (c *claimState) process(ctx context.Context, msgs []*sarama.ConsumerMessage) error {
	s := c.h.s
	now := s.cfg.Now()
	skewCap := c.dec.Horizon(now)
	c.rejects = c.rejects[:0]
	n := 0
	next := c.next
	for i, m := range msgs {
		yield.After(i, yieldRecords)
		if m.Offset < next {
			continue // before the stored offset (a fetch may start early)
		}
		if m.Offset > next {
			s.log.Warn("offset gap (records deleted by retention?)", "partition", c.p, "expected", next, "got", m.Offset)
		}
		next = m.Offset + 1
		s.m.consumed.Inc()
		if n == len(c.events) {
			c.events = append(c.events, schemas.Event{})
		}
		e := &c.events[n]
		if r := c.dec.Decode(e, m.Key, m.Value, now); r != nil {
			c.rejects = append(c.rejects, r.Record(m.Topic, m.Partition, m.Offset, m.Key, m.Value))
			continue
		}
		e.Partition, e.Offset = m.Partition, m.Offset
		n++
	}
	if next == c.next {
		return nil
	}
	if len(c.rejects) > 0 {
		if err := c.h.dlq.Send(ctx, c.rejects); err != nil {
			return err
		}
		for i := range c.rejects {
			s.m.dlq.WithLabelValues(c.rejects[i].Reason).Inc()
		}
	}
	dirty := s.eng.apply(c.p, c.events[:n], next, skewCap)
	c.next = next
	if dirty >= s.cfg.MaxDirtyUsers {
		select {
		case c.h.trigger <- struct{}{}:
		default:
		}
	}
	return nil
}
