package batch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// Engines a recompute can run on.
const (
	EngineLocal      = "local"
	EngineClickHouse = "clickhouse"
)

// DefaultDedupLookback is how far before the first hour it needs a
// recompute also reads, for catalogs with an id field, to recognize
// duplicates of events seen there.
const DefaultDedupLookback = 24 * time.Hour

// Publisher loads a computed snapshot somewhere else (ClickHouse
// `profiles`); it must be idempotent for a cutoff.
type Publisher interface {
	Publish(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, profiles []schemas.Profile) error
}

// SQLEngine computes the profiles as of cutoff elsewhere (inside
// ClickHouse), sorted by key.
type SQLEngine interface {
	Compute(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp) ([]schemas.Profile, error)
}

// Config configures one recompute.
type Config struct {
	// Root is the warehouse folder.
	Root    string
	Catalog *schemas.Catalog
	// Cutoff must be a bucket boundary.
	Cutoff schemas.Timestamp
	// Engine is "local" (default) or "clickhouse" (needs SQL).
	Engine string
	SQL    SQLEngine
	// Publisher, when set, gets the profiles after the snapshot is written.
	Publisher Publisher
	// Full ignores any base snapshot and reads every hour.
	Full bool
	// DedupLookback (default DefaultDedupLookback): see the package doc.
	DedupLookback time.Duration
	Logger        *slog.Logger
	// Now is the clock for durations (default time.Now).
	Now func() time.Time
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Root == "" {
		return errors.New("recompute: root: the warehouse folder is required")
	}
	if c.Catalog == nil {
		return errors.New("recompute: catalog is required")
	}
	if !c.Catalog.IsBoundary(c.Cutoff) {
		return fmt.Errorf("recompute: cutoff %s is not a bucket boundary (bucket %s); try %s",
			c.Cutoff, c.Catalog.BucketDuration(), c.Catalog.BucketStart(c.Cutoff))
	}
	switch c.Engine {
	case "":
		c.Engine = EngineLocal
	case EngineLocal:
	case EngineClickHouse:
		if c.SQL == nil {
			return errors.New("recompute: engine clickhouse needs a ClickHouse connection")
		}
	default:
		return fmt.Errorf("recompute: engine %q: want local or clickhouse", c.Engine)
	}
	if c.DedupLookback == 0 {
		c.DedupLookback = DefaultDedupLookback
	}
	if c.DedupLookback < 0 {
		return fmt.Errorf("recompute: dedup lookback %s is negative", c.DedupLookback)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Stats describes a finished recompute.
type Stats struct {
	Cutoff schemas.Timestamp
	Engine string
	// Base is the cutoff of the snapshot the lifetime tags started from
	// (nil: none), and FullReason why none was used.
	Base       *schemas.Timestamp
	FullReason string
	// Hours and Files read, Events scanned in them, Users written.
	Hours, Files int
	Events       int64
	Users        int
	Duration     time.Duration
}

// Recompute computes every profile as of cfg.Cutoff and writes the
// snapshot (replacing one of the same cutoff), then publishes it.
func Recompute(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	start := cfg.Now()
	cat, cutoff := cfg.Catalog, cfg.Cutoff
	st := Stats{Cutoff: cutoff, Engine: cfg.Engine}
	hours, err := hourRows(cfg.Root, cutoff)
	if err != nil {
		return st, err
	}
	var profiles *local.Profiles
	// boxed: the profiles as the publisher takes them, when already boxed.
	var boxed []schemas.Profile
	var state local.StateView
	if cfg.Engine == EngineClickHouse {
		if boxed, err = cfg.SQL.Compute(ctx, cat, cutoff); err != nil {
			return st, fmt.Errorf("recompute %s on clickhouse: %w", cutoff, err)
		}
		if profiles, err = local.ProfilesOf(cat, boxed); err != nil {
			return st, fmt.Errorf("recompute %s on clickhouse: %w", cutoff, err)
		}
	} else {
		var base *local.State
		if cat.HasLifetime() {
			base, st.FullReason = findBase(cfg, hours)
			if base != nil {
				c0 := base.Cutoff
				st.Base = &c0
			}
		}
		lo := readFrom(cfg, base)
		hs, err := warehouse.ListHours(cfg.Root, lo, cutoff)
		if err != nil {
			return st, err
		}
		files, err := warehouse.EventFilesFor(cfg.Root, lo, cutoff)
		if err != nil {
			return st, err
		}
		st.Hours, st.Files = len(hs), len(files)
		res, err := local.ComputeWith(ctx, cat, cutoff, eventSource(cat, files), base, keyHints(cat, files))
		if err != nil {
			return st, fmt.Errorf("recompute %s: %w", cutoff, err)
		}
		profiles, st.Events = res.Profiles, res.Scanned
		if res.State != nil {
			state = res.State
		}
	}
	st.Users = profiles.Len()
	if _, err := WriteSnapshot(cfg.Root, cat, SnapshotWrite{
		Cutoff: cutoff, Profiles: profiles, State: state, Engine: cfg.Engine, Hours: hours, Base: st.Base,
	}); err != nil {
		return st, err
	}
	if cfg.Publisher != nil {
		if boxed == nil {
			boxed = profiles.Boxed()
		}
		if err := cfg.Publisher.Publish(ctx, cat, cutoff, boxed); err != nil {
			return st, fmt.Errorf("publishing snapshot %s: %w", cutoff, err)
		}
	}
	st.Duration = cfg.Now().Sub(start)
	attrs := []any{"cutoff", cutoff.String(), "engine", st.Engine, "hours", st.Hours, "files", st.Files,
		"events", st.Events, "users", st.Users, "duration", st.Duration}
	if st.Base != nil {
		attrs = append(attrs, "base", st.Base.String())
	} else if st.FullReason != "" {
		attrs = append(attrs, "full_reason", st.FullReason)
	}
	cfg.Logger.Info("recomputed profiles", attrs...)
	return st, nil
}

// readFrom is the start of the event hours a run reads.
func readFrom(cfg Config, base *local.State) schemas.Timestamp {
	cat, cutoff := cfg.Catalog, cfg.Cutoff
	var lo schemas.Timestamp
	switch {
	case base != nil:
		lo = min(base.Cutoff, cutoff-schemas.Timestamp(cat.LongestWindow()))
	case cat.HasLifetime():
		return math.MinInt64
	default:
		lo = cutoff - schemas.Timestamp(cat.LongestWindow())
	}
	if cat.ID >= 0 {
		lo -= schemas.Timestamp(cfg.DedupLookback.Milliseconds())
	}
	return lo
}

// hourRows reads the marker row count of every event hour before cutoff
// (-1 for an hour without marker).
func hourRows(root string, cutoff schemas.Timestamp) (map[schemas.Timestamp]int64, error) {
	hs, err := warehouse.ListHours(root, math.MinInt64, cutoff)
	if err != nil {
		return nil, fmt.Errorf("listing event hours: %w", err)
	}
	out := make(map[schemas.Timestamp]int64, len(hs))
	for _, h := range hs {
		m, ok, err := warehouse.ReadMarker(h.Dir)
		if err != nil {
			return nil, err
		}
		out[h.Start] = -1
		if ok {
			out[h.Start] = m.Rows
		}
	}
	return out, nil
}

// findBase returns the state of the newest snapshot at or before the
// cutoff when it may serve as base, or why not.
func findBase(cfg Config, hours map[schemas.Timestamp]int64) (*local.State, string) {
	if cfg.Full {
		return nil, "full recompute requested"
	}
	snaps, err := warehouse.ListSnapshots(cfg.Root)
	if err != nil {
		return nil, err.Error()
	}
	var c0 schemas.Timestamp
	found := false
	for _, s := range snaps {
		if s <= cfg.Cutoff {
			c0, found = s, true
		}
	}
	if !found {
		return nil, "no earlier snapshot"
	}
	info, err := ReadSnapshotInfo(cfg.Root, c0)
	if err != nil {
		return nil, err.Error()
	}
	switch {
	case info.CatalogHash != cfg.Catalog.Hash:
		return nil, fmt.Sprintf("snapshot %s has catalog hash %s, want %s", c0, info.CatalogHash, cfg.Catalog.Hash)
	case !info.State:
		return nil, fmt.Sprintf("snapshot %s holds no lifetime state", c0)
	case info.StateFormat != stateFormat:
		return nil, fmt.Sprintf("snapshot %s: base state is in an old format (%d, this version reads %d)", c0, max(info.StateFormat, 1), stateFormat)
	}
	if why := hoursChanged(info, hours, c0); why != "" {
		return nil, fmt.Sprintf("snapshot %s: %s", c0, why)
	}
	st, err := readState(cfg.Root, cfg.Catalog, c0)
	if err != nil {
		return nil, err.Error()
	}
	return st, ""
}

// hoursChanged compares the hours before c0 now with those the snapshot
// recorded.
func hoursChanged(info SnapshotInfo, now map[schemas.Timestamp]int64, c0 schemas.Timestamp) string {
	then := map[schemas.Timestamp]int64{}
	for k, n := range info.Hours {
		h, err := hourKey(k)
		if err != nil {
			return fmt.Sprintf("bad hour %q in marker", k)
		}
		then[h] = n
	}
	for h, n := range now {
		if h >= c0 {
			continue
		}
		old, ok := then[h]
		switch {
		case !ok:
			return fmt.Sprintf("event hour %s appeared", h)
		case old != n || n < 0:
			return fmt.Sprintf("event hour %s changed (%d rows, was %d)", h, n, old)
		}
	}
	for h := range then {
		if _, ok := now[h]; !ok && h < c0 {
			return fmt.Sprintf("event hour %s vanished", h)
		}
	}
	return ""
}

// keyHints reads the range of the int64 keys of the events files, and
// their row count, from the files' footers (no hint when a file has no
// statistics of its key column or cannot be read: the engine then reads
// the events without).
func keyHints(cat *schemas.Catalog, files []string) local.Hints {
	key := cat.KeyField()
	if key.Type != schemas.TypeInt64 || len(files) == 0 {
		return local.Hints{}
	}
	h := local.Hints{KeyRange: true, KeyMin: math.MaxInt64, KeyMax: math.MinInt64}
	var buf []byte
	for _, path := range files {
		var ok bool
		if buf, ok = footerKeyRange(path, key.Name, buf, &h); !ok {
			return local.Hints{}
		}
	}
	return h
}

// footerKeyRange widens h to the statistics of column name in the footer
// of the Parquet file at path and adds its rows; false when they are not
// there. buf is scratch space (returned for reuse).
func footerKeyRange(path, name string, buf []byte, h *local.Hints) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return buf, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < 12 {
		return buf, false
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], st.Size()-8); err != nil || string(tail[4:]) != "PAR1" {
		return buf, false
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > st.Size()-12 || n > 64<<20 {
		return buf, false
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	if _, err := f.ReadAt(buf, st.Size()-8-n); err != nil {
		return buf, false
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf, &md); err != nil {
		return buf, false
	}
	for _, rg := range md.RowGroups {
		found := false
		for _, c := range rg.Columns {
			m := &c.MetaData
			if len(m.PathInSchema) != 1 || m.PathInSchema[0] != name {
				continue
			}
			if m.Type != format.Int64 || len(m.Statistics.MinValue) != 8 || len(m.Statistics.MaxValue) != 8 || m.Statistics.NullCount > 0 {
				return buf, false
			}
			lo := int64(binary.LittleEndian.Uint64(m.Statistics.MinValue))
			hi := int64(binary.LittleEndian.Uint64(m.Statistics.MaxValue))
			h.KeyMin, h.KeyMax = min(h.KeyMin, lo), max(h.KeyMax, hi)
			found = true
		}
		if !found && rg.NumRows > 0 {
			return buf, false
		}
		h.Rows += rg.NumRows
	}
	return buf, true
}
