package landing

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/portrait-dev/portrait/batch/chbatch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

const hourMillis = schemas.Timestamp(time.Hour / time.Millisecond)

func (l *Lander) closeLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.CloseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.CloseHours(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("closing hours", "err", err)
		}
		if l.cfg.ClickHouse != nil {
			if _, err := l.LoadQueued(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("loading hours into clickhouse", "err", err)
			}
		}
	}
}

// CloseResult is what one CloseHours pass did.
type CloseResult struct {
	Watermark schemas.Timestamp
	// Closed were closed for the first time, Reopened closed again after
	// stragglers.
	Closed, Reopened []schemas.Timestamp
}

// CloseHours closes every written hour whose end plus the allowed
// lateness the watermark has passed: it queues the hour for (re-)loading,
// then writes its _SUCCESS marker listing every file and the row count,
// holding the warehouse lock. An hour that had a marker already got
// stragglers: it is re-opened and closed again. Run calls it every
// CloseInterval.
func (l *Lander) CloseHours(ctx context.Context) (CloseResult, error) {
	var res CloseResult
	l.mu.Lock()
	wm, ok := l.watermarkLocked()
	if !ok {
		l.mu.Unlock()
		return res, nil
	}
	res.Watermark = wm
	l.m.watermark.Set(float64(wm) / 1000)
	type cand struct {
		h   schemas.Timestamp
		seq uint64
	}
	var cands []cand
	lateness := schemas.Timestamp(l.cfg.AllowedLateness / time.Millisecond)
	for h, seq := range l.pending {
		if h+hourMillis+lateness <= wm {
			cands = append(cands, cand{h, seq})
		}
	}
	l.mu.Unlock()
	if len(cands) == 0 {
		return res, nil
	}
	unlock, err := warehouse.LockWarehouse(l.cfg.Warehouse)
	if err != nil {
		return res, err
	}
	defer func() { _ = unlock() }()
	now := l.cfg.Now()
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dir := hourDir(l.cfg.Warehouse, c.h)
		_, had, err := warehouse.ReadMarker(dir)
		if err != nil {
			return res, err
		}
		reason := "closed"
		if had {
			reason = "reopened"
		}
		// Queue first: a crash after the marker but before the queue
		// would leave a closed hour that is never loaded.
		if err := enqueueReload(l.cfg.Warehouse, c.h, reason, now); err != nil {
			return res, err
		}
		if err := warehouse.CloseHour(dir); err != nil {
			return res, fmt.Errorf("closing hour %s: %w", c.h, err)
		}
		if had {
			res.Reopened = append(res.Reopened, c.h)
			l.m.reopened.Inc()
		} else {
			res.Closed = append(res.Closed, c.h)
			l.m.closed.Inc()
		}
		l.mu.Lock()
		if l.pending[c.h] == c.seq {
			delete(l.pending, c.h)
		}
		l.mu.Unlock()
		l.log.Debug("hour closed", "hour", c.h, "reopened", had)
	}
	return res, nil
}

// LoadQueued loads every queued hour that is closed into ClickHouse
// (chbatch.LoadEvents: staging table + REPLACE PARTITION, so loading an
// hour again replaces it) from the files its marker lists, and takes it
// off the queue. Corrupt files are quarantined (the marker is rewritten
// without them) and the hour stays queued for the next pass. It returns
// the hours loaded.
func (l *Lander) LoadQueued(ctx context.Context) ([]schemas.Timestamp, error) {
	if l.cfg.ClickHouse == nil {
		return nil, nil
	}
	return loadQueued(ctx, l.cfg.Warehouse, l.cfg.Catalog, l.cfg.ClickHouse, l.m)
}

// LoadQueued works the re-load queue of the warehouse at root without a
// running landing (see Lander.LoadQueued), e.g. from a job.
func LoadQueued(ctx context.Context, root string, cat *schemas.Catalog, ch *clickhouse.Client) ([]schemas.Timestamp, error) {
	return loadQueued(ctx, root, cat, ch, nil)
}

func loadQueued(ctx context.Context, root string, cat *schemas.Catalog, ch *clickhouse.Client, m *metrics) ([]schemas.Timestamp, error) {
	hours, err := ReloadQueue(root)
	if err != nil {
		return nil, err
	}
	if m != nil {
		m.reloadQueue.Set(float64(len(hours)))
	}
	var loaded []schemas.Timestamp
	for _, h := range hours {
		if err := ctx.Err(); err != nil {
			return loaded, err
		}
		dir := hourDir(root, h)
		marker, ok, err := warehouse.ReadMarker(dir)
		if err != nil {
			return loaded, err
		}
		if !ok {
			continue // queued just before its marker: next pass
		}
		files := make([]string, len(marker.Files))
		for i, f := range marker.Files {
			files[i] = filepath.Join(dir, f.Name)
		}
		events, err := warehouse.ReadEventRows(ctx, cat, files)
		if err != nil {
			if q, isCorrupt, qerr := quarantineLocked(root, err); isCorrupt {
				if m != nil {
					m.quarantined.Inc()
				}
				if qerr != nil {
					return loaded, qerr
				}
				return loaded, fmt.Errorf("loading hour %s: quarantined %s: %s", h, q.Path, q.Reason)
			}
			if m != nil {
				m.loadErrors.Inc()
			}
			return loaded, fmt.Errorf("loading hour %s: %w", h, err)
		}
		if err := chbatch.LoadEvents(ctx, ch, cat, h, events); err != nil {
			if m != nil {
				m.loadErrors.Inc()
			}
			return loaded, fmt.Errorf("loading hour %s: %w", h, err)
		}
		if err := dequeueReload(root, h); err != nil {
			return loaded, err
		}
		loaded = append(loaded, h)
		if m != nil {
			m.loaded.Inc()
			m.reloadQueue.Dec()
		}
	}
	return loaded, nil
}

func quarantineLocked(root string, err error) (warehouse.Quarantined, bool, error) {
	unlock, lerr := warehouse.LockWarehouse(root)
	if lerr != nil {
		return warehouse.Quarantined{}, true, lerr
	}
	defer func() { _ = unlock() }()
	return warehouse.QuarantineCorrupt(root, err)
}
