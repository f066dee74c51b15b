package local

import "github.com/portrait-dev/portrait/schemas"

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
	if a.off == nil {
		a.finish()
	}
	off := a.off
	for k, u := range users {
		vals[pos[k]*nt+t] = bx.int64(int64(off[u+1] - off[u]))
	}
}

func (a *modeAcc) fill(users []uint32, pos []int, vals []any, nt, t int, bx *boxer) {
	if a.off == nil {
		a.finish()
	}
	for k, u := range users {
		vals[pos[k]*nt+t] = a.value(u, bx)
	}
}

// partialFiller sets parts[pos[k]*nl+j] to the partial of users[k], for
// every k, writing only the fields the aggregate sets (parts is zeroed).
type partialFiller interface {
	fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer)
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

func (a *minMaxAcc[T]) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		if a.v[u].has {
			p := &parts[pos[k]*nl+j]
			p.N, p.Value = 1, a.value(u, bx)
		}
	}
}

func (a *rangeView[T]) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		if v := a.value(u, bx); v != nil {
			p := &parts[pos[k]*nl+j]
			p.N, p.Value = 1, v
		}
	}
}

func (a *minMaxStrAcc) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		if a.has[u] {
			p := &parts[pos[k]*nl+j]
			p.N, p.Value = 1, a.value(u, bx)
		}
	}
}

func (a *edgeAcc[T]) fillPartials(users []uint32, pos []int, parts []schemas.Partial, nl, j int, bx *boxer) {
	for k, u := range users {
		st := &a.e[u]
		if !st.has {
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
