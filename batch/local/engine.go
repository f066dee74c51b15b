// Package local is portrait's local batch engine: it computes every tag of
// a catalog as of a cutoff over Arrow record batches of events (as the
// warehouse reader yields them), with exactly the semantics of
// schemas/reference, fast enough to recompute tens of millions of events
// per minute on one core.
//
// How it works: users are split by a hash of their key over shards, one
// per core, aggregated concurrently batch by batch; the columns, where
// filters and value codes of a batch are computed once, before the shards
// run. Within a shard every user gets a dense index (an array or hash
// lookup per event); when the caller hints at a dense range of int64 keys,
// those keys are dealt to the shards by blocks and a key's index is
// arithmetic instead, in key order (see keyrange.go). Each aggregate tag
// keeps one typed struct per user (count, sum, min/max, first/last with
// its (time, partition, offset)); the structs of the tags that see the
// most events share one record per user, and the shard aggregates a chunk
// of rows for every tag at a time, so that an event touches one cache line
// for them (see record.go); a min and a max tag of the same field and
// selection share one struct (see minmax.go), and count_distinct and mode
// append (user, value code)
// pairs that are sorted and folded in bulk, block of users by block (see
// pairs.go), never looked up per event. Where filters are evaluated
// column by column over the batch (see filter.go), once per distinct
// filter (distinct filters concurrently), into selection vectors that the
// tags sharing a filter and window start consume. The Result holds the
// profiles column by column (see profiles.go), filled one tag at a time
// over all users, each shard's users concurrently (see fill.go). The
// lifetime partials of the State are read from the accumulators when the
// snapshot writer asks for a range of users (see Lifetime), boxed without
// one allocation per value (see box.go).
//
// When the catalog has an event-id field, the input is read twice: the
// first pass finds, for every (key, id), the first event by (time,
// partition, offset) (see dedup.go), the second aggregates only those.
// Duplicates are therefore resolved among the events given; events the
// caller passes only for that purpose (older than every window) are not
// aggregated.
//
// A [State] carries the mergeable partials of the lifetime tags, so that a
// later run can start from a snapshot's state (the base, as of C₀) and
// aggregate only the events at or after C₀ for lifetime tags.
package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/portrait-dev/portrait/schemas"
)

// Source yields the record batches of the events to aggregate. It may be
// called more than once (twice when the catalog has an id field) and must
// yield the same batches in the same order each time (a difference is
// reported as an error). A batch need not outlive fn. String columns may
// be String arrays or dictionary arrays of Int32 indexes (filters and
// value codes then look at every distinct value once).
type Source func(ctx context.Context, fn func(arrow.RecordBatch) error) error

// Result is the outcome of a computation.
type Result struct {
	// Profiles sorted by key, column by column.
	Profiles *Profiles
	// State holds the lifetime partials of the same users, in the same
	// order (nil when the catalog has no lifetime tag), read from the
	// engine's accumulators when asked for.
	State *Lifetime
	// Rows is the number of event rows aggregated (after de-duplication,
	// before the cutoff and in some window); Scanned the number given.
	Rows, Scanned int64
}

// Compute aggregates the events of src as of cutoff. With a base, the
// lifetime tags start from its partials and take only events at or after
// base.Cutoff; the caller must then give every event in [base.Cutoff,
// cutoff) and, for the windowed tags, [cutoff − longest window, cutoff).
func Compute(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, src Source, base *State) (*Result, error) {
	return compute(ctx, cat, cutoff, src, base, Hints{}, defaultShards())
}

// ComputeWith is Compute with hints about the events.
func ComputeWith(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, src Source, base *State, h Hints) (*Result, error) {
	return compute(ctx, cat, cutoff, src, base, h, defaultShards())
}

func compute(ctx context.Context, cat *schemas.Catalog, cutoff schemas.Timestamp, src Source, base *State, h Hints, shards int) (*Result, error) {
	e, err := newEngineWith(cat, cutoff, base, h, shards)
	if err != nil {
		return nil, err
	}
	if e.Dedup() {
		if err := src(ctx, e.Observe); err != nil {
			return nil, fmt.Errorf("finding duplicate events: %w", err)
		}
	}
	if err := src(ctx, e.Add); err != nil {
		return nil, fmt.Errorf("aggregating events: %w", err)
	}
	if err := e.allAdded(); err != nil {
		return nil, fmt.Errorf("aggregating events: %w", err)
	}
	return e.Result(), nil
}

// group is the tags that share a window start and a where filter: they
// consume the same selection vector.
type group struct {
	lo    int64
	where *schemas.Expr
	tags  []int
}

// Engine aggregates record batches. Use it as Compute does: Observe every
// batch when Dedup is true, then Add every batch, then Result once.
type Engine struct {
	cat    *schemas.Catalog
	cutoff int64
	// presentLo: a user with an event at or after it (and before the
	// cutoff) has a profile.
	presentLo int64
	// presentAll: every user is present as soon as it is resolved (no
	// de-duplication, and every aggregated event counts for presence).
	presentAll bool
	// witness, with presentAll, is the index of a tag whose accumulator
	// sees every aggregated event and tells whether a user had one (see
	// seer), or -1: the slots of a key range then get their presence
	// from it at the end rather than from every event.
	witness int
	// minLo is the earliest event time any tag (or presence) needs.
	minLo  int64
	groups []group
	strs   *interner
	bufs   *colBufs
	shards []*shard
	seed   maphash.Seed
	keys   keyRange

	schema   *arrow.Schema
	fieldCol []int

	// Per batch: every row's user (in its shard), whether it counts, the
	// rows of every shard and the mask of every group.
	users     []uint32
	keep      []bool
	shardRows [][]int32
	masks     [][]bool
	scanned   int64
}

// shard holds the users whose key hashes to it, and their aggregates.
type shard struct {
	e    *Engine
	accs []acc
	// nd users (0: none) are the slots of the keys of the engine's key
	// range that go to this shard (see keyRange), in key order; other
	// users follow them, indexed by intKeys or strKeys.
	nd      int
	intKeys *intIndex
	strKeys map[string]uint32
	// ikeys or skeys: the key of every user index.
	ikeys  []int64
	skeys  []string
	nusers int
	// recs, when not nil, holds the state of several accumulators.
	recs    *records
	present []bool
	dedup   *dedup
	sel     []int32
	rows    int64
}

func defaultShards() int { return min(runtime.GOMAXPROCS(0), 8) }

func newEngine(cat *schemas.Catalog, cutoff schemas.Timestamp, base *State, shards int) (*Engine, error) {
	return newEngineWith(cat, cutoff, base, Hints{}, shards)
}

func newEngineWith(cat *schemas.Catalog, cutoff schemas.Timestamp, base *State, h Hints, shards int) (*Engine, error) {
	e := &Engine{cat: cat, cutoff: int64(cutoff), strs: newInterner(), bufs: newColBufs(len(cat.Fields)), minLo: math.MaxInt64, seed: maphash.MakeSeed()}
	lifeLo := int64(math.MinInt64)
	if base != nil {
		if err := base.Check(cat); err != nil {
			return nil, fmt.Errorf("base snapshot: %w", err)
		}
		if base.Cutoff > cutoff {
			return nil, fmt.Errorf("base snapshot %s is after the cutoff %s", base.Cutoff, cutoff)
		}
		lifeLo = int64(base.Cutoff)
	}
	e.presentLo = math.MinInt64
	if !cat.HasLifetime() {
		e.presentLo = int64(cutoff) - cat.LongestWindow()
	}
	e.minLo = e.presentLo
	if base != nil {
		e.minLo = min(lifeLo, int64(cutoff)-cat.LongestWindow())
	}
	e.presentAll = cat.ID < 0 && e.presentLo <= e.minLo
	if t := cat.KeyField().Type; t != schemas.TypeInt64 && t != schemas.TypeString {
		return nil, fmt.Errorf("key field %s is %s, want int64 or string", cat.KeyField().Name, t)
	}
	if cat.ID >= 0 {
		if t := cat.Fields[cat.ID].Type; t != schemas.TypeInt64 && t != schemas.TypeString {
			return nil, fmt.Errorf("id field %s is %s, want int64 or string", cat.Fields[cat.ID].Name, t)
		}
	}
	for i := range cat.Tags {
		t := &cat.Tags[i]
		if t.IsRule() {
			continue
		}
		lo := lifeLo
		if t.Window > 0 {
			lo = int64(cutoff) - t.Window
		}
		e.addToGroup(lo, t.Where, i)
	}
	for range max(shards, 1) {
		s := &shard{e: e, accs: make([]acc, len(cat.Tags))}
		if cat.KeyField().Type == schemas.TypeInt64 {
			s.intKeys = newIntIndex()
		} else {
			s.strKeys = map[string]uint32{}
		}
		for i := range cat.Tags {
			if cat.Tags[i].IsRule() {
				continue
			}
			a, err := newAcc(cat, &cat.Tags[i], e.strs)
			if err != nil {
				return nil, err
			}
			s.accs[i] = a
		}
		fuseRanges(cat, e.groups, s.accs)
		s.useRecords(cat, e.groups)
		if cat.ID >= 0 {
			s.dedup = newDedup(cat.Fields[cat.ID].Type == schemas.TypeString)
		}
		e.shards = append(e.shards, s)
	}
	e.shardRows = make([][]int32, len(e.shards))
	e.witness = -1
	if e.presentAll {
	witness:
		for _, g := range e.groups {
			if g.where != nil || g.lo > e.minLo {
				continue
			}
			for _, ti := range g.tags {
				if _, ok := e.shards[0].accs[ti].(seer); ok {
					e.witness = ti
					break witness
				}
			}
		}
	}
	e.useKeyRange(h, base)
	if base != nil {
		if err := e.loadBase(base); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Engine) addToGroup(lo int64, where *schemas.Expr, tag int) {
	for i := range e.groups {
		g := &e.groups[i]
		if g.lo == lo && sameWhere(g.where, where) {
			g.tags = append(g.tags, tag)
			return
		}
	}
	e.groups = append(e.groups, group{lo: lo, where: where, tags: []int{tag}})
}

func sameWhere(a, b *schemas.Expr) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Source == b.Source
}

func (e *Engine) loadBase(base *State) error {
	for i, k := range base.Keys {
		var sh int
		switch x := k.(type) {
		case int64:
			sh = e.keyShard(x)
		case string:
			sh = e.strShard(x)
		}
		s := e.shards[sh]
		u, err := s.userOf(k)
		if err != nil {
			return fmt.Errorf("base snapshot: %w", err)
		}
		s.present[u] = true
		for j, t := range base.Tags {
			if err := s.accs[t].merge(u, base.Partials[i][j]); err != nil {
				return fmt.Errorf("base snapshot: key %v tag %s: %w", k, e.cat.Tags[t].Name, err)
			}
		}
	}
	return nil
}

// intShard hashes runs of 16 consecutive keys together: small keys are
// looked up in a shard's direct array (see intIndex), whose cache lines
// then each serve one shard only.
func (e *Engine) intShard(k int64) int {
	if len(e.shards) == 1 {
		return 0
	}
	return int((mix64(uint64(k)>>4) >> 32) % uint64(len(e.shards)))
}

func (e *Engine) strShard(k string) int {
	if len(e.shards) == 1 {
		return 0
	}
	return int((maphash.String(e.seed, k) >> 32) % uint64(len(e.shards)))
}

// userOf returns the dense index of a boxed key, adding it if new.
func (s *shard) userOf(k any) (uint32, error) {
	switch x := k.(type) {
	case int64:
		if s.intKeys != nil {
			return s.intUser(x), nil
		}
	case string:
		if s.strKeys != nil {
			return s.strUser(x), nil
		}
	}
	return 0, fmt.Errorf("key %v is %T, want %s", k, k, s.e.cat.KeyField().Type)
}

func (s *shard) intUser(k int64) uint32 {
	if u, ok := s.e.keys.slot(k); ok {
		if s.e.presentAll {
			s.present[u] = true
		}
		return u
	}
	u, isNew := s.intKeys.lookup(k, uint32(s.nusers))
	if isNew {
		s.ikeys = append(s.ikeys, k)
		s.nusers++
		s.growUsers()
		s.present[u] = s.e.presentAll
	}
	return u
}

func (s *shard) strUser(k string) uint32 {
	if u, ok := s.strKeys[k]; ok {
		return u
	}
	k = strings.Clone(k)
	u := uint32(s.nusers)
	s.nusers++
	s.strKeys[k] = u
	s.skeys = append(s.skeys, k)
	s.growUsers()
	s.present[u] = s.e.presentAll
	return u
}

func (s *shard) growUsers() { s.growUsersTo(s.nusers) }

// growUsersTo makes room for n users.
func (s *shard) growUsersTo(n int) {
	if n <= len(s.present) {
		return
	}
	s.present = grow(s.present, n)
	c := cap(s.present)
	if s.recs != nil {
		s.recs.grow(c)
	}
	for _, a := range s.accs {
		if a != nil {
			a.grow(c)
		}
	}
	s.present = s.present[:c]
}

// Dedup reports whether the catalog has an id field, so that every batch
// must go through Observe before any goes through Add.
func (e *Engine) Dedup() bool { return e.cat.ID >= 0 }

// prepare resolves the batch's columns and splits its rows by shard.
func (e *Engine) prepare(rec arrow.RecordBatch) (*batch, error) {
	if rec.Schema() != e.schema {
		fc, err := fieldColumns(e.cat, rec.Schema())
		if err != nil {
			return nil, err
		}
		e.schema, e.fieldCol = rec.Schema(), fc
	}
	b, err := newBatch(e.cat, rec, e.fieldCol, e.strs, e.bufs)
	if err != nil {
		return nil, err
	}
	key, err := b.col(e.cat.Key)
	if err != nil {
		return nil, err
	}
	for i := range e.shardRows {
		e.shardRows[i] = e.shardRows[i][:0]
	}
	switch {
	case len(e.shards) == 1:
		rows := e.shardRows[0]
		for r := range b.n {
			rows = append(rows, int32(r))
		}
		e.shardRows[0] = rows
	case key.i != nil && e.keys.on():
		kr := &e.keys
		for r, k := range key.i {
			sh := 0
			if g := uint64(k - kr.lo); g < kr.span {
				sh = int(g>>blockBits) & kr.mask
			} else {
				sh = e.intShard(k)
			}
			e.shardRows[sh] = append(e.shardRows[sh], int32(r))
		}
	case key.i != nil:
		for r, k := range key.i {
			sh := e.intShard(k)
			e.shardRows[sh] = append(e.shardRows[sh], int32(r))
		}
	default:
		for r, k := range key.s {
			sh := e.strShard(k)
			e.shardRows[sh] = append(e.shardRows[sh], int32(r))
		}
	}
	e.users = grow(e.users[:0], b.n)
	return b, nil
}

// run calls fn for every shard, concurrently when there are several.
func (e *Engine) run(fn func(i int, s *shard) error) error {
	if len(e.shards) == 1 {
		return fn(0, e.shards[0])
	}
	errs := make([]error, len(e.shards))
	var wg sync.WaitGroup
	for i, s := range e.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// resolveUsers sets users[r] for the given rows before the cutoff and at
// or after lo (other rows get no user).
func (s *shard) resolveUsers(b *batch, key *vec, rows []int32, users []uint32, lo int64) {
	hi := s.e.cutoff
	if kr := &s.e.keys; kr.on() {
		// Keys of the range have their slot (and exist once seen, which
		// matters only for presence).
		all := s.e.presentAll && s.e.witness < 0
		present := s.present
		for _, r := range rows {
			if t := b.ts[r]; t >= lo && t < hi {
				k := key.i[r]
				if g := uint64(k - kr.lo); g < kr.span {
					u := uint32(g>>(blockBits+kr.bits))<<blockBits | uint32(g)&(blockUsers-1)
					users[r] = u
					if all {
						present[u] = true
					}
					continue
				}
				users[r] = s.intUser(k)
				present = s.present
			}
		}
		return
	}
	if s.intKeys != nil {
		// Known keys of the direct array are looked up inline.
		direct := s.intKeys.direct
		for _, r := range rows {
			if t := b.ts[r]; t >= lo && t < hi {
				k := key.i[r]
				if uint64(k) < uint64(len(direct)) && direct[k] != 0 {
					users[r] = direct[k] - 1
					continue
				}
				users[r] = s.intUser(k)
				direct = s.intKeys.direct
			}
		}
		return
	}
	for _, r := range rows {
		if t := b.ts[r]; t >= lo && t < hi {
			users[r] = s.strUser(key.s[r])
		}
	}
}

// Observe records the candidate first event of every (key, id) in the
// batch (de-duplication's first pass).
func (e *Engine) Observe(rec arrow.RecordBatch) error {
	if !e.Dedup() {
		return nil
	}
	b, err := e.prepare(rec)
	if err != nil {
		return err
	}
	key, err := b.col(e.cat.Key)
	if err != nil {
		return err
	}
	id, err := b.col(e.cat.ID)
	if err != nil {
		return err
	}
	return e.run(func(i int, s *shard) error {
		rows := e.shardRows[i]
		s.resolveUsers(b, key, rows, e.users, math.MinInt64)
		s.dedup.observe(b, rows, id, e.users, e.cutoff)
		return nil
	})
}

// materialize computes, before the shards run, every column, value code
// and filter mask they read, so that they only read the batch.
func (e *Engine) materialize(b *batch) error {
	for i := range e.cat.Tags {
		t := &e.cat.Tags[i]
		if t.IsRule() || t.Of < 0 {
			continue
		}
		if _, err := b.col(t.Of); err != nil {
			return err
		}
		if t.Agg == schemas.AggCountDistinct || t.Agg == schemas.AggMode || e.cat.Fields[t.Of].Type == schemas.TypeString {
			if _, err := b.codes(t.Of); err != nil {
				return err
			}
		}
	}
	// The distinct filters, evaluated concurrently once the columns they
	// read are materialized (the batch's caches are filled only here,
	// before, so that the evaluations only read it).
	var wheres []*schemas.Expr
	index := map[string]int{}
	for gi := range e.groups {
		if w := e.groups[gi].where; w != nil {
			if _, ok := index[w.Source]; !ok {
				index[w.Source] = len(wheres)
				wheres = append(wheres, w)
				if err := materializeRefs(b, w.Root); err != nil {
					return err
				}
			}
		}
	}
	masks := make([][]bool, len(wheres))
	errs := make([]error, len(wheres))
	workers := min(len(e.shards), len(wheres))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(wheres); i += workers {
				v, err := evalNode(b, wheres[i].Root)
				if err != nil {
					errs[i] = fmt.Errorf("where %q: %w", wheres[i].Source, err)
					continue
				}
				masks[i] = v.mask(b.n)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.masks = grow(e.masks[:0], len(e.groups))
	for gi := range e.groups {
		e.masks[gi] = nil
		if w := e.groups[gi].where; w != nil {
			e.masks[gi] = masks[index[w.Source]]
		}
	}
	return nil
}

// materializeRefs materializes every column a filter node reads (but
// those compared on their Arrow bytes).
func materializeRefs(b *batch, n *schemas.Node) error {
	if _, _, ok := stringColumnEq(b, n); ok {
		return nil
	}
	if n.Op == schemas.OpRef {
		_, err := b.col(n.Ref)
		return err
	}
	for _, a := range n.Args {
		if err := materializeRefs(b, a); err != nil {
			return err
		}
	}
	return nil
}

// Add aggregates one record batch.
func (e *Engine) Add(rec arrow.RecordBatch) error {
	e.scanned += rec.NumRows()
	b, err := e.prepare(rec)
	if err != nil {
		return err
	}
	e.keep = grow(e.keep[:0], b.n)
	lo, hi := e.minLo, e.cutoff
	for r, t := range b.ts {
		e.keep[r] = t >= lo && t < hi
	}
	key, err := b.col(e.cat.Key)
	if err != nil {
		return err
	}
	if err := e.materialize(b); err != nil {
		return err
	}
	return e.run(func(i int, s *shard) error { return s.add(b, key, e.shardRows[i]) })
}

// add aggregates the rows of a batch that belong to the shard.
func (s *shard) add(b *batch, key *vec, rows []int32) error {
	e := s.e
	if s.dedup != nil {
		if err := s.dedup.keep(b, rows, e.users, e.keep); err != nil {
			return err
		}
	} else {
		s.resolveUsers(b, key, rows, e.users, e.minLo)
	}
	kept := 0
	for _, r := range rows {
		kept += b2i(e.keep[r])
	}
	s.rows += int64(kept)
	if !e.presentAll {
		for _, r := range rows {
			if e.keep[r] && b.ts[r] >= e.presentLo {
				s.present[e.users[r]] = true
			}
		}
	}
	keep, ts := e.keep[:b.n], b.ts[:b.n]
	// A chunk of rows at a time for every tag, so that the records the
	// first tag brings in are still in the cache for the others.
	for len(rows) > 0 {
		chunk := rows[:min(chunkRows, len(rows))]
		rows = rows[len(chunk):]
		if err := s.addChunk(b, chunk, keep, ts); err != nil {
			return err
		}
	}
	return nil
}

// chunkRows is how many rows shard.add aggregates for every tag at a
// time: their records stay in the cache (2048 rows: 128 KiB of 64-byte
// records; 1024 and 8192 measured no better).
const chunkRows = 2048

// addChunk aggregates rows for every tag.
func (s *shard) addChunk(b *batch, rows []int32, keep []bool, ts []int64) error {
	e := s.e
	s.sel = grow(s.sel, len(rows))
	for gi := range e.groups {
		g := &e.groups[gi]
		sel, lo := s.sel[:len(rows)], g.lo
		// Branch-free: every row is written, the next overwrites it
		// unless it is selected (the filters are unpredictable).
		n := 0
		if mask := e.masks[gi]; mask != nil {
			mask = mask[:b.n]
			for _, r := range rows {
				sel[n] = r
				n += b2i(keep[r]) & b2i(ts[r] >= lo) & b2i(mask[r])
			}
		} else {
			for _, r := range rows {
				sel[n] = r
				n += b2i(keep[r]) & b2i(ts[r] >= lo)
			}
		}
		sel = sel[:n]
		for _, ti := range g.tags {
			if err := s.accs[ti].add(b, sel, e.users); err != nil {
				return fmt.Errorf("tag %s: %w", e.cat.Tags[ti].Name, err)
			}
		}
	}
	return nil
}

// b2i is 1 for true, 0 for false (compiled without a branch).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ref names one user of one shard.
type ref struct {
	shard int
	u     uint32
}

// allAdded checks, after the second pass of a catalog with an id field,
// that Add saw every batch that Observe did.
func (e *Engine) allAdded() error {
	for _, s := range e.shards {
		if s.dedup != nil {
			if err := s.dedup.done(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Result assembles the profiles (and the lifetime state) of every user
// with an event in some window, sorted by key. It ends the engine's use.
func (e *Engine) Result() *Result {
	e.strs.rank()
	// Every shard's present users sorted by key, then merged.
	lists := make([][]uint32, len(e.shards))
	_ = e.run(func(i int, s *shard) error {
		var users []uint32
		if s.nd > 0 {
			if e.presentAll && e.witness >= 0 {
				w := s.accs[e.witness].(seer)
				for u := range s.nd {
					s.present[u] = s.present[u] || w.seen(uint32(u))
				}
			}
			return s.sortedUsers(&lists[i])
		}
		if s.intKeys != nil && s.intKeys.n == 0 {
			// Every key is in the direct array: scanning it yields the
			// users in key order.
			for _, v := range s.intKeys.direct {
				if v != 0 && s.present[v-1] {
					users = append(users, v-1)
				}
			}
			lists[i] = users
			return nil
		}
		for u := range s.nusers {
			if s.present[u] {
				users = append(users, uint32(u))
			}
		}
		if s.intKeys != nil {
			slices.SortFunc(users, func(a, b uint32) int { return cmp.Compare(s.ikeys[a], s.ikeys[b]) })
		} else {
			slices.SortFunc(users, func(a, b uint32) int { return strings.Compare(s.skeys[a], s.skeys[b]) })
		}
		lists[i] = users
		return nil
	})
	order := e.mergeByKey(lists)
	n := len(order)
	var rows int64
	for _, s := range e.shards {
		rows += s.rows
	}
	res := &Result{Profiles: NewProfiles(e.cat, n, false), Rows: rows, Scanned: e.scanned}
	ps := res.Profiles
	if ps.IntKeys != nil {
		for i, r := range order {
			ps.IntKeys[i] = e.shards[r.shard].ikeys[r.u]
		}
	} else {
		for i, r := range order {
			ps.StrKeys[i] = e.shards[r.shard].skeys[r.u]
		}
	}
	// Positions of every shard's users in the result.
	pos := make([][]int, len(e.shards))
	for i, r := range order {
		pos[r.shard] = append(pos[r.shard], i)
	}
	_ = e.run(func(si int, s *shard) error {
		users := lists[si]
		for t, a := range s.accs {
			if a != nil {
				a.fill(users, pos[si], &ps.Tags[t])
			}
		}
		return nil
	})
	if life := LifetimeTags(e.cat); len(life) > 0 {
		// The partials are read from the accumulators when asked for.
		res.State = &Lifetime{cutoff: schemas.Timestamp(e.cutoff), tags: life, ps: ps, lists: lists, pos: pos}
		for _, s := range e.shards {
			res.State.accs = append(res.State.accs, s.accs)
		}
	}
	// Rules read the aggregate columns; their rows are split over the
	// shards' goroutines by range.
	_ = e.run(func(si int, _ *shard) error {
		lo, hi := n*si/len(e.shards), n*(si+1)/len(e.shards)
		ps.evalRules(e.cat, lo, hi)
		return nil
	})
	return res
}

// mergeByKey merges the shards' user lists, each sorted by key.
func (e *Engine) mergeByKey(lists [][]uint32) []ref {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	out := make([]ref, 0, total)
	next := make([]int, len(lists))
	less := func(a, b ref) bool {
		sa, sb := e.shards[a.shard], e.shards[b.shard]
		if sa.intKeys != nil {
			return sa.ikeys[a.u] < sb.ikeys[b.u]
		}
		return sa.skeys[a.u] < sb.skeys[b.u]
	}
	for len(out) < total {
		best := ref{shard: -1}
		for si, l := range lists {
			if next[si] == len(l) {
				continue
			}
			c := ref{shard: si, u: l[next[si]]}
			if best.shard < 0 || less(c, best) {
				best = c
			}
		}
		out = append(out, best)
		next[best.shard]++
	}
	return out
}
