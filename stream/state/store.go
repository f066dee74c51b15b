// Package state is the speed layer's durable store: one Pebble database
// per instance holding, per Kafka partition, the encoded state of every
// user the partition owns and the partition's next offset and watermark.
// A checkpoint writes all of them in one synced Pebble batch, so the
// stored users always match the stored offsets exactly.
//
// Key layout (partitions as 4-byte big-endian numbers):
//
//	m catalog               → catalog hash the state was built for
//	p <partition>           → next offset (varint), watermark (varint)
//	u <partition> <userkey> → encoded user (stream/incremental)
//
// User keys are int64 (8 bytes big-endian, sign bit flipped so that the
// byte order is the numeric order) or strings (their bytes).
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"

	"github.com/portrait-dev/portrait/schemas"
)

var catalogKey = []byte("mcatalog")

// ErrCatalogChanged is returned by Open when the store was built for a
// different catalog: its partials do not fit the new tags.
var ErrCatalogChanged = errors.New("state was built for another catalog")

// Store is the Pebble-backed state of one speed-layer instance.
type Store struct {
	db  *pebble.DB
	dir string
}

// Open opens (or creates) the store in dir for the catalog with the given
// hash.
func Open(dir, catalogHash string, logger *slog.Logger) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{logger}})
	if err != nil {
		return nil, fmt.Errorf("opening state store %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir}
	v, closer, err := db.Get(catalogKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := db.Set(catalogKey, []byte(catalogHash), pebble.Sync); err != nil {
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
	}
	return s, nil
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

// UserKey is the store key of a user of partition p; key is the user's
// encoded key (EncodeKey).
func UserKey(p int32, key []byte) []byte {
	return append(userPrefix(p), key...)
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

// Users calls fn with the encoded key and value of every user stored for
// partition p. The slices are only valid during the call.
func (s *Store) Users(p int32, fn func(key, value []byte) error) error {
	lower := userPrefix(p)
	upper := userPrefix(p + 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("reading users of partition %d: %w", p, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[len(lower):], it.Value()); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("reading users of partition %d: %w", p, err)
	}
	return nil
}

// Checkpoint is one atomic write: user states (nil Value deletes the
// user) and partition positions.
type Checkpoint struct {
	Users      []UserRecord
	Partitions map[int32]Partition
}

// UserRecord is one user's encoded state in a checkpoint.
type UserRecord struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// Write commits the checkpoint in one synced batch.
func (s *Store) Write(cp *Checkpoint) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, u := range cp.Users {
		k := UserKey(u.Partition, u.Key)
		var err error
		if u.Value == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, u.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("building checkpoint batch: %w", err)
		}
	}
	var buf [2 * binary.MaxVarintLen64]byte
	for p, pos := range cp.Partitions {
		v := binary.AppendVarint(buf[:0], pos.Next)
		v = binary.AppendVarint(v, int64(pos.Watermark))
		if err := b.Set(partitionKey(p), v, nil); err != nil {
			return fmt.Errorf("building checkpoint batch: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("committing checkpoint to %s: %w", s.dir, err)
	}
	return nil
}

// EncodeKey appends the store form of a user key of type t.
func EncodeKey(dst []byte, t schemas.Type, key any) ([]byte, error) {
	switch t {
	case schemas.TypeInt64:
		k, ok := key.(int64)
		if !ok {
			return nil, fmt.Errorf("key %v (%T) is not an int64", key, key)
		}
		return binary.BigEndian.AppendUint64(dst, uint64(k)^(1<<63)), nil
	case schemas.TypeString:
		k, ok := key.(string)
		if !ok {
			return nil, fmt.Errorf("key %v (%T) is not a string", key, key)
		}
		return append(dst, k...), nil
	}
	return nil, fmt.Errorf("key type %s is not supported (int64 or string)", t)
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
