package local

import (
	"fmt"

	"github.com/portrait-dev/portrait/schemas"
)

// fill sets vals[pos[k]*nt+t] to the value of users[k], for every k: one
// accumulator at a time, so that its reads (random, by user) overlap in a
// tight loop instead of waiting behind every other tag of the user.
type filler interface {
	fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer)
}

func (a *countAcc) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	n := a.n
	for k, u := range users {
		vals[pos[k]*nt+t] = bx.int64(n[u])
	}
}

func (a *sumAcc[T]) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

func (a *minMaxAcc[T]) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

func (a *minMaxStrAcc) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

func (a *edgeAcc[T]) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

func (a *rangeView[T]) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

func (a *distinctAcc) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	a.finish()
	for k, u := range users {
		vals[pos[k]*nt+t] = bx.int64(a.n[u])
	}
}

func (a *modeAcc) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	a.finish()
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

// partialFiller sets parts[pos[k]*nl+j] to the partial of users[k], for
// every k, writing only the fields the aggregate sets (parts is zeroed).
// Aggregates whose partial is only their value have none (see
// valuePartial).
type partialFiller interface {
	fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer)
}

// valuePartial marks the aggregates whose partial is {N: 1, Value: the
// tag's value} when the tag has a value, else empty (min and max): their
// partials are filled from the values already boxed, without reading the
// aggregate again.
type valuePartial interface{ partialIsValue() }

func (a *minMaxAcc[T]) partialIsValue() {}
func (a *rangeView[T]) partialIsValue() {}
func (a *minMaxStrAcc) partialIsValue() {}

// fillPartials fills the partials of lifetime tag t (the j-th) of the
// users at positions pos, whose values (nt a row) are filled.
func fillPartials(a acc, users []uint32, pos []int, vals []any, nt, t int, parts []schemas.Partial, nl, j int, bx *boxer) {
	switch a := a.(type) {
	case valuePartial:
		for _, i := range pos {
			if v := vals[i*nt+t]; v != nil {
				p := &parts[i*nl+j]
				p.N, p.Value = 1, v
			}
		}
	case partialFiller:
		a.fillPartials(users, pos, parts, nl, j, bx)
	default:
		panic(fmt.Sprintf("local: %T fills no partials", a))
	}
}

func (a *countAcc) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, _ *boxer) {
	n := a.n
	for k, u := range users {
		parts[pos[k]*nl+j].N = n[u]
	}
}

func (a *sumAcc[T]) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		parts[pos[k]*nl+j] = a.partial(u, bx)
	}
}

func (a *edgeAcc[T]) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		st := &a.e[u]
		if !st.has() {
			continue
		}
		p := &parts[pos[k]*nl+j]
		p.N, p.Value = 1, a.value(u, bx)
		p.Time, p.Partition, p.Offset = schemas.Timestamp(st.t), st.p, st.o
	}
}

func (a *distinctAcc) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		parts[pos[k]*nl+j] = a.partial(u, bx)
	}
}

func (a *modeAcc) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		parts[pos[k]*nl+j] = a.partial(u, bx)
	}
}
