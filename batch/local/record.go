package local

import (
	"unsafe"

	"github.com/portrait-dev/portrait/schemas"
)

// records holds one record per user of a shard, in which several
// accumulators keep their state of the user (see userSlots): an event then
// touches one or two cache lines for all of them rather than one per
// accumulator, once the shard aggregates a chunk of rows for every tag at
// a time (see shard.add). Records hold no pointers.
type records struct {
	stride uintptr // bytes per user: a power of two up to 64, else a multiple of 64
	words  []uint64
	start  int // the word of user 0's record, 64-byte aligned
	n      int // users with room
}

// maxRecord bounds a record: accumulators that do not fit keep their own
// slice.
const maxRecord = 64

func (r *records) base() unsafe.Pointer { return unsafe.Pointer(&r.words[r.start]) }

// grow makes room for n users.
func (r *records) grow(n int) {
	if n <= r.n {
		return
	}
	c := max(n, 2*r.n, 1024)
	w := int(r.stride / 8)
	words := make([]uint64, c*w+8)
	start := int((64-uintptr(unsafe.Pointer(&words[0]))%64)%64) / 8
	if r.n > 0 {
		copy(words[start:], r.words[r.start:r.start+r.n*w])
	}
	r.words, r.start, r.n = words, start, c
}

// userSlots is an accumulator's state of every user, of type S (which holds
// no pointer): its own slice, or a field of its shard's records.
type userSlots[S any] struct {
	own []S
	rec *records
	off uintptr
}

func (s *userSlots[S]) grow(n int) {
	if s.rec == nil {
		s.own = grow(s.own, n)
	}
}

// view returns the address of user 0's slot and the distance between
// two users' slots, valid until the users grow.
func (s *userSlots[S]) view() (unsafe.Pointer, uintptr) {
	if s.rec != nil {
		if s.rec.n == 0 {
			return nil, s.rec.stride // no user yet
		}
		return unsafe.Add(s.rec.base(), s.off), s.rec.stride
	}
	return unsafe.Pointer(unsafe.SliceData(s.own)), unsafe.Sizeof(*new(S))
}

// slotAt is user u's slot of a view; u must be a user of the shard.
func slotAt[S any](base unsafe.Pointer, stride uintptr, u uint32) *S {
	return (*S)(unsafe.Add(base, uintptr(u)*stride))
}

func (s *userSlots[S]) at(u uint32) *S {
	b, st := s.view()
	return slotAt[S](b, st, u)
}

func (s *userSlots[S]) size() uintptr { return unsafe.Sizeof(*new(S)) }

// recorder is an accumulator that can keep its state in the records.
type recorder interface {
	slotSize() uintptr
	useRecords(r *records, off uintptr)
}

func (a *countAcc) slotSize() uintptr                      { return a.n.size() }
func (a *countAcc) useRecords(r *records, off uintptr)     { a.n.rec, a.n.off = r, off }
func (a *rangeAcc[T]) slotSize() uintptr                   { return a.v.size() }
func (a *rangeAcc[T]) useRecords(r *records, off uintptr)  { a.v.rec, a.v.off = r, off }
func (a *sumAcc[T]) slotSize() uintptr                     { return a.s.size() }
func (a *sumAcc[T]) useRecords(r *records, off uintptr)    { a.s.rec, a.s.off = r, off }
func (a *minMaxAcc[T]) slotSize() uintptr                  { return a.v.size() }
func (a *minMaxAcc[T]) useRecords(r *records, off uintptr) { a.v.rec, a.v.off = r, off }
func (a *edgeAcc[T]) slotSize() uintptr                    { return a.e.size() }
func (a *edgeAcc[T]) useRecords(r *records, off uintptr)   { a.e.rec, a.e.off = r, off }

// useRecords puts the state of the shard's accumulators that can keep it
// in a record there, in the order of the groups (those that see the most
// events first: no filter, then the longest window), as long as the
// record stays within maxRecord bytes.
func (s *shard) useRecords(cat *schemas.Catalog, groups []group) {
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	rank := func(g group) int64 {
		r := g.lo
		if g.where != nil {
			r /= 2 // after the unfiltered groups of a similar window
			r += 1 << 62
		}
		return r
	}
	// Insertion sort: few groups.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && rank(groups[order[j]]) < rank(groups[order[j-1]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	var recs []recorder
	var offs []uintptr
	size := uintptr(0)
	seen := map[recorder]bool{}
	for _, gi := range order {
		for _, ti := range groups[gi].tags {
			var r recorder
			switch a := s.accs[ti].(type) {
			case *rangeView[int64]:
				r = a.r
			case *rangeView[float64]:
				r = a.r
			case recorder:
				r = a
			default:
				continue
			}
			if seen[r] || size+r.slotSize() > maxRecord {
				continue
			}
			seen[r] = true
			recs, offs = append(recs, r), append(offs, size)
			size += r.slotSize()
		}
	}
	if len(recs) < 2 {
		return
	}
	stride := uintptr(8)
	for stride < size {
		stride *= 2
	}
	s.recs = &records{stride: stride}
	for i, r := range recs {
		r.useRecords(s.recs, offs[i])
	}
}
