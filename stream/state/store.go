// Package state is the speed layer's durable store: one Pebble database
// per instance holding, per Kafka partition, the encoded state of every
// user the partition owns and the partition's next offset and watermark.
// A user is stored as several parts (its lifetime base, one part per time
// bucket: stream/incremental names and encodes them), so a checkpoint
// writes only the parts that changed. A checkpoint writes the changed
// parts and the partition positions in one synced Pebble batch, so the
// stored users always match the stored offsets exactly.
//
// Key layout (format 2; partitions as 4-byte big-endian numbers):
//
//	m catalog                                    → catalog hash the state was built for
//	m format                                     → "2"
//	p <partition>                                → next offset (varint), watermark (varint)
//	u <partition> <len uvarint> <userkey> <part> → encoded part of a user
//	d <partition> <cause> <userkey>              → drift mark of a user (drift.go)
//
// User keys are int64 (8 bytes big-endian, sign bit flipped so that the
// byte order is the numeric order) or strings (their bytes). Format 1
// (one value per user, no format key) is refused: rebuild from Kafka.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/internal/yield"
)

var (
	catalogKey = []byte("mcatalog")
	formatKey  = []byte("mformat")
)

// yieldRecords is how many records WriteSize adds to a batch between
// yields (≈0.1–0.2 µs each; see package stream/internal/yield).
const yieldRecords = 512

// memTableSize is the Pebble memtable size.
const memTableSize = 32 << 20

// Format is the on-disk format this package reads and writes.
const Format = "2"

// ErrFormat is returned by Open for a store written in another on-disk
// format.
var ErrFormat = errors.New("state store has another on-disk format")

// ErrCatalogChanged is returned by Open when the store was built for a
// different catalog: its partials do not fit the new tags.
var ErrCatalogChanged = errors.New("state was built for another catalog")

// Store is the Pebble-backed state of one speed-layer instance.
type Store struct {
	db  *pebble.DB
	dir string

	// writeMu guards the scratch space of WriteSize (order.go).
	writeMu            sync.Mutex
	orderBuf, orderTmp []keyed
}

// Open opens (or creates) the store in dir for the catalog with the given
// hash.
func Open(dir, catalogHash string, logger *slog.Logger) (*Store, error) {
	// A larger memtable than Pebble's 4 MiB default: checkpoints rewrite
	// the same hot buckets again and again, and a bigger memtable folds
	// those rewrites before they are flushed and compacted.
	db, err := pebble.Open(dir, options(logger))
	if err != nil {
		return nil, fmt.Errorf("opening state store %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir}
	v, closer, err := db.Get(catalogKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		b := db.NewBatch()
		_ = b.Set(catalogKey, []byte(catalogHash), nil)
		_ = b.Set(formatKey, []byte(Format), nil)
		err := b.Commit(pebble.Sync)
		_ = b.Close()
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("writing catalog hash to %s: %w", dir, err)
		}
	case err != nil:
		_ = db.Close()
		return nil, fmt.Errorf("reading catalog hash from %s: %w", dir, err)
	default:
		stored := string(v)
		_ = closer.Close()
		if stored != catalogHash {
			_ = db.Close()
			return nil, fmt.Errorf("state store %s: %w (stored %s, catalog %s); remove the directory to rebuild from Kafka",
				dir, ErrCatalogChanged, stored, catalogHash)
		}
		if err := s.checkFormat(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkFormat refuses a store of another format (format 1 had no format
// key).
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(formatKey)
	format := "1"
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("reading format of %s: %w", s.dir, err)
	default:
		format = string(v)
		_ = closer.Close()
	}
	if format != Format {
		return fmt.Errorf("state store %s: %w (format %s, this build reads %s); remove the directory to rebuild from Kafka",
			s.dir, ErrFormat, format, Format)
	}
	return nil
}

// options are the Pebble options of a store, tuned for the checkpoint
// load: every checkpoint rewrites the changed parts of many users (most
// of them new buckets, later deleted when evicted), and the whole store is
// only read when a partition is loaded.
//   - A larger memtable than Pebble's 4 MiB default folds the rewrites of
//     hot buckets before they are flushed and compacted.
//   - No block compression: parts are small varint-packed records that
//     compress little, and compressing them on every flush and compaction
//     cost more CPU than the rest of the compaction.
//   - A larger base level and L0 thresholds: fewer, larger compactions
//     (less rewriting of the same keys) for a store that is rarely read.
//     User keys are spread over the whole key space, so every L0 file
//     overlaps the base level and each L0 compaction rewrites most of
//     it: compacting after 32 rather than 8 sublevels cut the compaction
//     CPU of a 1M-user run from 2.1 s to none within its 2M events (the
//     flushes, 1.3 s, remain). The price is read amplification when a
//     partition is loaded, which is rare.
func options(logger *slog.Logger) *pebble.Options {
	o := &pebble.Options{Logger: pebbleLogger{logger}, MemTableSize: memTableSize,
		L0CompactionThreshold: 32, L0StopWritesThreshold: 64, LBaseMaxBytes: 256 << 20}
	for i := range o.Levels {
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	return o
}

// Close closes the store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing state store %s: %w", s.dir, err)
	}
	return nil
}

// Partition is the stored position of one Kafka partition.
type Partition struct {
	// Next is the offset of the first record not yet in the state.
	Next int64
	// Watermark is the newest event time applied from the partition.
	Watermark schemas.Timestamp
}

func partitionKey(p int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{'p'}, uint32(p))
}

func userPrefix(p int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{'u'}, uint32(p))
}

// appendPartKey appends the store key of one part of a user of partition
// p; key is the user's encoded key (EncodeKey).
func appendPartKey(dst []byte, p int32, key, part []byte) []byte {
	dst = append(dst, 'u')
	dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, part...)
}

// Partition reads a partition's position; false when none is stored.
func (s *Store) Partition(p int32) (Partition, bool, error) {
	v, closer, err := s.db.Get(partitionKey(p))
	if errors.Is(err, pebble.ErrNotFound) {
		return Partition{}, false, nil
	}
	if err != nil {
		return Partition{}, false, fmt.Errorf("reading partition %d position: %w", p, err)
	}
	defer closer.Close()
	next, n := binary.Varint(v)
	if n <= 0 {
		return Partition{}, false, fmt.Errorf("partition %d position: corrupt value", p)
	}
	wm, m := binary.Varint(v[n:])
	if m <= 0 {
		return Partition{}, false, fmt.Errorf("partition %d position: corrupt watermark", p)
	}
	return Partition{Next: next, Watermark: schemas.Timestamp(wm)}, true, nil
}

// Users calls fn with the encoded user key, part name and value of every
// user part stored for partition p, in key order (the parts of one user
// are consecutive). The slices are only valid during the call.
func (s *Store) Users(p int32, fn func(key, part, value []byte) error) error {
	lower := userPrefix(p)
	upper := userPrefix(p + 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("reading users of partition %d: %w", p, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		rest := it.Key()[len(lower):]
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			_ = it.Close()
			return fmt.Errorf("reading users of partition %d: corrupt key %x", p, it.Key())
		}
		key := rest[w : w+int(n)]
		if err := fn(key, rest[w+int(n):], it.Value()); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("reading users of partition %d: %w", p, err)
	}
	return nil
}

// Checkpoint is one atomic write: user parts (nil Value deletes the part)
// and partition positions. Writing it may reorder Drift.
type Checkpoint struct {
	Users      []UserRecord
	Partitions map[int32]Partition
	// Drift are the drift marks changed since the last checkpoint (drift.go).
	Drift []DriftRecord
}

// UserRecord is one encoded part of a user in a checkpoint.
type UserRecord struct {
	Partition int32
	// Key is the user's encoded key (EncodeKey), Part the part's name.
	Key   []byte
	Part  []byte
	Value []byte
}

// Write commits the checkpoint in one synced batch.
func (s *Store) Write(cp *Checkpoint) error {
	_, err := s.WriteSize(cp)
	return err
}

// WriteSize is Write that also returns the size in bytes of the batch it
// committed (keys, values and Pebble's record framing: what goes to the
// write-ahead log).
//
// The batch holds the drift marks, the positions and the user parts in
// key order where that is cheap (see order.go).
func (s *Store) WriteSize(cp *Checkpoint) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	slices.SortFunc(cp.Drift, compareDrift)
	if err := writeDrift(b, cp.Drift); err != nil {
		return 0, err
	}
	var buf [2 * binary.MaxVarintLen64]byte
	for _, p := range slices.Sorted(maps.Keys(cp.Partitions)) {
		pos := cp.Partitions[p]
		v := binary.AppendVarint(buf[:0], pos.Next)
		v = binary.AppendVarint(v, int64(pos.Watermark))
		if err := b.Set(partitionKey(p), v, nil); err != nil {
			return 0, fmt.Errorf("building checkpoint batch: %w", err)
		}
	}
	var order []keyed
	order, s.orderBuf, s.orderTmp = writeOrder(cp.Users, s.orderBuf, s.orderTmp)
	var k []byte
	for i := range cp.Users {
		yield.After(i, yieldRecords)
		u := &cp.Users[i]
		if order != nil {
			u = &cp.Users[order[i].i]
		}
		k = appendPartKey(k[:0], u.Partition, u.Key, u.Part)
		var err error
		if u.Value == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, u.Value, nil)
		}
		if err != nil {
			return 0, fmt.Errorf("building checkpoint batch: %w", err)
		}
	}
	n := b.Len()
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("committing checkpoint to %s: %w", s.dir, err)
	}
	return n, nil
}

// DiskUsage is the disk space the store takes: Pebble's DiskSpaceUsage
// (live and obsolete tables, write-ahead log, manifest and options), with
// the live write-ahead log counted at least at its logical size: Pebble's
// physical figure leaves out the log file still being written, which
// holds everything since the last memtable flush.
func (s *Store) DiskUsage() uint64 {
	m := s.db.Metrics()
	return m.DiskSpaceUsage() - m.WAL.PhysicalSize + max(m.WAL.PhysicalSize, m.WAL.Size)
}

// EncodeKey appends the store form of a user key of type t.
func EncodeKey(dst []byte, t schemas.Type, key any) ([]byte, error) {
	switch t {
	case schemas.TypeInt64:
		k, ok := key.(int64)
		if !ok {
			return nil, fmt.Errorf("key %v (%T) is not an int64", key, key)
		}
		return AppendIntKey(dst, k), nil
	case schemas.TypeString:
		k, ok := key.(string)
		if !ok {
			return nil, fmt.Errorf("key %v (%T) is not a string", key, key)
		}
		return append(dst, k...), nil
	}
	return nil, fmt.Errorf("key type %s is not supported (int64 or string)", t)
}

// AppendIntKey appends the store form of an int64 user key (EncodeKey
// without the boxing).
func AppendIntKey(dst []byte, k int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(k)^(1<<63))
}

// DecodeKey reads a key written by EncodeKey.
func DecodeKey(t schemas.Type, b []byte) (any, error) {
	switch t {
	case schemas.TypeInt64:
		if len(b) != 8 {
			return nil, fmt.Errorf("int64 key of %d bytes", len(b))
		}
		return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), nil
	case schemas.TypeString:
		return string(b), nil
	}
	return nil, fmt.Errorf("key type %s is not supported (int64 or string)", t)
}

// pebbleLogger sends Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
