package local

import (
	"fmt"
	"hash/maphash"
	"math/bits"
)

// dedup finds, for every (user, event id), the first event by (time,
// partition, offset).
//
// The first pass (observe) only appends: every row's hash of (user, id),
// user, id and (time, partition, offset), in order. resolve then picks the
// winners without a random memory access per row: rows are scattered by
// the top bits of their hash into buckets of a few thousand, and each
// bucket is resolved with a small open-addressing table that stays in the
// cache. The second pass (keep) reads the verdict of every row by
// position; it checks that each row is the one observed there (the source
// must yield the same batches in the same order).
type dedup struct {
	str  bool
	seed maphash.Seed

	// Per observed row, in order. rowU is noUser for rows at or after the
	// cutoff, which are not events as of the cutoff.
	rowH []uint64
	rowU []uint32
	rowT []int64
	rowO []int64
	rowP []int32
	// rowID is the int id, or the end of the string id in arena (it starts
	// where the previous row's ends).
	rowID []int64
	arena []byte

	// win marks the rows that are their (user, id)'s first event, once
	// resolved.
	win      []bool
	resolved bool

	// sizes is the row count of every observed batch; next is the
	// index of the next batch keep expects and base its first row.
	sizes []int
	next  int
	base  int
}

const noUser = ^uint32(0)

func newDedup(str bool) *dedup {
	return &dedup{str: str, seed: maphash.MakeSeed()}
}

// observe records the given rows of one batch, in order: users[r] is row
// r's user, valid where ts[r] < cutoff.
func (d *dedup) observe(b *batch, rows []int32, id *vec, users []uint32, cutoff int64) {
	d.sizes = append(d.sizes, len(rows))
	base := len(d.rowU)
	n := base + len(rows)
	d.rowH, d.rowU = growDoubling(d.rowH, n), growDoubling(d.rowU, n)
	d.rowT, d.rowO = growDoubling(d.rowT, n), growDoubling(d.rowO, n)
	d.rowP, d.rowID = growDoubling(d.rowP, n), growDoubling(d.rowID, n)
	rowH, rowU, rowID := d.rowH[base:], d.rowU[base:], d.rowID[base:]
	rowT, rowO, rowP := d.rowT[base:], d.rowO[base:], d.rowP[base:]
	for j, r := range rows {
		t := b.ts[r]
		rowT[j], rowO[j], rowP[j] = t, b.off[r], b.part[r]
		if t >= cutoff {
			rowU[j] = noUser
			rowID[j] = int64(len(d.arena))
			continue
		}
		u := users[r]
		rowU[j] = u
		if d.str {
			s := id.s[r]
			if len(d.arena)+len(s) > cap(d.arena) {
				d.arena = append(make([]byte, 0, max(2*cap(d.arena), len(d.arena)+len(s), 1<<16)), d.arena...)
			}
			d.arena = append(d.arena, s...)
			rowID[j] = int64(len(d.arena))
			rowH[j] = mix64(maphash.String(d.seed, s) ^ uint64(u)*0x9E3779B97F4A7C15)
		} else {
			rowID[j] = id.i[r]
			rowH[j] = mix64(mix64(uint64(id.i[r])) ^ uint64(u)*0x9E3779B97F4A7C15)
		}
	}
}

// growDoubling returns s with length n, doubling its capacity when full.
func growDoubling[T any](s []T, n int) []T {
	if n > cap(s) {
		s2 := make([]T, n, max(2*cap(s), n, 1<<16))
		copy(s2, s)
		return s2
	}
	return s[:n]
}

// sameEvent reports whether rows i and j have the same user and id.
func (d *dedup) sameEvent(i, j int) bool {
	if d.rowU[i] != d.rowU[j] {
		return false
	}
	if !d.str {
		return d.rowID[i] == d.rowID[j]
	}
	return string(d.strID(i)) == string(d.strID(j))
}

func (d *dedup) strID(i int) []byte {
	var lo int64
	if i > 0 {
		lo = d.rowID[i-1]
	}
	return d.arena[lo:d.rowID[i]]
}

// resolve picks the winner of every (user, id).
func (d *dedup) resolve() {
	d.resolved = true
	n := len(d.rowU)
	d.win = make([]bool, n)
	if n == 0 {
		return
	}
	// Buckets of about 4096 rows, by the hash's top bits.
	k := max(bits.Len(uint(n/4096)), 1)
	shift := 64 - k
	off := make([]int, 1<<k+1)
	for i, h := range d.rowH {
		if d.rowU[i] != noUser {
			off[h>>shift+1]++
		}
	}
	for b := 1; b < len(off); b++ {
		off[b] += off[b-1]
	}
	order := make([]uint32, off[len(off)-1])
	pos := append([]int(nil), off...)
	for i, h := range d.rowH {
		if d.rowU[i] != noUser {
			order[pos[h>>shift]] = uint32(i)
			pos[h>>shift]++
		}
	}
	var table []uint32 // row+1 of each group's current winner; 0: empty
	for b := 0; b+1 < len(off); b++ {
		rows := order[off[b]:off[b+1]]
		size := 1 << max(bits.Len(uint(2*len(rows))), 4)
		table = grow(table[:0], size)
		clear(table)
		mask := uint64(size - 1)
		for _, r := range rows {
			h := d.rowH[r]
			for i := h & mask; ; i = (i + 1) & mask {
				w := table[i]
				if w == 0 {
					table[i] = r + 1
					break
				}
				w--
				if d.rowH[w] != h || !d.sameEvent(int(w), int(r)) {
					continue
				}
				// Rows come in order, so on a tie the earlier row stays.
				if before(d.rowT[r], d.rowP[r], d.rowO[r], d.rowT[w], d.rowP[w], d.rowO[w]) {
					table[i] = r + 1
				}
				break
			}
		}
		for _, w := range table {
			if w != 0 {
				d.win[w-1] = true
			}
		}
	}
	d.rowH, d.rowID, d.arena = nil, nil, nil
}

// done reports an error unless the second pass saw every batch the first
// did.
func (d *dedup) done() error {
	if d.next != len(d.sizes) {
		return fmt.Errorf("the source yielded %d batches to aggregate and %d to de-duplicate (the source must yield the same batches in the same order)", d.next, len(d.sizes))
	}
	return nil
}

// keep resolves the shard's rows of the next batch in the second pass:
// for every row r of rows with keep[r] set, it sets users[r] and clears
// keep[r] unless the row is its (user, id)'s first event.
func (d *dedup) keep(b *batch, rows []int32, users []uint32, keep []bool) error {
	if !d.resolved {
		d.resolve()
	}
	if d.next >= len(d.sizes) || d.sizes[d.next] != len(rows) {
		return fmt.Errorf("batch %d of %d rows differs from the one de-duplicated (the source must yield the same batches in the same order)", d.next, b.n)
	}
	base := d.base
	d.next++
	d.base += len(rows)
	for j, r := range rows {
		if !keep[r] {
			continue
		}
		i := base + j
		if d.rowU[i] == noUser || d.rowT[i] != b.ts[r] || d.rowP[i] != b.part[r] || d.rowO[i] != b.off[r] {
			return fmt.Errorf("row %d of batch %d differs from the one de-duplicated (the source must yield the same batches in the same order)", r, d.next-1)
		}
		users[r] = d.rowU[i]
		keep[r] = d.win[i]
	}
	return nil
}
