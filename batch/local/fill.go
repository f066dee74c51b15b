package local

import (
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/schemas"
)

// filler sets row pos[k] of a tag's column to the value of users[k], for
// every k: one accumulator at a time, so that its reads (random, by user)
// overlap in a tight loop instead of waiting behind every other tag of
// the user. The column's validity is false on entry.
type filler interface {
	fill(users []uint32, pos []int, c *Column)
}

func (a *countAcc) fill(users []uint32, pos []int, c *Column) {
	base, stride := a.n.view()
	out := c.Int
	for k, u := range users {
		out[pos[k]] = *slotAt[int64](base, stride, u)
	}
}

func (a *sumAcc[T]) fill(users []uint32, pos []int, c *Column) {
	for k, u := range users {
		st, i := a.s.at(u), pos[k]
		if st.n == 0 {
			continue
		}
		c.Valid[i] = true
		switch s := any(st.s).(type) {
		case int64:
			if a.avg {
				c.Float[i] = float64(s) / float64(st.n)
			} else {
				c.Int[i] = s
			}
		case float64:
			if a.avg {
				c.Float[i] = s / float64(st.n)
			} else {
				c.Float[i] = s
			}
		}
	}
}

func (a *minMaxAcc[T]) fill(users []uint32, pos []int, c *Column) {
	out := slots[T](c)
	for k, u := range users {
		st, i := a.v.at(u), pos[k]
		out[i], c.Valid[i] = st.v, st.has
	}
}

func (a *rangeView[T]) fill(users []uint32, pos []int, c *Column) {
	out := slots[T](c)
	for k, u := range users {
		i := pos[k]
		out[i], c.Valid[i] = a.get(u)
	}
}

func (a *minMaxStrAcc) fill(users []uint32, pos []int, c *Column) {
	for k, u := range users {
		if a.has[u] {
			i := pos[k]
			c.Str[i], c.Valid[i] = a.strs.vals[a.v[u]], true
		}
	}
}

func (a *edgeAcc[T]) fill(users []uint32, pos []int, c *Column) {
	if a.strs != nil {
		for k, u := range users {
			if ref := a.e.at(u).ref; ref != 0 {
				i := pos[k]
				c.Str[i], c.Valid[i] = a.strs.vals[ref-1], true
			}
		}
		return
	}
	out := slots[T](c)
	for k, u := range users {
		st, i := a.e.at(u), pos[k]
		out[i], c.Valid[i] = st.v, st.has()
	}
}

func (a *distinctAcc) fill(users []uint32, pos []int, c *Column) {
	a.finish()
	n, out := a.n, c.Int
	for k, u := range users {
		out[pos[k]] = n[u]
	}
}

func (a *modeAcc) fill(users []uint32, pos []int, c *Column) {
	a.finish()
	for k, u := range users {
		if a.has[u] {
			a.codec.set(c, pos[k], a.best[u])
		}
	}
}

// slots returns the value slice of a column of values of type T.
func slots[T int64 | float64 | bool](c *Column) []T {
	var z T
	switch any(z).(type) {
	case int64:
		return any(c.Int).([]T)
	case float64:
		return any(c.Float).([]T)
	case bool:
		return any(c.Bool).([]T)
	}
	panic(fmt.Sprintf("local: no column slots of %T", z))
}

// set stores the value of code x in row i of c.
func (cd codec) set(c *Column, i int, x uint64) {
	switch cd.typ {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		c.Int[i] = int64(x)
	case schemas.TypeFloat64:
		c.Float[i] = math.Float64frombits(x)
	case schemas.TypeBool:
		c.Bool[i] = x == 1
	default:
		c.Str[i] = cd.strs.vals[uint32(x)]
	}
	c.Valid[i] = true
}

// partialFiller sets parts[(pos[k]-base)*nl+j] to the partial of
// users[k] (at row pos[k] of the result), for every k, writing only the
// fields the aggregate sets (parts is zeroed).
// c is the tag's column, filled: a partial's value is boxed from it.
// Aggregates whose partial is only their value have none (see
// valuePartial).
type partialFiller interface {
	fillPartials(users []uint32, pos []int, c *Column, parts []schemas.Partial, base, nl, j int, bx *boxer)
}

// valuePartial marks the aggregates whose partial is {N: 1, Value: the
// tag's value} when the tag has a value, else empty (min and max): their
// partials are filled from the column, without reading the aggregate
// again.
type valuePartial interface{ partialIsValue() }

func (a *minMaxAcc[T]) partialIsValue() {}
func (a *rangeView[T]) partialIsValue() {}
func (a *minMaxStrAcc) partialIsValue() {}

// fillPartials fills the partials of lifetime tag t (the j-th) of the
// users at rows pos into parts[(pos[k]-base)*nl+j], from its filled
// column c where it can.
func fillPartials(a acc, users []uint32, pos []int, c *Column, parts []schemas.Partial, base, nl, j int, bx *boxer) {
	switch a := a.(type) {
	case valuePartial:
		for _, i := range pos {
			if c.Has(i) {
				p := &parts[(i-base)*nl+j]
				p.N, p.Value = 1, c.box(i)
			}
		}
	case partialFiller:
		a.fillPartials(users, pos, c, parts, base, nl, j, bx)
	default:
		panic(fmt.Sprintf("local: %T fills no partials", a))
	}
}

func (a *countAcc) fillPartials(_ []uint32, pos []int, c *Column, parts []schemas.Partial, base, nl, j int, _ *boxer) {
	for _, i := range pos {
		parts[(i-base)*nl+j].N = c.Int[i]
	}
}

func (a *sumAcc[T]) fillPartials(users []uint32, pos []int, _ *Column, parts []schemas.Partial, base, nl, j int, _ *boxer) {
	for k, u := range users {
		parts[(pos[k]-base)*nl+j] = a.partial(u)
	}
}

func (a *edgeAcc[T]) fillPartials(users []uint32, pos []int, c *Column, parts []schemas.Partial, base, nl, j int, _ *boxer) {
	for k, u := range users {
		i := pos[k]
		if !c.Has(i) {
			continue
		}
		st := a.e.at(u)
		p := &parts[(i-base)*nl+j]
		p.N, p.Value = 1, c.box(i)
		p.Time, p.Partition, p.Offset = schemas.Timestamp(st.t), st.p, st.o
	}
}

func (a *distinctAcc) fillPartials(users []uint32, pos []int, _ *Column, parts []schemas.Partial, base, nl, j int, bx *boxer) {
	for k, u := range users {
		parts[(pos[k]-base)*nl+j] = a.partial(u, bx)
	}
}

func (a *modeAcc) fillPartials(users []uint32, pos []int, _ *Column, parts []schemas.Partial, base, nl, j int, bx *boxer) {
	for k, u := range users {
		parts[(pos[k]-base)*nl+j] = a.partial(u, bx)
	}
}
