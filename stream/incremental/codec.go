package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/portrait-dev/portrait/schemas"
)

// codecVersion is the first byte of every encoded part. Bump it when the
// layout changes; decoding refuses other versions.
const codecVersion = 2

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt user state")

// A user is stored as parts, each under its own name so that only the
// changed ones are rewritten:
//
//	"a"                   lifetime base: version, the lifetime slots' partials
//	"r"                   where a snapshot base ends (Rebase): version,
//	                      baseFrom varint; absent when 0
//	"b" <start 8 bytes>   bucket (start big-endian, sign bit flipped):
//	                      version, events uvarint, one partial per slot,
//	                      nids uvarint, then per id: value, time varint
//
// Values are varints throughout, or in their field's type.
const (
	partBase     = 'a'
	partBucket   = 'b'
	partBaseFrom = 'r'
)

// Flush appends to *arena the name and encoding of every part of u that
// changed since the last Flush (or since it was decoded) and calls emit
// with them, in name order (the store's key order: base, buckets, base
// end); value is nil for a part to delete (an evicted bucket). It clears
// the change marks. The slices stay valid after later appends to *arena.
func (x *Executor) Flush(u *User, arena *[]byte, emit func(part, value []byte)) {
	a := *arena
	rebased := u.baseDirty && u.rebased
	switch {
	case u.baseDirty && u.hasBase():
		ns := len(a)
		a = append(a, partBase)
		vs := len(a)
		a = binary.AppendUvarint(a, codecVersion)
		base := x.base(u)
		for _, s := range x.life {
			a = x.appendPartial(a, s, &base)
		}
		emit(a[ns:vs:vs], a[vs:len(a):len(a)])
	case rebased: // the rebase left no base
		ns := len(a)
		a = append(a, partBase)
		emit(a[ns:len(a):len(a)], nil)
	}
	u.baseDirty = false
	// The dropped buckets (usually older than every kept one, but not
	// after Replace) merged with the dirty ones by start.
	slices.Sort(u.dropped)
	d := 0
	nb := x.buckets(u)
	for i := 0; i <= nb; i++ {
		for ; d < len(u.dropped) && (i == nb || u.dropped[d] < x.header(u, i).start()); d++ {
			ns := len(a)
			a = appendBucketName(a, u.dropped[d])
			emit(a[ns:len(a):len(a)], nil)
		}
		if i == nb || !x.header(u, i).dirty() {
			continue
		}
		h := x.header(u, i)
		h.setDirty(false)
		ns := len(a)
		a = appendBucketName(a, h.start())
		vs := len(a)
		a = x.appendBucket(a, u, i)
		emit(a[ns:vs:vs], a[vs:len(a):len(a)])
	}
	u.dropped = u.dropped[:0]
	if rebased {
		a = x.flushRebase(u, a, emit)
	}
	*arena = a
}

func appendBucketName(dst []byte, start schemas.Timestamp) []byte {
	dst = append(dst, partBucket)
	return binary.BigEndian.AppendUint64(dst, uint64(start)^(1<<63))
}

// appendBucket appends the encoding of u's bucket i.
func (x *Executor) appendBucket(dst []byte, u *User, i int) []byte {
	parts := x.parts(u, i)
	dst = binary.AppendUvarint(dst, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(x.header(u, i).events()))
	for s := range x.slots {
		dst = x.appendPartial(dst, s, &parts)
	}
	var ids []any
	if u.bucketIDs != nil {
		ids = u.bucketIDs[i]
	}
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	if len(ids) > 0 {
		idType := x.cat.Fields[x.cat.ID].Type
		for _, id := range ids {
			dst = appendValue(dst, idType, id)
			dst = binary.AppendVarint(dst, int64(u.ids[id]))
		}
	}
	return dst
}

// appendPartial appends slot s of ps.
func (x *Executor) appendPartial(dst []byte, slot int, ps *partials) []byte {
	typ := x.slots[slot].typ
	s := x.slots[slot].cell
	p := &ps.num[s]
	switch agg := x.slots[slot].agg; agg {
	case schemas.AggCount:
		dst = binary.AppendUvarint(dst, uint64(p.n))
	case schemas.AggSum, schemas.AggAvg:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if typ == schemas.TypeInt64 {
			dst = binary.AppendVarint(dst, p.i)
		} else {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(p.i)) // float64 bits
		}
	case schemas.AggMin, schemas.AggMax:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if p.n > 0 {
			dst = appendValue(dst, typ, ps.value(s, typ))
		}
	case schemas.AggFirst, schemas.AggLast:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if p.n > 0 {
			dst = appendValue(dst, typ, ps.value(s, typ))
			t, part, o := ps.order(s)
			dst = binary.AppendVarint(dst, t)
			dst = binary.AppendVarint(dst, int64(part))
			dst = binary.AppendVarint(dst, o)
		}
	case schemas.AggCountDistinct, schemas.AggMode:
		dst = binary.AppendUvarint(dst, uint64(ps.distinct(s)))
		dst = appendCounts(dst, agg, typ, ps, s)
	}
	return dst
}

// appendCounts appends the values of count_distinct or mode slot s of ps,
// each followed by its count for mode, without boxing them.
func appendCounts(dst []byte, agg schemas.Agg, typ schemas.Type, ps *partials, s int) []byte {
	one := func(dst []byte, n int64) []byte {
		if agg == schemas.AggMode {
			dst = binary.AppendUvarint(dst, uint64(n))
		}
		return dst
	}
	if sd := ps.peek(s); sd != nil {
		switch {
		case sd.bits.len() > 0:
			for b, n := range sd.bits.all {
				dst = one(appendBits(dst, typ, b), n)
			}
			return dst
		case sd.strs != nil:
			for v, n := range sd.strs {
				dst = one(appendString(dst, v), n)
			}
			return dst
		}
	}
	p := &ps.num[s]
	switch {
	case p.n == 0:
		return dst
	case typ == schemas.TypeString:
		return one(appendString(dst, ps.peek(s).s), p.n)
	}
	return one(appendBits(dst, typ, p.i), p.n)
}

// appendBits appends the value of non-string type t whose bits are b,
// as appendValue does.
func appendBits(dst []byte, t schemas.Type, b int64) []byte {
	switch t {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		return binary.AppendVarint(dst, b)
	case schemas.TypeFloat64:
		return binary.LittleEndian.AppendUint64(dst, uint64(b))
	case schemas.TypeBool:
		return append(dst, byte(b))
	}
	panic(fmt.Sprintf("incremental: cannot encode type %s as bits", t))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, t schemas.Type, v any) []byte {
	switch t {
	case schemas.TypeInt64:
		return binary.AppendVarint(dst, v.(int64))
	case schemas.TypeTimestamp:
		return binary.AppendVarint(dst, int64(v.(schemas.Timestamp)))
	case schemas.TypeFloat64:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.(float64)))
	case schemas.TypeString:
		return appendString(dst, v.(string))
	case schemas.TypeBool:
		if v.(bool) {
			return append(dst, 1)
		}
		return append(dst, 0)
	}
	panic(fmt.Sprintf("incremental: cannot encode type %s", t))
}

// reader decodes what the append functions wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or invalid %s", errCorrupt, what)
	}
	r.b = nil
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count(what string) int {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) { // every element takes at least one byte
		r.fail(what)
		return 0
	}
	return int(n)
}

func (r *reader) value(t schemas.Type) any {
	switch t {
	case schemas.TypeInt64:
		return r.varint("int64 value")
	case schemas.TypeTimestamp:
		return schemas.Timestamp(r.varint("timestamp value"))
	case schemas.TypeFloat64:
		if len(r.b) < 8 {
			r.fail("float64 value")
			return 0.0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return v
	case schemas.TypeString:
		n := r.count("string length")
		s := string(r.b[:n])
		r.b = r.b[n:]
		return s
	case schemas.TypeBool:
		if len(r.b) < 1 {
			r.fail("bool value")
			return false
		}
		v := r.b[0] != 0
		r.b = r.b[1:]
		return v
	}
	r.fail("value type")
	return nil
}

// DecodePart adds a part written by Flush to u, a user being loaded from
// its parts in name order (the store's key order: base, then buckets
// oldest first). The part is clean afterwards.
func (x *Executor) DecodePart(u *User, name, data []byte) error {
	r := &reader{b: data}
	if v := r.uvarint("version"); r.err == nil && v != codecVersion {
		return fmt.Errorf("%w: encoding version %d, want %d", errCorrupt, v, codecVersion)
	}
	if r.err != nil {
		return r.err
	}
	switch {
	case len(name) == 1 && name[0] == partBase:
		if u.hasBase() {
			return fmt.Errorf("%w: lifetime base twice", errCorrupt)
		}
		base := x.newPartials()
		for _, s := range x.life {
			x.readPartial(r, s, &base)
		}
		if err := r.end(); err != nil {
			return fmt.Errorf("lifetime base: %w", err)
		}
		u.baseNum, u.baseSide = base.num, *base.side
	case len(name) == 9 && name[0] == partBucket:
		start := schemas.Timestamp(binary.BigEndian.Uint64(name[1:]) ^ (1 << 63))
		parts := x.newPartials()
		events := int64(r.uvarint("bucket events"))
		for i := range x.slots {
			x.readPartial(r, i, &parts)
		}
		var ids []any
		if ni := r.count("id count"); ni > 0 {
			if x.cat.ID < 0 {
				return fmt.Errorf("%w: bucket %s: ids in a catalog without an id field", errCorrupt, start)
			}
			idType := x.cat.Fields[x.cat.ID].Type
			if u.ids == nil {
				u.ids = make(map[any]schemas.Timestamp, ni)
			}
			ids = make([]any, 0, ni)
			for range ni {
				id := r.value(idType)
				ts := schemas.Timestamp(r.varint("id time"))
				if r.err != nil {
					break
				}
				ids = append(ids, id)
				u.ids[id] = ts
			}
		}
		if err := r.end(); err != nil {
			return fmt.Errorf("bucket %s: %w", start, err)
		}
		nb := x.buckets(u)
		if nb > 0 && x.header(u, nb-1).start() >= start {
			return fmt.Errorf("%w: bucket %s after bucket %s", errCorrupt, start, x.header(u, nb-1).start())
		}
		u.num = append(u.num, partial{n: int64(start), i: events << 1}) // the header
		u.num = append(u.num, parts.num...)
		switch ns := x.sides.n; {
		case *parts.side != nil:
			if u.sides == nil {
				u.sides = make([]side, nb*ns, (nb+1)*ns)
			}
			u.sides = append(u.sides, *parts.side...)
		case u.sides != nil:
			u.sides = append(u.sides, make([]side, ns)...)
		}
		if x.cat.ID >= 0 {
			u.bucketIDs = append(u.bucketIDs, ids)
		}
	case len(name) == 1 && name[0] == partBaseFrom:
		u.baseFrom = schemas.Timestamp(r.varint("base from"))
		if err := r.end(); err != nil {
			return fmt.Errorf("base from: %w", err)
		}
	default:
		return fmt.Errorf("%w: unknown part %x", errCorrupt, name)
	}
	return nil
}

// end reports the first error or trailing bytes.
func (r *reader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return nil
}

// readPartial reads slot into ps.
func (x *Executor) readPartial(r *reader, slot int, ps *partials) {
	typ := x.slots[slot].typ
	s := x.slots[slot].cell
	p := &ps.num[s]
	switch x.slots[slot].agg {
	case schemas.AggCount:
		p.n = int64(r.uvarint("count"))
	case schemas.AggSum, schemas.AggAvg:
		p.n = int64(r.uvarint("sum n"))
		if typ == schemas.TypeInt64 {
			p.i = r.varint("int sum")
		} else {
			p.i = floatBits(r.value(schemas.TypeFloat64).(float64))
		}
	case schemas.AggMin, schemas.AggMax:
		p.n = int64(r.uvarint("min/max n"))
		if p.n > 0 {
			ps.set(s, typ, r.value(typ))
		}
	case schemas.AggFirst, schemas.AggLast:
		p.n = int64(r.uvarint("first/last n"))
		if p.n > 0 {
			ps.set(s, typ, r.value(typ))
			t := r.varint("order time")
			part := int32(r.varint("order partition"))
			ps.setOrder(s, t, part, r.varint("order offset"))
		}
	case schemas.AggCountDistinct, schemas.AggMode:
		n := r.count("distinct values")
		if n == 0 {
			return
		}
		agg := x.slots[slot].agg
		for range n {
			v := r.value(typ)
			c := int64(1)
			if agg == schemas.AggMode {
				c = int64(r.uvarint("mode count"))
			}
			if r.err != nil {
				return
			}
			if c <= 0 {
				r.fail("mode count")
				return
			}
			ps.addCount(s, agg, typ, v, c)
		}
	}
}
