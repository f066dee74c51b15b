package local

import (
	"github.com/portrait-dev/portrait/schemas"
)

// rangeAcc keeps a min and a max tag over the same field and selection in
// one struct per user, so that an event touches one cache line for both
// (first_seen/last_seen pairs are common). Each tag sees it through a
// rangeView; only the min view aggregates.
type rangeAcc[T int64 | float64] struct {
	field int
	v     userSlots[rangeSlot[T]]
}

type rangeSlot[T int64 | float64] struct {
	lo, hi       T
	hasLo, hasHi bool
}

func (a *rangeAcc[T]) grow(n int) { a.v.grow(n) }

func (a *rangeAcc[T]) add(b *batch, sel []int32, users []uint32) error {
	c, err := b.col(a.field)
	if err != nil {
		return err
	}
	xs := slice[T](c)
	base, stride := a.v.view()
	for _, r := range sel {
		st, x := slotAt[rangeSlot[T]](base, stride, users[r]), xs[r]
		if !st.hasLo || x < st.lo {
			st.lo, st.hasLo = x, true
		}
		if !st.hasHi || x > st.hi {
			st.hi, st.hasHi = x, true
		}
	}
	return nil
}

// rangeView is the min (max false) or max tag of a rangeAcc.
type rangeView[T int64 | float64] struct {
	r   *rangeAcc[T]
	max bool
}

func (a *rangeView[T]) grow(n int) { a.r.grow(n) }

func (a *rangeView[T]) add(b *batch, sel []int32, users []uint32) error {
	if a.max {
		return nil // the min view aggregated the selection for both
	}
	return a.r.add(b, sel, users)
}

func (a *rangeView[T]) get(u uint32) (T, bool) {
	st := a.r.v.at(u)
	if a.max {
		return st.hi, st.hasHi
	}
	return st.lo, st.hasLo
}

func (a *rangeView[T]) merge(u uint32, p schemas.Partial) error {
	if p.N == 0 || p.Value == nil {
		return nil
	}
	x, err := unboxAs[T](p.Value)
	if err != nil {
		return err
	}
	st := a.r.v.at(u)
	if a.max {
		if !st.hasHi || x > st.hi {
			st.hi, st.hasHi = x, true
		}
		return nil
	}
	if !st.hasLo || x < st.lo {
		st.lo, st.hasLo = x, true
	}
	return nil
}

// fuseRanges replaces every min tag and max tag of the same numeric field
// in the same group by the two views of one rangeAcc.
func fuseRanges(cat *schemas.Catalog, groups []group, accs []acc) {
	for _, g := range groups {
		for _, i := range g.tags {
			ti := &cat.Tags[i]
			if ti.Agg != schemas.AggMin {
				continue
			}
		pair:
			for _, j := range g.tags {
				tj := &cat.Tags[j]
				if tj.Agg != schemas.AggMax || tj.Of != ti.Of {
					continue
				}
				switch accs[i].(type) {
				case *minMaxAcc[int64]:
					if _, ok := accs[j].(*minMaxAcc[int64]); ok {
						r := &rangeAcc[int64]{field: ti.Of}
						accs[i], accs[j] = &rangeView[int64]{r: r}, &rangeView[int64]{r: r, max: true}
						break pair
					}
				case *minMaxAcc[float64]:
					if _, ok := accs[j].(*minMaxAcc[float64]); ok {
						r := &rangeAcc[float64]{field: ti.Of}
						accs[i], accs[j] = &rangeView[float64]{r: r}, &rangeView[float64]{r: r, max: true}
						break pair
					}
				}
			}
		}
	}
}
