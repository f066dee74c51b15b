package local

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// pairSet gathers (user, value code) occurrences for count_distinct and
// mode: the distinct pairs of every user, with how often each occurred
// when counted.
//
// Users are split into blocks of blockUsers consecutive indexes. An
// occurrence is appended to its block's buffer, a chain of fixed-size
// chunks (nothing is copied to grow it), as one word: the user within the
// block in the top bits and the code below, as a signed codeBits-bit
// integer (small negative ints included). Codes out of that range (rare
// but for floats) go to the block's weighted occurrences with a count of
// 1 instead.
//
// Codes are ordered as int64s throughout (the order of the runs; any
// order that groups equal codes would do, this one lets narrow codes of
// both signs sort in few radix passes). A compaction of a block sorts its
// buffer by (user, code) — a few stable radix passes over the span of the
// codes when it is narrow, then a counting sort by user — folds repeats
// into runs with counts and merges them into the block's runs, which are
// kept as one sorted code list per user. A block's buffer and runs are small enough for the sort and the
// fold to stay in the cache, unlike one sort of all pairs; nothing is
// looked up per event, so per-event cost does not depend on how many users
// or values there are, and memory is bounded by the distinct pairs plus
// the buffers. A windowed tag needs only a count or a mode per user at the
// end: finish then shows each user's runs once instead of storing them,
// and a block that was never compacted (the usual: a block compacts only
// once its buffer holds minCompact occurrences) is not sorted by code at
// all. Its buffer is sorted by user only (one counting sort, straight from
// the chunks) and each user's few codes are folded in a small hash table
// in the L1 cache, in any order: no radix passes, and no per-user sort,
// whose branches mispredict (an insertion sort of ≈15 codes a user costs
// more than the two radix passes it would replace).
//
// Short words of 32 bits (the user and the code's offset from a base)
// hold the occurrences as long as every code falls in a window of
// 1<<shortBits codes around the first one (the usual for interned
// strings, enums and small ids): half the memory to fault in, write and
// read back. The first code out of it switches the set to the 64-bit
// words above for good; the short words already buffered stay as they
// are.
type pairSet struct {
	counted bool // keep counts (mode), else only the distinct pairs
	blocks  []pairBlock
	// heads holds the chunk being filled of every block, apart from the
	// blocks so that a push reads one small array: of short words in
	// heads32 until long, then of 64-bit words in heads.
	heads   []chunkHead
	heads32 []chunkHead32
	free    []*pairChunk
	free32  []*pairChunk32
	// A short word holds a code as its offset from base, set by the first
	// push (based).
	based, long bool
	base        uint64

	// Scratch for compactions: the buffered words (two, for the radix
	// passes), codes (and counts) sorted by user, the users' starts, and
	// the folded runs before they are cut to size; the hash table of
	// visitBuffered.
	sw   []uint64
	sw2  []uint64
	sx   []uint64
	sc   []int64
	pos  []int
	upos []int32
	fx   []uint64
	fc   []int64
	foff []int
	tab  []pairSlot
	tick uint32
}

const (
	blockBits  = 12
	blockUsers = 1 << blockBits
	chunkPairs = 1024
	// minCompact is the least buffered occurrences of a block worth a
	// compaction before the end.
	minCompact = 1 << 16
)

// codeBits is the width of the codes that are packed with the user.
const (
	codeBits = 64 - blockBits
	codeMask = 1<<codeBits - 1
)

// narrow reports whether x, as an int64, fits in codeBits bits.
func narrow(x uint64) bool { return int64(x<<blockBits)>>blockBits == int64(x) }

// pack packs user u (within its block) with a narrow code.
func pack(u uint32, x uint64) uint64 {
	return uint64(u&(blockUsers-1))<<codeBits | x&codeMask
}

// unpackCode returns the code of a packed word, sign-extended.
func unpackCode(w uint64) uint64 { return uint64(int64(w<<blockBits) >> blockBits) }

// pairChunk holds occurrences packed by pack: all of it but in a block's
// last chunk, which holds the block's fill.
type pairChunk [chunkPairs]uint64

// Short words: the user within the block in the top bits and the code's
// offset from the set's base in the shortBits below.
const (
	shortBits    = 32 - blockBits
	chunkPairs32 = 2 * chunkPairs
)

// pack32 packs user u (within its block) with a code's offset d from the
// base.
func pack32(u uint32, d uint64) uint32 {
	return (u&(blockUsers-1))<<shortBits | uint32(d)
}

// pairChunk32 holds occurrences packed by pack32, as pairChunk.
type pairChunk32 [chunkPairs32]uint32

// chunkHead32 is chunkHead for short words.
type chunkHead32 struct {
	c *pairChunk32
	n int
}

// chunkHead is the chunk being filled of a block and how many words it
// holds (chunkPairs when there is none, so that a push takes the slow
// path).
type chunkHead struct {
	c *pairChunk
	n int
}

type pairBlock struct {
	// The buffer: chunks of short words then of 64-bit words (once
	// long), the last one of each being filled.
	chunks32 []*pairChunk32
	chunks   []*pairChunk
	// Weighted occurrences (a base snapshot's partials, wide codes), in
	// push order.
	wu []uint16
	wx []uint64
	wc []int64

	// The runs: user u's codes are rx[off[u]:off[u+1]], ascending (as
	// int64s), with
	// their counts in rc when counted. off is nil while there are none.
	off []int
	rx  []uint64
	rc  []int64
}

// buffered is the number of unweighted occurrences in block i's buffer.
func (s *pairSet) buffered(i int) int {
	b := &s.blocks[i]
	n := 0
	if len(b.chunks32) > 0 {
		n += (len(b.chunks32)-1)*chunkPairs32 + s.heads32[i].n
	}
	if len(b.chunks) > 0 {
		n += (len(b.chunks)-1)*chunkPairs + s.heads[i].n
	}
	return n
}

// words calls fn with every run of words buffered in block i, in push
// order.
func (s *pairSet) words(i int, fn func(ws []uint64)) {
	b := &s.blocks[i]
	for k, c := range b.chunks {
		n := chunkPairs
		if k == len(b.chunks)-1 {
			n = s.heads[i].n
		}
		fn(c[:n])
	}
}

// words32 is words for the short words.
func (s *pairSet) words32(i int, fn func(ws []uint32)) {
	b := &s.blocks[i]
	for k, c := range b.chunks32 {
		n := chunkPairs32
		if k == len(b.chunks32)-1 {
			n = s.heads32[i].n
		}
		fn(c[:n])
	}
}

// block returns the index of u's block, adding blocks up to it.
func (s *pairSet) block(u uint32) int {
	i := int(u >> blockBits)
	if i >= len(s.blocks) {
		n := i + 1 - len(s.blocks)
		s.blocks = append(s.blocks, make([]pairBlock, n)...)
		for range n {
			s.heads = append(s.heads, chunkHead{n: chunkPairs})
			s.heads32 = append(s.heads32, chunkHead32{n: chunkPairs32})
		}
	}
	return i
}

// add pushes (users[r], xs[r]) for every row r of sel.
func (s *pairSet) add(sel []int32, users []uint32, xs []uint64) {
	if !s.long {
		sel = s.add32(sel, users, xs)
	}
	heads := s.heads
	for _, r := range sel {
		// push, inlined.
		u, x := users[r], xs[r]
		if i := int(u >> blockBits); i < len(heads) && narrow(x) {
			if h := &heads[i]; h.n < chunkPairs {
				h.c[h.n&(chunkPairs-1)] = pack(u, x)
				h.n++
				continue
			}
		}
		s.pushSlow(u, x)
		heads = s.heads
	}
}

// add32 is add while the words are short: it returns the rows left once
// they are long.
func (s *pairSet) add32(sel []int32, users []uint32, xs []uint64) []int32 {
	heads, base := s.heads32, s.base
	for k, r := range sel {
		u, x := users[r], xs[r]
		if i := int(u >> blockBits); i < len(heads) && x-base < 1<<shortBits {
			if h := &heads[i]; h.n < chunkPairs32 {
				h.c[h.n&(chunkPairs32-1)] = pack32(u, x-base)
				h.n++
				continue
			}
		}
		s.pushSlow(u, x)
		if s.long {
			return sel[k+1:]
		}
		heads, base = s.heads32, s.base
	}
	return nil
}

func (s *pairSet) push(u uint32, x uint64) {
	if i := int(u >> blockBits); !s.long && i < len(s.heads32) && x-s.base < 1<<shortBits {
		if h := &s.heads32[i]; h.n < chunkPairs32 {
			h.c[h.n&(chunkPairs32-1)] = pack32(u, x-s.base)
			h.n++
			return
		}
	} else if s.long && i < len(s.heads) && narrow(x) {
		if h := &s.heads[i]; h.n < chunkPairs {
			h.c[h.n&(chunkPairs-1)] = pack(u, x)
			h.n++
			return
		}
	}
	s.pushSlow(u, x)
}

// pushSlow pushes a wide code, the first code, a code out of the short
// words' window (which makes them long), or into a block without room.
func (s *pairSet) pushSlow(u uint32, x uint64) {
	if !narrow(x) {
		s.pushN(u, x, 1)
		return
	}
	if !s.based {
		// A window around the first code, well inside the narrow ones so
		// that every code in it is narrow.
		s.based = true
		if y := int64(x); y > -1<<(codeBits-2) && y < 1<<(codeBits-2) {
			s.base = x - 1<<(shortBits-1)
		} else {
			s.long = true
		}
	}
	i := s.block(u)
	if !s.long {
		if d := x - s.base; d < 1<<shortBits {
			c := s.nextChunk32(i)
			c[0] = pack32(u, d)
			s.heads32[i].n = 1
			return
		}
		s.long = true
	}
	c := s.nextChunk(i)
	c[0] = pack(u, x)
	s.heads[i].n = 1
}

// nextChunk32 is nextChunk for short words.
func (s *pairSet) nextChunk32(i int) *pairChunk32 {
	s.compactIfFull(i)
	c := takeChunk(&s.free32)
	b := &s.blocks[i]
	b.chunks32, s.heads32[i] = append(b.chunks32, c), chunkHead32{c: c}
	return c
}

// nextChunk starts a new chunk in block i's buffer (see compactIfFull).
func (s *pairSet) nextChunk(i int) *pairChunk {
	s.compactIfFull(i)
	c := takeChunk(&s.free)
	b := &s.blocks[i]
	b.chunks, s.heads[i] = append(b.chunks, c), chunkHead{c: c}
	return c
}

// compactIfFull compacts block i when its buffer is as large as its runs
// (and at least minCompact), so that each run is merged a bounded number
// of times.
func (s *pairSet) compactIfFull(i int) {
	if n := s.buffered(i); n >= max(minCompact, len(s.blocks[i].rx)) {
		s.compactBlock(i, true)
	}
}

// takeChunk takes a chunk off a free list, or makes one.
func takeChunk[C any](free *[]*C) *C {
	if n := len(*free); n > 0 {
		c := (*free)[n-1]
		*free = (*free)[:n-1]
		return c
	}
	return new(C)
}

// pushN adds n occurrences of (u, x) (a partial of a base snapshot, or a
// code too wide to pack).
func (s *pairSet) pushN(u uint32, x uint64, n int64) {
	i := s.block(u)
	b := &s.blocks[i]
	if len(b.wu) >= max(minCompact, len(b.rx)) {
		s.compactBlock(i, true)
	}
	b.wu = append(b.wu, uint16(u&(blockUsers-1)))
	b.wx = append(b.wx, x)
	b.wc = append(b.wc, n)
}

// byUser sorts block i's buffered codes by user (counting sort straight
// from the chunks, which it then frees): user u's codes are
// sx[pos[u]:pos[u+1]], in push order.
func (s *pairSet) byUser(i int) (pos []int32, sx []uint64) {
	// int32 positions: the counters stay in the L1 cache.
	s.upos = grow(s.upos[:0], blockUsers+1)
	pos = s.upos
	clear(pos)
	s.words32(i, func(ws []uint32) {
		for _, w := range ws {
			pos[w>>shortBits+1]++
		}
	})
	s.words(i, func(ws []uint64) {
		for _, w := range ws {
			pos[w>>codeBits+1]++
		}
	})
	for u := 1; u <= blockUsers; u++ {
		pos[u] += pos[u-1]
	}
	s.sx = grow(s.sx[:0], int(pos[blockUsers]))
	sx = s.sx
	base := s.base
	s.words32(i, func(ws []uint32) {
		for _, w := range ws {
			u := w >> shortBits
			sx[pos[u]] = base + uint64(w&(1<<shortBits-1))
			pos[u]++
		}
	})
	s.words(i, func(ws []uint64) {
		for _, w := range ws {
			u := w >> codeBits
			sx[pos[u]] = unpackCode(w)
			pos[u]++
		}
	})
	// pos[u] is now the end of user u's codes: shift back to starts.
	copy(pos[1:], pos[:blockUsers])
	pos[0] = 0
	s.release(i)
	return pos, sx
}

// compactBlock folds b's buffer into its runs and returns them. With
// keep false, runs that had to be built are left in the scratch (valid
// until the next compaction) instead of being stored in b, for a last
// look at the end.
func (s *pairSet) compactBlock(i int, keep bool) ([]int, []uint64, []int64) {
	b := &s.blocks[i]
	n := s.buffered(i)
	if n == 0 && len(b.wu) == 0 {
		return b.off, b.rx, b.rc
	}
	words := s.gather(i)
	// When the codes span a narrow range (the usual: ids, interned
	// strings), a few stable radix passes over their offsets from the
	// least sort each user's codes, cheaper than sorting every user's
	// codes apart; the pass by user below keeps that order.
	sorted := false
	if len(b.wu) == 0 && len(words) > 0 {
		lo, hi := uint64(math.MaxUint64), uint64(0)
		for _, w := range words {
			k := radixKey(w)
			lo, hi = min(lo, k), max(hi, k)
		}
		if l := bits.Len64(hi - lo); l <= maxRadixBits {
			words, sorted = s.radixByCode(words, lo, l), true
		}
	}
	// Counting sort by user: user u's codes go to sx[pos[u]:pos[u+1]].
	s.pos = grow(s.pos[:0], blockUsers+1)
	pos := s.pos
	clear(pos)
	for _, w := range words {
		pos[w>>codeBits+1]++
	}
	for u := 1; u <= blockUsers; u++ {
		pos[u] += pos[u-1]
	}
	s.sx = grow(s.sx[:0], n)
	sx := s.sx
	var sc []int64
	for _, w := range words {
		u := w >> codeBits
		sx[pos[u]] = unpackCode(w)
		pos[u]++
	}
	// pos[u] is now the end of user u's codes: shift back to starts.
	copy(pos[1:], pos[:blockUsers])
	pos[0] = 0
	if len(b.wu) > 0 {
		// The weighted occurrences go in after the user's unit ones; this
		// is rare (a base's partials, wide codes), so a plain sort will do.
		sx, sc = s.addWeighted(b, pos, sx)
		b.wu, b.wx, b.wc = nil, nil, nil
	}
	foff, fx, fc := s.fold(pos, sx, sc, sorted)
	if b.off != nil {
		foff, fx, fc = mergeRuns(b.off, b.rx, b.rc, foff, fx, fc)
	} else if keep {
		// Cut the folded runs (scratch) to size.
		foff, fx, fc = slices.Clone(foff), slices.Clone(fx), slices.Clone(fc)
	}
	if keep {
		b.off, b.rx, b.rc = foff, fx, fc
	}
	return foff, fx, fc
}

// maxRadixBits is the widest codes sorted by radix passes (3 passes).
const (
	radixBits    = 11
	maxRadixBits = 3 * radixBits
)

// gather copies block i's buffered words into the scratch and frees its
// chunks.
func (s *pairSet) gather(i int) []uint64 {
	s.sw = grow(s.sw[:0], s.buffered(i))
	words := s.sw[:0]
	base := s.base
	s.words32(i, func(ws []uint32) {
		for _, w := range ws {
			words = append(words, pack(w>>shortBits, base+uint64(w&(1<<shortBits-1))))
		}
	})
	s.words(i, func(ws []uint64) { words = append(words, ws...) })
	s.release(i)
	return words
}

// release frees block i's chunks.
func (s *pairSet) release(i int) {
	b := &s.blocks[i]
	s.free, s.free32 = append(s.free, b.chunks...), append(s.free32, b.chunks32...)
	clear(b.chunks)
	clear(b.chunks32)
	b.chunks, s.heads[i] = b.chunks[:0], chunkHead{n: chunkPairs}
	b.chunks32, s.heads32[i] = b.chunks32[:0], chunkHead32{n: chunkPairs32}
}

// radixKey maps a packed word's code to an unsigned key in the codes'
// int64 order (the sign bit of the codeBits-bit code flipped).
func radixKey(w uint64) uint64 { return (w ^ 1<<(codeBits-1)) & codeMask }

// radixByCode sorts words by code, stably (LSD radix over the l low bits
// of radixKey − lo), and returns them sorted (in words or in the scratch).
func (s *pairSet) radixByCode(words []uint64, lo uint64, l int) []uint64 {
	s.sw2 = grow(s.sw2[:0], len(words))
	src, dst := words, s.sw2[:len(words)]
	for shift := 0; shift < l; shift += radixBits {
		var pos [1 << radixBits]int
		for _, w := range src {
			pos[(radixKey(w)-lo)>>shift&(1<<radixBits-1)]++
		}
		sum := 0
		for d, k := range pos {
			pos[d], sum = sum, sum+k
		}
		for _, w := range src {
			d := (radixKey(w) - lo) >> shift & (1<<radixBits - 1)
			dst[pos[d]] = w
			pos[d]++
		}
		src, dst = dst, src
	}
	return src
}

// addWeighted merges b's weighted occurrences into the user-sorted codes
// (whose counts are all 1), returning codes and counts by user.
func (s *pairSet) addWeighted(b *pairBlock, pos []int, sx []uint64) ([]uint64, []int64) {
	idx := make([]int, len(b.wu))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(b.wu[i], b.wu[j]) })
	n := len(sx) + len(idx)
	s.sc = grow(s.sc[:0], n)
	ox, oc := make([]uint64, n), s.sc[:n]
	k, w := 0, 0
	for u := range blockUsers {
		lo, hi := pos[u], pos[u+1]
		pos[u] = k
		for _, x := range sx[lo:hi] {
			ox[k], oc[k] = x, 1
			k++
		}
		for ; w < len(idx) && int(b.wu[idx[w]]) == u; w++ {
			ox[k], oc[k] = b.wx[idx[w]], b.wc[idx[w]]
			k++
		}
	}
	pos[blockUsers] = k
	return ox, oc
}

// fold sorts every user's codes (unless sorted) and folds repeats into
// runs with counts (c nil: every occurrence counts once), into the
// scratch runs.
func (s *pairSet) fold(pos []int, x []uint64, c []int64, sorted bool) ([]int, []uint64, []int64) {
	n := len(x)
	s.foff = grow(s.foff[:0], blockUsers+1)
	s.fx = grow(s.fx[:0], n)
	foff, fx := s.foff, s.fx
	var fc []int64
	if s.counted {
		s.fc = grow(s.fc[:0], n)
		fc = s.fc
	}
	k := 0
	for u := range blockUsers {
		foff[u] = k
		lo, hi := pos[u], pos[u+1]
		if lo == hi {
			continue
		}
		xs := x[lo:hi]
		switch {
		case sorted:
		case c == nil:
			sortCodes(xs)
		default:
			sortCodesCounts(xs, c[lo:hi])
		}
		for i := 0; i < len(xs); {
			j := i + 1
			for j < len(xs) && xs[j] == xs[i] {
				j++
			}
			fx[k] = xs[i]
			if fc != nil {
				cnt := int64(j - i)
				if c != nil {
					cnt = 0
					for _, v := range c[lo+i : lo+j] {
						cnt += v
					}
				}
				fc[k] = cnt
			}
			k++
			i = j
		}
	}
	foff[blockUsers] = k
	var cs []int64
	if fc != nil {
		cs = fc[:k]
	}
	return foff, fx[:k], cs
}

// sortCodes sorts codes ascending as int64s.
func sortCodes(x []uint64) {
	// Flipping the sign bit maps the int64 order to the uint64 order.
	for i := range x {
		x[i] ^= 1 << 63
	}
	slices.Sort(x)
	for i := range x {
		x[i] ^= 1 << 63
	}
}

// sortCodesCounts sorts codes ascending as int64s, moving counts along.
func sortCodesCounts(x []uint64, c []int64) {
	if len(x) > 16 {
		type xc struct {
			x uint64
			c int64
		}
		t := make([]xc, len(x))
		for i := range t {
			t[i] = xc{x[i], c[i]}
		}
		slices.SortFunc(t, func(a, b xc) int { return cmp.Compare(int64(a.x), int64(b.x)) })
		for i := range t {
			x[i], c[i] = t[i].x, t[i].c
		}
		return
	}
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && int64(x[j]) < int64(x[j-1]); j-- {
			x[j], x[j-1] = x[j-1], x[j]
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// mergeRuns merges two blocks' runs user by user, adding the counts of a
// code in both (ac nil: not counted). The result is newly allocated.
func mergeRuns(aoff []int, ax []uint64, ac []int64, boff []int, bx []uint64, bc []int64) ([]int, []uint64, []int64) {
	n := len(ax) + len(bx)
	off, ox := make([]int, blockUsers+1), make([]uint64, 0, n)
	var oc []int64
	counted := ac != nil
	if counted {
		oc = make([]int64, 0, n)
	}
	for u := range blockUsers {
		off[u] = len(ox)
		i, ie, j, je := aoff[u], aoff[u+1], boff[u], boff[u+1]
		for i < ie && j < je {
			switch {
			case int64(ax[i]) < int64(bx[j]):
				ox = append(ox, ax[i])
				if counted {
					oc = append(oc, ac[i])
				}
				i++
			case ax[i] == bx[j]:
				ox = append(ox, ax[i])
				if counted {
					oc = append(oc, ac[i]+bc[j])
				}
				i++
				j++
			default:
				ox = append(ox, bx[j])
				if counted {
					oc = append(oc, bc[j])
				}
				j++
			}
		}
		ox = append(append(ox, ax[i:ie]...), bx[j:je]...)
		if counted {
			oc = append(append(oc, ac[i:ie]...), bc[j:je]...)
		}
	}
	off[blockUsers] = len(ox)
	return off, ox, oc
}

// runs returns user u's distinct codes, ascending as int64s, and their
// counts (nil unless counted), once finished with keep.
func (s *pairSet) runs(u uint32) ([]uint64, []int64) {
	i := int(u >> blockBits)
	if i >= len(s.blocks) || s.blocks[i].off == nil {
		return nil, nil
	}
	b := &s.blocks[i]
	lu := u & (blockUsers - 1)
	lo, hi := b.off[lu], b.off[lu+1]
	if b.rc == nil {
		return b.rx[lo:hi], nil
	}
	return b.rx[lo:hi], b.rc[lo:hi]
}

// finish compacts every block and calls visit with the distinct codes
// and their counts (nil unless counted) of every user that has any: the
// codes ascending as int64s with keep, in no particular order without.
// The runs are kept for runs only with keep; without, a windowed tag
// that needs only a count or a mode per user never stores them, and a
// block with only unit occurrences buffered is folded user by user (see
// visitBuffered).
func (s *pairSet) finish(keep bool, visit func(u uint32, xs []uint64, cs []int64)) {
	for i := range s.blocks {
		b := &s.blocks[i]
		if !keep && b.off == nil && len(b.wu) == 0 {
			if s.buffered(i) > 0 {
				s.visitBuffered(i, visit)
			}
			continue
		}
		off, xs, cs := s.compactBlock(i, keep)
		if !keep {
			b.off, b.rx, b.rc = nil, nil, nil
		}
		if off == nil {
			continue
		}
		for lu := range blockUsers {
			lo, hi := off[lu], off[lu+1]
			if lo == hi {
				continue
			}
			var c []int64
			if cs != nil {
				c = cs[lo:hi]
			}
			visit(uint32(i<<blockBits+lu), xs[lo:hi], c)
		}
	}
	s.free, s.free32, s.sw, s.sw2, s.sx, s.sc, s.pos, s.upos, s.fx, s.fc, s.foff, s.tab = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
}

// visitBuffered calls visit with the distinct codes, in no particular
// order, and their counts (nil unless counted) of every user of block i,
// which has only unit occurrences buffered and no runs, and empties the
// buffer. Each user's codes are folded in a small hash table in the
// cache: no sort, few branches to mispredict.
func (s *pairSet) visitBuffered(i int, visit func(u uint32, xs []uint64, cs []int64)) {
	pos, sx := s.byUser(i)
	base := uint32(i << blockBits)
	for u := range blockUsers {
		xs := sx[pos[u]:pos[u+1]]
		if len(xs) == 0 {
			continue
		}
		// A table of at least four times the codes (few collisions), its
		// slots empty unless stamped with this tick.
		shift := 64 - bits.Len(uint(4*len(xs)-1))
		tab := s.table(1 << (64 - shift))
		s.tick++
		if s.tick == 0 {
			clear(s.tab)
			s.tick = 1
		}
		if !s.counted {
			k := foldDistinct(xs, tab, s.tick, uint(shift))
			visit(base+uint32(u), xs[:k], nil)
			continue
		}
		s.fc = grow(s.fc[:0], len(xs))
		k := foldCounted(xs, s.fc, tab, s.tick, uint(shift))
		visit(base+uint32(u), xs[:k], s.fc[:k])
	}
}

// foldDistinct moves the distinct codes of xs to its first k, in the
// order they first occur, and returns k, with a hash table of
// 1<<(64-shift) slots empty unless stamped with tick.
func foldDistinct(xs []uint64, tab []pairSlot, tick uint32, shift uint) int {
	mask := uint64(len(tab) - 1)
	k := 0
	for _, x := range xs {
		for h := x * 0x9e3779b97f4a7c15 >> shift; ; h++ {
			sl := &tab[h&mask]
			if sl.tick != tick {
				sl.x, sl.tick = x, tick
				xs[k] = x
				k++
				break
			}
			if sl.x == x {
				break
			}
		}
	}
	return k
}

// foldCounted is foldDistinct that also counts the occurrences of every
// code in cs.
func foldCounted(xs []uint64, cs []int64, tab []pairSlot, tick uint32, shift uint) int {
	mask := uint64(len(tab) - 1)
	cs = cs[:len(xs)]
	k := 0
	for _, x := range xs {
		for h := x * 0x9e3779b97f4a7c15 >> shift; ; h++ {
			sl := &tab[h&mask]
			if sl.tick != tick {
				*sl = pairSlot{x: x, tick: tick, k: uint32(k)}
				xs[k], cs[k] = x, 1
				k++
				break
			}
			if sl.x == x {
				cs[sl.k]++
				break
			}
		}
	}
	return k
}

// pairSlot is a slot of visitBuffered's hash table: code x, its index k in
// the user's distinct codes, and the tick of the user it is for.
type pairSlot struct {
	x    uint64
	tick uint32
	k    uint32
}

// table returns the first n slots of the hash table, growing it.
func (s *pairSet) table(n int) []pairSlot {
	if n > len(s.tab) {
		s.tab, s.tick = make([]pairSlot, max(n, 256)), 0
	}
	return s.tab[:n]
}
