package state

import (
	"encoding/binary"
	"slices"

	"github.com/portrait-dev/portrait/stream/internal/radix"
)

// A checkpoint's batch is written in store-key order where that is cheap
// to get: Pebble sorts a large batch (one above half the memtable) before
// it flushes it, and inserts a small one into its memtable, and both are
// several times faster on keys that come sorted. Correctness never
// depends on the order (Pebble orders the batch either way), only the
// checkpoint's CPU does.

// keyed is a record's place in a checkpoint and its sort key: the
// partition, then the user key's 8 bytes (int64 keys) read big-endian.
type keyed struct {
	k uint64
	p uint32
	i int32
}

// writeOrder returns the records of users (by index) in store-key order
// when every user key is 8 bytes long (int64 keys) and users are not in
// that order already, keeping the order of the parts of each user (Flush
// emits them in name order); nil otherwise. buf and tmp are scratch
// space, returned grown for the next call.
func writeOrder(users []UserRecord, buf, tmp []keyed) (order, bufOut, tmpOut []keyed) {
	if len(users) < 2 || len(users) > 1<<31-1 {
		return nil, buf, tmp
	}
	a := slices.Grow(buf[:0], len(users))[:len(users)]
	sorted := true
	for i := range users {
		if len(users[i].Key) != 8 {
			return nil, a, tmp
		}
		a[i] = keyed{k: binary.BigEndian.Uint64(users[i].Key), p: uint32(users[i].Partition), i: int32(i)}
		if i > 0 && sorted {
			prev := &a[i-1]
			sorted = prev.p < a[i].p || (prev.p == a[i].p && prev.k <= a[i].k)
		}
	}
	if sorted {
		return nil, a, tmp
	}
	b := slices.Grow(tmp[:0], len(users))[:len(users)]
	// By key, then stably by partition: ordered by both.
	order = radix.Sort(a, b, func(r *keyed) uint64 { return r.k })
	scratch := b
	if &order[0] == &b[0] {
		scratch = a
	}
	order = radix.Sort(order, scratch, func(r *keyed) uint64 { return uint64(r.p) })
	return order, a, b
}
