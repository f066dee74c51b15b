package landing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Lander is one member of the landing consumer group.
type Lander struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu sync.Mutex
	// parts holds the watermark state of the partitions this member owns.
	parts map[int32]*partWatermark
	// pending are the hours written since they were last closed, with a
	// sequence number that tells a close from a newer write.
	pending map[schemas.Timestamp]uint64
	seq     uint64
}

type partWatermark struct {
	reached    schemas.Timestamp
	hasReached bool
	idle       bool
}

// New validates cfg. Run consumes.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Lander, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("landing config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Lander{cfg: cfg, log: logger, m: newMetrics(reg),
		parts: map[int32]*partWatermark{}, pending: map[schemas.Timestamp]uint64{}}, nil
}

// Run consumes the events topic until ctx is done, closing hours and
// loading them into ClickHouse as it goes. On a clean stop every buffered
// record is committed to files first. It returns an error when the
// warehouse cannot be written (the process should exit and restart: no
// record is lost or landed twice by that).
func (l *Lander) Run(ctx context.Context) error {
	kc := l.cfg.Kafka
	sc, err := saramaConfig(kc)
	if err != nil {
		return err
	}

	if err := l.loadOpenHours(); err != nil {
		return err
	}
	if l.cfg.ClickHouse != nil {
		if err := chbatch.EnsureSchema(ctx, l.cfg.ClickHouse, l.cfg.Catalog); err != nil {
			return fmt.Errorf("landing: clickhouse schema: %w", err)
		}
	}
	g, err := kafka.OpenGroup(kc, l.cfg.ConsumerTuning, sc) // positions come from the warehouse
	if err != nil {
		return err
	}
	defer g.Close()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := &handler{l: l, client: g.Client, dlq: dlq.NewWriter(g.Producer, kc.DLQTopic), fatal: cancel}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.closeLoop(runCtx)
	}()

	l.log.Info("landing consuming", "brokers", kc.Brokers, "topic", kc.Topic, "group", kc.Group, "warehouse", l.cfg.Warehouse)
	cerr := g.Run(runCtx, []string{kc.Topic}, h, l.log)
	cancel(nil)
	wg.Wait()
	if err := context.Cause(runCtx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if cerr != nil {
		l.log.Warn("closing consumer group", "err", cerr)
	}
	l.log.Info("landing stopped")
	return nil
}

// saramaConfig is the consumer configuration of the landing: the
// configured fetch size (1 MiB per partition by default), a message
// channel of channelBuffer, so that a ConsumeClaim batch is up to a
// thousand records, and fetches that wait at most fetchWait for records.
// Larger fetches and deeper channels cost more CPU per record, not less
// (measured with BenchmarkLand: 16 MiB fetches ≈20 % more than
// 256 KiB–1 MiB): the records are decoded long after they were fetched,
// out of cache, and the broker builds larger responses.
//
// A stop or a rebalance ends a claim only once the fetch in flight for
// its partition returns, so sarama's default wait of 500 ms for a
// caught-up partition was the bulk of a clean stop (0.48–0.49 s, against
// 0.01–0.1 s for committing what is buffered; 0.08–0.09 s in all at
// 100 ms). A caught-up landing then asks the broker ten times a second
// instead of twice: 7–8 ms of CPU per second instead of 6 (with an
// in-process broker).
func saramaConfig(kc kafka.Config) (*sarama.Config, error) {
	sc, err := kc.Sarama()
	if err != nil {
		return nil, fmt.Errorf("landing kafka config: %w", err)
	}
	sc.Consumer.MaxWaitTime = fetchWait
	sc.ChannelBufferSize = channelBuffer
	return sc, nil
}

// loadOpenHours queues for closing every hour that has files but no
// marker, or files its marker does not list (written before a restart).
func (l *Lander) loadOpenHours() error {
	parts, err := warehouse.Inventory(l.cfg.Warehouse)
	if err != nil {
		return fmt.Errorf("landing: listing the warehouse: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range parts {
		if p.Table != warehouse.EventsTable || p.Complete || len(p.Files) == 0 {
			continue
		}
		start, err := warehouse.ParseHourDir(p.Dir)
		if err != nil {
			continue
		}
		l.seq++
		l.pending[start] = l.seq
	}
	return nil
}

// Watermark is the landing watermark: the least event time reached (in
// committed files) over the owned partitions that are not idle, or the
// greatest over all of them when every one is idle. ok is false while a
// partition that is not idle has landed nothing yet, or none is owned.
func (l *Lander) Watermark() (wm schemas.Timestamp, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watermarkLocked()
}

func (l *Lander) watermarkLocked() (schemas.Timestamp, bool) {
	if len(l.parts) == 0 {
		return 0, false
	}
	var (
		active, idleMax  schemas.Timestamp
		haveActive, some bool
	)
	for _, p := range l.parts {
		if p.idle {
			if p.hasReached && (!some || p.reached > idleMax) {
				idleMax, some = p.reached, true
			}
			continue
		}
		if !p.hasReached {
			return 0, false
		}
		if !haveActive || p.reached < active {
			active, haveActive = p.reached, true
		}
	}
	if haveActive {
		return active, true
	}
	return idleMax, some
}

func (l *Lander) setPartition(p int32, fn func(*partWatermark)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pw := l.parts[p]
	if pw == nil {
		pw = &partWatermark{}
		l.parts[p] = pw
	}
	fn(pw)
}

func (l *Lander) dropPartitions(keep map[int32]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.parts {
		if !keep[p] {
			delete(l.parts, p)
		}
	}
}

// noteWritten records hours that got a new file.
func (l *Lander) noteWritten(hours []schemas.Timestamp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range hours {
		l.seq++
		l.pending[h] = l.seq
	}
}

// PendingHours lists the hours written and not closed since, oldest
// first.
func (l *Lander) PendingHours() []schemas.Timestamp {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]schemas.Timestamp, 0, len(l.pending))
	for h := range l.pending {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func hourDir(root string, h schemas.Timestamp) string { return warehouse.HourDir(root, h) }
