package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/schemas"
)

// codecVersion is the first byte of every encoded user. Bump it when the
// layout changes; decoding refuses other versions.
const codecVersion = 1

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt user state")

// AppendUser appends the compact binary form of u (without its key) to
// dst: varints throughout, values in their field's type.
//
//	version uvarint
//	flags   byte (1: lifetime base present)
//	[base partials of the lifetime slots]
//	nbuckets uvarint, then per bucket: start (varint, delta to the
//	  previous), events uvarint, one partial per slot
//	nids uvarint, then per id: value, time varint
func (x *Executor) AppendUser(dst []byte, u *User) []byte {
	dst = binary.AppendUvarint(dst, codecVersion)
	var flags byte
	if u.base != nil {
		flags |= 1
	}
	dst = append(dst, flags)
	if u.base != nil {
		for _, s := range x.life {
			dst = x.appendPartial(dst, s, &u.base[s])
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(u.buckets)))
	var prev schemas.Timestamp
	for _, b := range u.buckets {
		dst = binary.AppendVarint(dst, int64(b.start-prev))
		prev = b.start
		dst = binary.AppendUvarint(dst, uint64(b.events))
		for i := range x.slots {
			dst = x.appendPartial(dst, i, &b.parts[i])
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(u.ids)))
	if len(u.ids) > 0 {
		idType := x.cat.Fields[x.cat.ID].Type
		for id, ts := range u.ids {
			dst = appendValue(dst, idType, id)
			dst = binary.AppendVarint(dst, int64(ts))
		}
	}
	return dst
}

func (x *Executor) fieldType(s int) schemas.Type {
	if x.slots[s].of < 0 {
		return schemas.TypeInvalid
	}
	return x.cat.Fields[x.slots[s].of].Type
}

func (x *Executor) appendPartial(dst []byte, s int, p *partial) []byte {
	typ := x.fieldType(s)
	switch x.slots[s].agg {
	case schemas.AggCount:
		dst = binary.AppendUvarint(dst, uint64(p.n))
	case schemas.AggSum, schemas.AggAvg:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if typ == schemas.TypeInt64 {
			dst = binary.AppendVarint(dst, p.i)
		} else {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(p.f))
		}
	case schemas.AggMin, schemas.AggMax:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if p.n > 0 {
			dst = appendValue(dst, typ, p.v)
		}
	case schemas.AggFirst, schemas.AggLast:
		dst = binary.AppendUvarint(dst, uint64(p.n))
		if p.n > 0 {
			dst = appendValue(dst, typ, p.v)
			dst = binary.AppendVarint(dst, p.t)
			dst = binary.AppendVarint(dst, int64(p.p))
			dst = binary.AppendVarint(dst, p.o)
		}
	case schemas.AggCountDistinct:
		dst = binary.AppendUvarint(dst, uint64(len(p.m)))
		for v := range p.m {
			dst = appendValue(dst, typ, v)
		}
	case schemas.AggMode:
		dst = binary.AppendUvarint(dst, uint64(len(p.m)))
		for v, n := range p.m {
			dst = appendValue(dst, typ, v)
			dst = binary.AppendUvarint(dst, uint64(n))
		}
	}
	return dst
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
		s := v.(string)
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		return append(dst, s...)
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

// DecodeUser reads a user written by AppendUser.
func (x *Executor) DecodeUser(key any, data []byte) (*User, error) {
	r := &reader{b: data}
	if v := r.uvarint("version"); r.err == nil && v != codecVersion {
		return nil, fmt.Errorf("%w: encoding version %d, want %d", errCorrupt, v, codecVersion)
	}
	if len(r.b) < 1 {
		return nil, fmt.Errorf("%w: missing flags", errCorrupt)
	}
	flags := r.b[0]
	r.b = r.b[1:]
	u := &User{Key: key}
	if flags&1 != 0 {
		u.base = make([]partial, len(x.slots))
		for _, s := range x.life {
			x.readPartial(r, s, &u.base[s])
		}
	}
	nb := r.count("bucket count")
	if nb > 0 {
		u.buckets = make([]*bucket, 0, nb)
	}
	var prev schemas.Timestamp
	for range nb {
		b := &bucket{parts: make([]partial, len(x.slots))}
		b.start = prev + schemas.Timestamp(r.varint("bucket start"))
		prev = b.start
		b.events = int64(r.uvarint("bucket events"))
		for i := range x.slots {
			x.readPartial(r, i, &b.parts[i])
		}
		if r.err != nil {
			return nil, r.err
		}
		u.buckets = append(u.buckets, b)
	}
	if ni := r.count("id count"); ni > 0 {
		idType := x.cat.Fields[x.cat.ID].Type
		u.ids = make(map[any]schemas.Timestamp, ni)
		for range ni {
			id := r.value(idType)
			u.ids[id] = schemas.Timestamp(r.varint("id time"))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return u, nil
}

func (x *Executor) readPartial(r *reader, s int, p *partial) {
	typ := x.fieldType(s)
	switch x.slots[s].agg {
	case schemas.AggCount:
		p.n = int64(r.uvarint("count"))
	case schemas.AggSum, schemas.AggAvg:
		p.n = int64(r.uvarint("sum n"))
		if typ == schemas.TypeInt64 {
			p.i = r.varint("int sum")
		} else {
			p.f = r.value(schemas.TypeFloat64).(float64)
		}
	case schemas.AggMin, schemas.AggMax:
		p.n = int64(r.uvarint("min/max n"))
		if p.n > 0 {
			p.v = r.value(typ)
		}
	case schemas.AggFirst, schemas.AggLast:
		p.n = int64(r.uvarint("first/last n"))
		if p.n > 0 {
			p.v = r.value(typ)
			p.t = r.varint("order time")
			p.p = int32(r.varint("order partition"))
			p.o = r.varint("order offset")
		}
	case schemas.AggCountDistinct, schemas.AggMode:
		n := r.count("distinct values")
		if n == 0 {
			return
		}
		p.m = make(map[any]int64, n)
		for range n {
			v := r.value(typ)
			c := int64(1)
			if x.slots[s].agg == schemas.AggMode {
				c = int64(r.uvarint("mode count"))
			}
			if r.err != nil {
				return
			}
			p.m[v] = c
		}
	}
}
