package state

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Partitions lists the partitions with a stored position, ascending.
func (s *Store) Partitions() ([]int32, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}})
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", s.dir, err)
	}
	var out []int32
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 5 {
			_ = it.Close()
			return nil, fmt.Errorf("listing partitions of %s: corrupt key %x", s.dir, k)
		}
		out = append(out, int32(binary.BigEndian.Uint32(k[1:])))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", s.dir, err)
	}
	return out, nil
}
