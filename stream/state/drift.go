package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// DriftRecord is one stored drift mark of the speed layer (a user that
// received late or duplicate events), written with the checkpoint that
// covers the records it counts:
//
//	d <partition> <cause byte> <userkey> → the mark (nil Value deletes it)
type DriftRecord struct {
	Partition int32
	Cause     byte
	// Key is the user's encoded key (EncodeKey).
	Key   []byte
	Value []byte
}

func appendDriftKey(dst []byte, p int32, cause byte, key []byte) []byte {
	dst = append(dst, 'd')
	dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	dst = append(dst, cause)
	return append(dst, key...)
}

// compareDrift orders drift records as their store keys.
func compareDrift(a, b DriftRecord) int {
	if c := cmp.Compare(uint32(a.Partition), uint32(b.Partition)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Cause, b.Cause); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}

func writeDrift(b *pebble.Batch, recs []DriftRecord) error {
	var k []byte
	for _, r := range recs {
		k = appendDriftKey(k[:0], r.Partition, r.Cause, r.Key)
		var err error
		if r.Value == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, r.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("building checkpoint batch: %w", err)
		}
	}
	return nil
}

// Drift calls fn with every drift mark stored for partition p.
func (s *Store) Drift(p int32, fn func(cause byte, key, value []byte) error) error {
	lower := binary.BigEndian.AppendUint32([]byte{'d'}, uint32(p))
	upper := binary.BigEndian.AppendUint32([]byte{'d'}, uint32(p)+1)
	if uint32(p) == 1<<32-1 {
		upper = []byte{'e'}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("reading drift marks of partition %d: %w", p, err)
	}
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(lower):]
		if len(rest) < 1 {
			_ = it.Close()
			return fmt.Errorf("reading drift marks of partition %d: corrupt key %x", p, it.Key())
		}
		if err := fn(rest[0], rest[1:], it.Value()); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("reading drift marks of partition %d: %w", p, err)
	}
	return nil
}
