package local

import (
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/schemas"
)

// acc accumulates one aggregate tag for every user in typed slices indexed
// by the dense user index. add takes the selected rows of a batch (sel) and
// the user index of every row (users); it is called once per batch, so the
// interface call is not in the per-row path.
type acc interface {
	grow(n int)
	add(b *batch, sel []int32, users []uint32) error
	value(u uint32) any
	partial(u uint32) Partial
	merge(u uint32, p Partial) error
}

func newAcc(cat *schemas.Catalog, t *schemas.Tag, strs *interner) (acc, error) {
	var of *schemas.Field
	if t.Of >= 0 {
		of = &cat.Fields[t.Of]
	}
	switch t.Agg {
	case schemas.AggCount:
		return &countAcc{}, nil
	case schemas.AggSum, schemas.AggAvg:
		avg := t.Agg == schemas.AggAvg
		switch of.Type {
		case schemas.TypeInt64:
			return &sumAcc[int64]{field: t.Of, avg: avg}, nil
		case schemas.TypeFloat64:
			return &sumAcc[float64]{field: t.Of, avg: avg}, nil
		}
	case schemas.AggMin, schemas.AggMax:
		max := t.Agg == schemas.AggMax
		switch of.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			return &minMaxAcc[int64]{field: t.Of, max: max, typ: of.Type}, nil
		case schemas.TypeFloat64:
			return &minMaxAcc[float64]{field: t.Of, max: max, typ: of.Type}, nil
		case schemas.TypeString:
			return &minMaxStrAcc{field: t.Of, max: max, strs: strs}, nil
		}
	case schemas.AggFirst, schemas.AggLast:
		last := t.Agg == schemas.AggLast
		switch of.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			return &edgeAcc[int64]{field: t.Of, last: last, typ: of.Type}, nil
		case schemas.TypeFloat64:
			return &edgeAcc[float64]{field: t.Of, last: last, typ: of.Type}, nil
		case schemas.TypeBool:
			return &edgeAcc[bool]{field: t.Of, last: last, typ: of.Type}, nil
		case schemas.TypeString:
			return &edgeAcc[bool]{field: t.Of, last: last, typ: of.Type, strs: strs}, nil
		}
	case schemas.AggCountDistinct:
		return &distinctAcc{field: t.Of, codec: codec{typ: of.Type, strs: strs}}, nil
	case schemas.AggMode:
		return &modeAcc{field: t.Of, codec: codec{typ: of.Type, strs: strs}}, nil
	}
	return nil, fmt.Errorf("tag %s: no local aggregate for %s", t.Name, t.Agg)
}

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		return s[:n]
	}
	c := max(n, 2*cap(s), 1024)
	out := make([]T, n, c)
	copy(out, s)
	return out
}

// box turns an int64 column value into the field's Go value.
func box(typ schemas.Type, v int64) any {
	if typ == schemas.TypeTimestamp {
		return schemas.Timestamp(v)
	}
	return v
}

// ---- count

type countAcc struct{ n []int64 }

func (a *countAcc) grow(n int) { a.n = grow(a.n, n) }

func (a *countAcc) add(_ *batch, sel []int32, users []uint32) error {
	for _, r := range sel {
		a.n[users[r]]++
	}
	return nil
}

func (a *countAcc) value(u uint32) any              { return a.n[u] }
func (a *countAcc) partial(u uint32) Partial        { return Partial{N: a.n[u]} }
func (a *countAcc) merge(u uint32, p Partial) error { a.n[u] += p.N; return nil }

// ---- sum and avg

type sumAcc[T int64 | float64] struct {
	field int
	avg   bool
	s     []T
	n     []int64
}

func (a *sumAcc[T]) grow(n int) { a.s, a.n = grow(a.s, n), grow(a.n, n) }

func (a *sumAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	xs := slice[T](c)
	for _, r := range sel {
		u := users[r]
		a.s[u] += xs[r]
		a.n[u]++
	}
	return nil
}

func (a *sumAcc[T]) value(u uint32) any {
	if a.n[u] == 0 {
		return nil
	}
	if a.avg {
		return float64(a.s[u]) / float64(a.n[u])
	}
	return a.s[u]
}

func (a *sumAcc[T]) partial(u uint32) Partial {
	p := Partial{N: a.n[u]}
	switch s := any(a.s[u]).(type) {
	case int64:
		p.Int = s
	case float64:
		p.Float = s
	}
	return p
}

func (a *sumAcc[T]) merge(u uint32, p Partial) error {
	var v T
	switch x := any(&v).(type) {
	case *int64:
		*x = p.Int
	case *float64:
		*x = p.Float
	}
	a.s[u] += v
	a.n[u] += p.N
	return nil
}

// slice returns a column's values as []T; T matches the column's type.
func slice[T any](v *vec) []T {
	var z T
	switch any(z).(type) {
	case int64:
		return any(v.i).([]T)
	case float64:
		return any(v.f).([]T)
	case bool:
		return any(v.b).([]T)
	}
	panic(fmt.Sprintf("local: no column slice of %T", z))
}

// ---- min and max

type minMaxAcc[T int64 | float64] struct {
	field int
	max   bool
	typ   schemas.Type
	v     []T
	has   []bool
}

func (a *minMaxAcc[T]) grow(n int) { a.v, a.has = grow(a.v, n), grow(a.has, n) }

func (a *minMaxAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	xs := slice[T](c)
	if a.max {
		for _, r := range sel {
			u, x := users[r], xs[r]
			if !a.has[u] || x > a.v[u] {
				a.v[u], a.has[u] = x, true
			}
		}
		return nil
	}
	for _, r := range sel {
		u, x := users[r], xs[r]
		if !a.has[u] || x < a.v[u] {
			a.v[u], a.has[u] = x, true
		}
	}
	return nil
}

func (a *minMaxAcc[T]) value(u uint32) any {
	if !a.has[u] {
		return nil
	}
	switch x := any(a.v[u]).(type) {
	case int64:
		return box(a.typ, x)
	default:
		return x
	}
}

func (a *minMaxAcc[T]) partial(u uint32) Partial {
	if !a.has[u] {
		return Partial{}
	}
	return Partial{N: 1, Value: a.value(u)}
}

func (a *minMaxAcc[T]) merge(u uint32, p Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	x, err := unboxAs[T](p.Value)
	if err != nil {
		return err
	}
	if !a.has[u] || (a.max && x > a.v[u]) || (!a.max && x < a.v[u]) {
		a.v[u], a.has[u] = x, true
	}
	return nil
}

// unboxAs reads a partial's value into T.
func unboxAs[T any](v any) (T, error) {
	var out T
	switch x := v.(type) {
	case schemas.Timestamp:
		v = int64(x)
	}
	y, ok := v.(T)
	if !ok {
		return out, fmt.Errorf("partial value %v is %T, want %T", v, v, out)
	}
	return y, nil
}

type minMaxStrAcc struct {
	field int
	max   bool
	strs  *interner
	v     []uint32
	has   []bool
}

func (a *minMaxStrAcc) grow(n int) { a.v, a.has = grow(a.v, n), grow(a.has, n) }

func (a *minMaxStrAcc) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	for _, r := range sel {
		u, x := users[r], c.s[r]
		if !a.has[u] {
			a.v[u], a.has[u] = a.strs.id(x), true
			continue
		}
		cur := a.strs.vals[a.v[u]]
		if (a.max && x > cur) || (!a.max && x < cur) {
			a.v[u] = a.strs.id(x)
		}
	}
	return nil
}

func (a *minMaxStrAcc) value(u uint32) any {
	if !a.has[u] {
		return nil
	}
	return a.strs.vals[a.v[u]]
}

func (a *minMaxStrAcc) partial(u uint32) Partial {
	if !a.has[u] {
		return Partial{}
	}
	return Partial{N: 1, Value: a.value(u)}
}

func (a *minMaxStrAcc) merge(u uint32, p Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	x, ok := p.Value.(string)
	if !ok {
		return fmt.Errorf("partial value %v is %T, want string", p.Value, p.Value)
	}
	if !a.has[u] {
		a.v[u], a.has[u] = a.strs.id(x), true
		return nil
	}
	cur := a.strs.vals[a.v[u]]
	if (a.max && x > cur) || (!a.max && x < cur) {
		a.v[u] = a.strs.id(x)
	}
	return nil
}

// ---- first and last

// edgeAcc keeps the first or last value by (time, partition, offset).
// Strings are kept as interned ids in ids (T is then unused).
type edgeAcc[T int64 | float64 | bool] struct {
	field int
	last  bool
	typ   schemas.Type
	strs  *interner
	v     []T
	ids   []uint32
	t     []int64
	p     []int32
	o     []int64
	has   []bool
}

func (a *edgeAcc[T]) grow(n int) {
	a.t, a.p, a.o, a.has = grow(a.t, n), grow(a.p, n), grow(a.o, n), grow(a.has, n)
	if a.strs != nil {
		a.ids = grow(a.ids, n)
	} else {
		a.v = grow(a.v, n)
	}
}

// before reports whether (t1, p1, o1) orders before (t2, p2, o2).
func before(t1 int64, p1 int32, o1 int64, t2 int64, p2 int32, o2 int64) bool {
	if t1 != t2 {
		return t1 < t2
	}
	if p1 != p2 {
		return p1 < p2
	}
	return o1 < o2
}

func (a *edgeAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	var xs []T
	if a.strs == nil {
		xs = slice[T](c)
	}
	for _, r := range sel {
		u := users[r]
		t, p, o := b.ts[r], b.part[r], b.off[r]
		if a.has[u] {
			if a.last {
				if !before(a.t[u], a.p[u], a.o[u], t, p, o) {
					continue
				}
			} else if !before(t, p, o, a.t[u], a.p[u], a.o[u]) {
				continue
			}
		}
		if a.strs != nil {
			a.ids[u] = a.strs.id(c.s[r])
		} else {
			a.v[u] = xs[r]
		}
		a.t[u], a.p[u], a.o[u], a.has[u] = t, p, o, true
	}
	return nil
}

func (a *edgeAcc[T]) value(u uint32) any {
	if !a.has[u] {
		return nil
	}
	if a.strs != nil {
		return a.strs.vals[a.ids[u]]
	}
	switch x := any(a.v[u]).(type) {
	case int64:
		return box(a.typ, x)
	default:
		return x
	}
}

func (a *edgeAcc[T]) partial(u uint32) Partial {
	if !a.has[u] {
		return Partial{}
	}
	return Partial{N: 1, Value: a.value(u), Time: schemas.Timestamp(a.t[u]), Partition: a.p[u], Offset: a.o[u]}
}

func (a *edgeAcc[T]) merge(u uint32, p Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	t := int64(p.Time)
	if a.has[u] {
		if a.last && !before(a.t[u], a.p[u], a.o[u], t, p.Partition, p.Offset) {
			return nil
		}
		if !a.last && !before(t, p.Partition, p.Offset, a.t[u], a.p[u], a.o[u]) {
			return nil
		}
	}
	if a.strs != nil {
		s, ok := p.Value.(string)
		if !ok {
			return fmt.Errorf("partial value %v is %T, want string", p.Value, p.Value)
		}
		a.ids[u] = a.strs.id(s)
	} else {
		v, err := unboxAs[T](p.Value)
		if err != nil {
			return err
		}
		a.v[u] = v
	}
	a.t[u], a.p[u], a.o[u], a.has[u] = t, p.Partition, p.Offset, true
	return nil
}

// ---- value codes for count_distinct and mode

// codec maps a field's values to uint64 codes that are equal exactly when
// the values are: int64 and timestamps as their bits, float64 as its bits
// (with -0 folded into 0), bools as 0/1 and strings as interned ids.
type codec struct {
	typ  schemas.Type
	strs *interner
}

// codes returns the code of every row of the column.
func (c codec) codes(v *vec, sel []int32, out []uint64) []uint64 {
	out = out[:0]
	switch c.typ {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		for _, r := range sel {
			out = append(out, uint64(v.i[r]))
		}
	case schemas.TypeFloat64:
		for _, r := range sel {
			out = append(out, floatCode(v.f[r]))
		}
	case schemas.TypeBool:
		for _, r := range sel {
			var x uint64
			if v.b[r] {
				x = 1
			}
			out = append(out, x)
		}
	case schemas.TypeString:
		for _, r := range sel {
			out = append(out, uint64(c.strs.id(v.s[r])))
		}
	}
	return out
}

func floatCode(f float64) uint64 {
	if f == 0 {
		f = 0 // folds -0
	}
	return math.Float64bits(f)
}

func (c codec) decode(x uint64) any {
	switch c.typ {
	case schemas.TypeInt64:
		return int64(x)
	case schemas.TypeTimestamp:
		return schemas.Timestamp(int64(x))
	case schemas.TypeFloat64:
		return math.Float64frombits(x)
	case schemas.TypeBool:
		return x == 1
	default:
		return c.strs.vals[uint32(x)]
	}
}

func (c codec) encode(v any) (uint64, error) {
	switch x := v.(type) {
	case int64:
		if c.typ == schemas.TypeInt64 {
			return uint64(x), nil
		}
	case schemas.Timestamp:
		if c.typ == schemas.TypeTimestamp {
			return uint64(x), nil
		}
	case float64:
		if c.typ == schemas.TypeFloat64 {
			return floatCode(x), nil
		}
	case bool:
		if c.typ == schemas.TypeBool {
			if x {
				return 1, nil
			}
			return 0, nil
		}
	case string:
		if c.typ == schemas.TypeString {
			return uint64(c.strs.id(x)), nil
		}
	}
	return 0, fmt.Errorf("partial value %v is %T, want %s", v, v, c.typ)
}

// less orders two codes by their values.
func (c codec) less(x, y uint64) bool {
	switch c.typ {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		return int64(x) < int64(y)
	case schemas.TypeFloat64:
		return math.Float64frombits(x) < math.Float64frombits(y)
	case schemas.TypeBool:
		return x < y
	default:
		return c.strs.vals[uint32(x)] < c.strs.vals[uint32(y)]
	}
}

// smallLimit is the size up to which a user's set or counts live in a
// slice scanned linearly; larger ones move to a map.
const smallLimit = 32

// ---- count_distinct

type distinctAcc struct {
	field   int
	codec   codec
	small   [][]uint64
	big     map[uint32]map[uint64]struct{}
	scratch []uint64
}

func (a *distinctAcc) grow(n int) { a.small = grow(a.small, n) }

func (a *distinctAcc) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	a.scratch = a.codec.codes(c, sel, a.scratch)
	for i, r := range sel {
		a.insert(users[r], a.scratch[i])
	}
	return nil
}

func (a *distinctAcc) insert(u uint32, x uint64) {
	if m, ok := a.big[u]; ok {
		m[x] = struct{}{}
		return
	}
	s := a.small[u]
	for _, y := range s {
		if y == x {
			return
		}
	}
	if len(s) < smallLimit {
		a.small[u] = append(s, x)
		return
	}
	m := make(map[uint64]struct{}, 2*smallLimit)
	for _, y := range s {
		m[y] = struct{}{}
	}
	m[x] = struct{}{}
	if a.big == nil {
		a.big = map[uint32]map[uint64]struct{}{}
	}
	a.big[u] = m
	a.small[u] = nil
}

func (a *distinctAcc) value(u uint32) any {
	if m, ok := a.big[u]; ok {
		return int64(len(m))
	}
	return int64(len(a.small[u]))
}

func (a *distinctAcc) partial(u uint32) Partial {
	var vals []any
	if m, ok := a.big[u]; ok {
		for x := range m {
			vals = append(vals, a.codec.decode(x))
		}
	} else {
		for _, x := range a.small[u] {
			vals = append(vals, a.codec.decode(x))
		}
	}
	sortValues(vals, nil)
	return Partial{N: int64(len(vals)), Values: vals}
}

func (a *distinctAcc) merge(u uint32, p Partial) error {
	for _, v := range p.Values {
		x, err := a.codec.encode(v)
		if err != nil {
			return err
		}
		a.insert(u, x)
	}
	return nil
}

// ---- mode

type modeCount struct {
	x uint64
	n int64
}

type modeAcc struct {
	field   int
	codec   codec
	small   [][]modeCount
	big     map[uint32]map[uint64]int64
	scratch []uint64
}

func (a *modeAcc) grow(n int) { a.small = grow(a.small, n) }

func (a *modeAcc) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	a.scratch = a.codec.codes(c, sel, a.scratch)
	for i, r := range sel {
		a.insert(users[r], a.scratch[i], 1)
	}
	return nil
}

func (a *modeAcc) insert(u uint32, x uint64, n int64) {
	if m, ok := a.big[u]; ok {
		m[x] += n
		return
	}
	s := a.small[u]
	for i := range s {
		if s[i].x == x {
			s[i].n += n
			return
		}
	}
	if len(s) < smallLimit {
		a.small[u] = append(s, modeCount{x, n})
		return
	}
	m := make(map[uint64]int64, 2*smallLimit)
	for _, y := range s {
		m[y.x] = y.n
	}
	m[x] += n
	if a.big == nil {
		a.big = map[uint32]map[uint64]int64{}
	}
	a.big[u] = m
	a.small[u] = nil
}

func (a *modeAcc) value(u uint32) any {
	var best uint64
	var bestN int64
	consider := func(x uint64, n int64) {
		if n > bestN || (n == bestN && a.codec.less(x, best)) {
			best, bestN = x, n
		}
	}
	if m, ok := a.big[u]; ok {
		for x, n := range m {
			consider(x, n)
		}
	} else {
		for _, c := range a.small[u] {
			consider(c.x, c.n)
		}
	}
	if bestN == 0 {
		return nil
	}
	return a.codec.decode(best)
}

func (a *modeAcc) partial(u uint32) Partial {
	var vals []any
	var counts []int64
	if m, ok := a.big[u]; ok {
		for x, n := range m {
			vals, counts = append(vals, a.codec.decode(x)), append(counts, n)
		}
	} else {
		for _, c := range a.small[u] {
			vals, counts = append(vals, a.codec.decode(c.x)), append(counts, c.n)
		}
	}
	sortValues(vals, counts)
	var total int64
	for _, n := range counts {
		total += n
	}
	return Partial{N: total, Values: vals, Counts: counts}
}

func (a *modeAcc) merge(u uint32, p Partial) error {
	if len(p.Counts) != len(p.Values) {
		return fmt.Errorf("mode partial has %d values and %d counts", len(p.Values), len(p.Counts))
	}
	for i, v := range p.Values {
		x, err := a.codec.encode(v)
		if err != nil {
			return err
		}
		a.insert(u, x, p.Counts[i])
	}
	return nil
}
