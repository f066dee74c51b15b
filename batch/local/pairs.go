package local

import (
	"math/bits"
	"slices"
)

// pairSet gathers (user, value code) occurrences for count_distinct and
// mode: the distinct pairs of every user, with how often each occurred
// when counted.
//
// Occurrences are appended to a buffer, a plain sequential write; a
// compaction sorts the buffer by user (radix sort) and then by code
// within each user, folds repeats into runs with counts, and merges them
// into the runs kept so far, which stay sorted by (user, code). Nothing is
// looked up per event, so per-event cost does not depend on how many
// users or values there are, and the memory is bounded by the distinct
// pairs plus the buffer.
type pairSet struct {
	counted bool // keep counts (mode), else only the distinct pairs

	// The buffer: pc is nil while every occurrence counts once.
	pu []uint32
	px []uint64
	pc []int64
	// Scratch of the buffer's size for the radix sort.
	tu []uint32
	tx []uint64
	tc []int64

	// The runs, sorted by (user, code); rc is nil unless counted.
	ru []uint32
	rx []uint64
	rc []int64
}

// minCompact is the least buffered occurrences worth a compaction.
const minCompact = 1 << 23

func (s *pairSet) push(u uint32, x uint64) {
	if len(s.pu) == cap(s.pu) {
		s.reserve()
	}
	s.pu = append(s.pu, u)
	s.px = append(s.px, x)
	if s.pc != nil {
		s.pc = append(s.pc, 1)
	}
}

// reserve doubles the buffer's capacity (append grows large slices by a
// quarter, copying them over and over).
func (s *pairSet) reserve() {
	n := max(2*cap(s.pu), 1<<12)
	s.pu = append(make([]uint32, 0, n), s.pu...)
	s.px = append(make([]uint64, 0, n), s.px...)
	if s.pc != nil {
		s.pc = append(make([]int64, 0, n), s.pc...)
	}
}

// pushN adds n occurrences of (u, x) (a partial of a base snapshot).
func (s *pairSet) pushN(u uint32, x uint64, n int64) {
	if len(s.pu) == cap(s.pu) {
		s.reserve()
	}
	if s.pc == nil {
		s.pc = make([]int64, len(s.pu), cap(s.pu))
		for i := range s.pc {
			s.pc[i] = 1
		}
	}
	s.pu = append(s.pu, u)
	s.px = append(s.px, x)
	s.pc = append(s.pc, n)
}

// maybeCompact compacts when the buffer is as large as the runs (and at
// least minCompact), so each run is merged a bounded number of times.
func (s *pairSet) maybeCompact() {
	if len(s.pu) >= max(minCompact, len(s.ru)) {
		s.compact()
	}
}

// compact folds the buffer into the runs.
func (s *pairSet) compact() {
	n := len(s.pu)
	if n == 0 {
		return
	}
	u, x, c := s.sortByUser()
	// Fold into new runs, sorted by code within each user.
	var nu []uint32
	var nx []uint64
	var nc []int64
	nu, nx = make([]uint32, 0, n), make([]uint64, 0, n)
	if s.counted {
		nc = make([]int64, 0, n)
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && u[j] == u[i] {
			j++
		}
		if c == nil {
			slices.Sort(x[i:j])
		} else {
			sortCodesCounts(x[i:j], c[i:j])
		}
		for k := i; k < j; {
			l, cnt := k+1, int64(1)
			if c != nil {
				cnt = c[k]
			}
			for l < j && x[l] == x[k] {
				if c != nil {
					cnt += c[l]
				} else {
					cnt++
				}
				l++
			}
			nu, nx = append(nu, u[i]), append(nx, x[k])
			if s.counted {
				nc = append(nc, cnt)
			}
			k = l
		}
		i = j
	}
	// Both the buffer and the scratch are free again: u and x live in
	// one of them.
	if &u[0] == &s.pu[0] {
		s.pu, s.px = s.pu[:0], s.px[:0]
	} else {
		s.pu, s.tu = s.tu[:0], s.pu[:0]
		s.px, s.tx = s.tx[:0], s.px[:0]
	}
	s.pc = nil
	if len(s.ru) == 0 {
		s.ru, s.rx, s.rc = nu, nx, nc
		return
	}
	s.ru, s.rx, s.rc = mergeRuns(s.ru, s.rx, s.rc, nu, nx, nc)
}

// sortByUser sorts the buffer by user, stably (LSD radix, 11 bits a
// pass), and returns the sorted columns (in the buffer or the scratch).
func (s *pairSet) sortByUser() ([]uint32, []uint64, []int64) {
	n := len(s.pu)
	var maxU uint32
	for _, v := range s.pu {
		maxU = max(maxU, v)
	}
	s.tu, s.tx = grow(s.tu[:0], n), grow(s.tx[:0], n)
	u, x, c := s.pu, s.px, s.pc
	tu, tx := s.tu[:n], s.tx[:n]
	var tc []int64
	if c != nil {
		s.tc = grow(s.tc[:0], n)
		tc = s.tc[:n]
	}
	const radixBits = 11
	for shift := 0; shift < bits.Len32(maxU); shift += radixBits {
		var pos [1 << radixBits]int
		for _, v := range u {
			pos[(v>>shift)&(1<<radixBits-1)]++
		}
		sum := 0
		for d, k := range pos {
			pos[d], sum = sum, sum+k
		}
		for i, v := range u {
			d := (v >> shift) & (1<<radixBits - 1)
			p := pos[d]
			pos[d]++
			tu[p], tx[p] = v, x[i]
			if c != nil {
				tc[p] = c[i]
			}
		}
		u, x, c, tu, tx, tc = tu, tx, tc, u, x, c
	}
	return u, x, c
}

// sortCodesCounts sorts codes ascending, moving counts along.
func sortCodesCounts(x []uint64, c []int64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// mergeRuns merges two run lists sorted by (user, code), adding the
// counts of a pair in both.
func mergeRuns(au []uint32, ax []uint64, ac []int64, bu []uint32, bx []uint64, bc []int64) ([]uint32, []uint64, []int64) {
	n := len(au) + len(bu)
	ou, ox := make([]uint32, 0, n), make([]uint64, 0, n)
	var oc []int64
	counted := ac != nil
	if counted {
		oc = make([]int64, 0, n)
	}
	i, j := 0, 0
	for i < len(au) && j < len(bu) {
		switch {
		case au[i] < bu[j] || au[i] == bu[j] && ax[i] < bx[j]:
			ou, ox = append(ou, au[i]), append(ox, ax[i])
			if counted {
				oc = append(oc, ac[i])
			}
			i++
		case au[i] == bu[j] && ax[i] == bx[j]:
			ou, ox = append(ou, au[i]), append(ox, ax[i])
			if counted {
				oc = append(oc, ac[i]+bc[j])
			}
			i++
			j++
		default:
			ou, ox = append(ou, bu[j]), append(ox, bx[j])
			if counted {
				oc = append(oc, bc[j])
			}
			j++
		}
	}
	ou, ox = append(ou, au[i:]...), append(ox, ax[i:]...)
	ou, ox = append(ou, bu[j:]...), append(ox, bx[j:]...)
	if counted {
		oc = append(append(oc, ac[i:]...), bc[j:]...)
	}
	return ou, ox, oc
}

// offsets compacts and returns where every user's runs start: user u's
// are [off[u], off[u+1]) of the runs, for users < n.
func (s *pairSet) offsets(n int) []int {
	s.compact()
	off := make([]int, n+1)
	for _, u := range s.ru {
		off[u+1]++
	}
	for u := 1; u <= n; u++ {
		off[u] += off[u-1]
	}
	return off
}
