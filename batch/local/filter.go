package local

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/portrait-dev/portrait/schemas"
)

// evalNode evaluates a compiled where-filter node over a whole batch,
// column by column: each operation runs one tight loop over typed slices,
// so no value is boxed. Event fields are never null, so the null tests
// fold to constants.
func evalNode(b *batch, n *schemas.Node) (*vec, error) {
	switch n.Op {
	case schemas.OpLit:
		return litVec(n.Lit)
	case schemas.OpRef:
		return b.col(n.Ref)
	case schemas.OpIsNull:
		return &vec{typ: schemas.TypeBool, lit: true, lb: false}, nil
	case schemas.OpNotNull:
		return &vec{typ: schemas.TypeBool, lit: true, lb: true}, nil
	case schemas.OpNot:
		a, err := evalNode(b, n.Args[0])
		if err != nil {
			return nil, err
		}
		if a.lit {
			return &vec{typ: schemas.TypeBool, lit: true, lb: !a.lb}, nil
		}
		out := make([]bool, b.n)
		for i, x := range a.b {
			out[i] = !x
		}
		return &vec{typ: schemas.TypeBool, b: out}, nil
	case schemas.OpAnd, schemas.OpOr:
		return evalLogic(b, n)
	case schemas.OpNeg:
		a, err := evalNode(b, n.Args[0])
		if err != nil {
			return nil, err
		}
		return negVec(b.n, a), nil
	case schemas.OpAdd, schemas.OpSub, schemas.OpMul, schemas.OpDiv:
		return evalArith(b, n)
	case schemas.OpEq, schemas.OpNe, schemas.OpLt, schemas.OpLe, schemas.OpGt, schemas.OpGe:
		return evalCompare(b, n)
	case schemas.OpIn:
		return evalIn(b, n)
	case schemas.OpContains, schemas.OpStartsWith, schemas.OpEndsWith:
		return evalStringFunc(b, n)
	}
	return nil, fmt.Errorf("unsupported operation %d in where filter", n.Op)
}

func litVec(v any) (*vec, error) {
	switch x := v.(type) {
	case int64:
		return &vec{typ: schemas.TypeInt64, lit: true, li: x}, nil
	case schemas.Timestamp:
		return &vec{typ: schemas.TypeInt64, lit: true, li: int64(x)}, nil
	case float64:
		return &vec{typ: schemas.TypeFloat64, lit: true, lf: x}, nil
	case string:
		return &vec{typ: schemas.TypeString, lit: true, ls: x}, nil
	case bool:
		return &vec{typ: schemas.TypeBool, lit: true, lb: x}, nil
	}
	return nil, fmt.Errorf("unsupported literal %v (%T)", v, v)
}

// mask returns a bool vec as a slice of n flags.
func (v *vec) mask(n int) []bool {
	if !v.lit {
		return v.b
	}
	out := make([]bool, n)
	if v.lb {
		for i := range out {
			out[i] = true
		}
	}
	return out
}

func evalLogic(b *batch, n *schemas.Node) (*vec, error) {
	and := n.Op == schemas.OpAnd
	l, err := evalNode(b, n.Args[0])
	if err != nil {
		return nil, err
	}
	if l.lit && l.lb != and { // false && x, true || x
		return &vec{typ: schemas.TypeBool, lit: true, lb: l.lb}, nil
	}
	r, err := evalNode(b, n.Args[1])
	if err != nil {
		return nil, err
	}
	if l.lit { // true && r, false || r
		return r, nil
	}
	if r.lit {
		if r.lb == and {
			return l, nil
		}
		return &vec{typ: schemas.TypeBool, lit: true, lb: r.lb}, nil
	}
	out := make([]bool, b.n)
	if and {
		for i := range out {
			out[i] = l.b[i] && r.b[i]
		}
	} else {
		for i := range out {
			out[i] = l.b[i] || r.b[i]
		}
	}
	return &vec{typ: schemas.TypeBool, b: out}, nil
}

func negVec(n int, a *vec) *vec {
	if a.typ == schemas.TypeFloat64 {
		if a.lit {
			return &vec{typ: a.typ, lit: true, lf: -a.lf}
		}
		out := make([]float64, n)
		for i, x := range a.f {
			out[i] = -x
		}
		return &vec{typ: a.typ, f: out}
	}
	if a.lit {
		return &vec{typ: schemas.TypeInt64, lit: true, li: -a.li}
	}
	out := make([]int64, n)
	for i, x := range a.i {
		out[i] = -x
	}
	return &vec{typ: schemas.TypeInt64, i: out}
}

// floats returns a numeric vec as float64 values (converting int64).
func (v *vec) floats(n int) *vec {
	if v.typ == schemas.TypeFloat64 {
		return v
	}
	if v.lit {
		return &vec{typ: schemas.TypeFloat64, lit: true, lf: float64(v.li)}
	}
	out := make([]float64, n)
	for i, x := range v.i {
		out[i] = float64(x)
	}
	return &vec{typ: schemas.TypeFloat64, f: out}
}

// evalArgs evaluates both operands of a binary node.
func evalArgs(b *batch, n *schemas.Node) (l, r *vec, err error) {
	if l, err = evalNode(b, n.Args[0]); err != nil {
		return nil, nil, err
	}
	r, err = evalNode(b, n.Args[1])
	return l, r, err
}

func evalArith(b *batch, n *schemas.Node) (*vec, error) {
	l, r, err := evalArgs(b, n)
	if err != nil {
		return nil, err
	}
	if n.Type == schemas.TypeInt64 {
		return arith(n.Op, b.n, l.lit, r.lit, l.i, r.i, l.li, r.li, schemas.TypeInt64), nil
	}
	l, r = l.floats(b.n), r.floats(b.n)
	return arith(n.Op, b.n, l.lit, r.lit, l.f, r.f, l.lf, r.lf, schemas.TypeFloat64), nil
}

func arith[T int64 | float64](op schemas.Op, n int, llit, rlit bool, ls, rs []T, lv, rv T, typ schemas.Type) *vec {
	f := func(x, y T) T {
		switch op {
		case schemas.OpAdd:
			return x + y
		case schemas.OpSub:
			return x - y
		case schemas.OpMul:
			return x * y
		default:
			return x / y
		}
	}
	wrap := func(lit bool, s []T, v T) *vec {
		out := &vec{typ: typ, lit: lit}
		switch x := any(s).(type) {
		case []int64:
			out.i, out.li = x, any(v).(int64)
		case []float64:
			out.f, out.lf = x, any(v).(float64)
		}
		return out
	}
	if llit && rlit {
		return wrap(true, nil, f(lv, rv))
	}
	out := make([]T, n)
	switch {
	case llit:
		for i := range out {
			out[i] = f(lv, rs[i])
		}
	case rlit:
		for i := range out {
			out[i] = f(ls[i], rv)
		}
	default:
		for i := range out {
			out[i] = f(ls[i], rs[i])
		}
	}
	return wrap(false, out, 0)
}

// stringColumnEq recognizes `field == "lit"` and `field != "lit"` (either
// way round) on a string field held as a plain Arrow string column or a
// dictionary array, the usual filter on an enum: it is evaluated on the
// column's bytes, without materializing the field (see evalStringEq).
func stringColumnEq(b *batch, n *schemas.Node) (field int, lit string, ok bool) {
	if (n.Op != schemas.OpEq && n.Op != schemas.OpNe) || len(n.Args) != 2 {
		return 0, "", false
	}
	ref, l := n.Args[0], n.Args[1]
	if ref.Op != schemas.OpRef {
		ref, l = l, ref
	}
	if ref.Op != schemas.OpRef || l.Op != schemas.OpLit || b.cat.Fields[ref.Ref].Type != schemas.TypeString {
		return 0, "", false
	}
	x, ok := l.Lit.(string)
	if !ok {
		return 0, "", false
	}
	if _, _, ok := b.dictionary(ref.Ref); ok {
		return ref.Ref, x, true
	}
	a, ok := b.rec.Column(b.fieldCol[ref.Ref]).(*array.String)
	if !ok || a.NullN() > 0 {
		return 0, "", false
	}
	return ref.Ref, x, true
}

// evalStringEq compares every value of string field f with lit (as
// stringColumnEq found it): a dictionary's values once each, then every
// row by its index; a plain column by length (from the offsets) first,
// bytes only when the lengths match.
func evalStringEq(b *batch, f int, lit string, ne bool) *vec {
	out := make([]bool, b.n)
	if idx, dict, ok := b.dictionary(f); ok {
		eq := make([]bool, dict.Len())
		for j := range eq {
			eq[j] = (dict.Value(j) == lit) != ne
		}
		for i, k := range idx {
			out[i] = eq[k]
		}
		return &vec{typ: schemas.TypeBool, b: out}
	}
	a := b.rec.Column(b.fieldCol[f]).(*array.String)
	offs, data := a.ValueOffsets(), a.ValueBytes()
	// ValueBytes starts at the first value's offset.
	base := offs[0]
	l := int32(len(lit))
	for i := range out {
		lo, hi := offs[i], offs[i+1]
		out[i] = (hi-lo == l && string(data[lo-base:hi-base]) == lit) != ne
	}
	return &vec{typ: schemas.TypeBool, b: out}
}

func evalCompare(b *batch, n *schemas.Node) (*vec, error) {
	if f, lit, ok := stringColumnEq(b, n); ok {
		return evalStringEq(b, f, lit, n.Op == schemas.OpNe), nil
	}
	l, r, err := evalArgs(b, n)
	if err != nil {
		return nil, err
	}
	op := n.Op
	var res *vec
	switch {
	case l.typ == schemas.TypeString:
		res = compare(op, b.n, l.lit, r.lit, l.s, r.s, l.ls, r.ls)
	case l.typ == schemas.TypeBool:
		// Only == and != compare bools: compare them as 0/1.
		li, ri := boolInts(b.n, l), boolInts(b.n, r)
		res = compare(op, b.n, li.lit, ri.lit, li.i, ri.i, li.li, ri.li)
	case l.typ == schemas.TypeFloat64 || r.typ == schemas.TypeFloat64:
		l, r = l.floats(b.n), r.floats(b.n)
		res = compare(op, b.n, l.lit, r.lit, l.f, r.f, l.lf, r.lf)
	default:
		res = compare(op, b.n, l.lit, r.lit, l.i, r.i, l.li, r.li)
	}
	return res, nil
}

func boolInts(n int, v *vec) *vec {
	if v.lit {
		out := &vec{typ: schemas.TypeInt64, lit: true}
		if v.lb {
			out.li = 1
		}
		return out
	}
	out := make([]int64, n)
	for i, x := range v.b {
		if x {
			out[i] = 1
		}
	}
	return &vec{typ: schemas.TypeInt64, i: out}
}

// compare runs one comparison loop; the switch on the operator sits
// outside the loops so each loop is a plain typed comparison.
func compare[T cmp.Ordered](op schemas.Op, n int, llit, rlit bool, ls, rs []T, lv, rv T) *vec {
	if llit && rlit {
		return &vec{typ: schemas.TypeBool, lit: true, lb: cmpResult(op, cmp.Compare(lv, rv))}
	}
	if llit { // lit op x  ==  x flip(op) lit
		return compare(flip(op), n, false, true, rs, nil, rv, lv)
	}
	out := make([]bool, n)
	if rlit {
		switch op {
		case schemas.OpEq:
			for i, x := range ls {
				out[i] = x == rv
			}
		case schemas.OpNe:
			for i, x := range ls {
				out[i] = x != rv
			}
		case schemas.OpLt:
			for i, x := range ls {
				out[i] = x < rv
			}
		case schemas.OpLe:
			for i, x := range ls {
				out[i] = x <= rv
			}
		case schemas.OpGt:
			for i, x := range ls {
				out[i] = x > rv
			}
		default:
			for i, x := range ls {
				out[i] = x >= rv
			}
		}
		return &vec{typ: schemas.TypeBool, b: out}
	}
	switch op {
	case schemas.OpEq:
		for i, x := range ls {
			out[i] = x == rs[i]
		}
	case schemas.OpNe:
		for i, x := range ls {
			out[i] = x != rs[i]
		}
	case schemas.OpLt:
		for i, x := range ls {
			out[i] = x < rs[i]
		}
	case schemas.OpLe:
		for i, x := range ls {
			out[i] = x <= rs[i]
		}
	case schemas.OpGt:
		for i, x := range ls {
			out[i] = x > rs[i]
		}
	default:
		for i, x := range ls {
			out[i] = x >= rs[i]
		}
	}
	return &vec{typ: schemas.TypeBool, b: out}
}

func cmpResult(op schemas.Op, c int) bool {
	switch op {
	case schemas.OpEq:
		return c == 0
	case schemas.OpNe:
		return c != 0
	case schemas.OpLt:
		return c < 0
	case schemas.OpLe:
		return c <= 0
	case schemas.OpGt:
		return c > 0
	}
	return c >= 0
}

func flip(op schemas.Op) schemas.Op {
	switch op {
	case schemas.OpLt:
		return schemas.OpGt
	case schemas.OpLe:
		return schemas.OpGe
	case schemas.OpGt:
		return schemas.OpLt
	case schemas.OpGe:
		return schemas.OpLe
	}
	return op
}

func evalIn(b *batch, n *schemas.Node) (*vec, error) {
	l, err := evalNode(b, n.Args[0])
	if err != nil {
		return nil, err
	}
	if l.typ == schemas.TypeString {
		list := make([]string, 0, len(n.List))
		for _, x := range n.List {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("in list item %v is not a string", x)
			}
			list = append(list, s)
		}
		return inList(b.n, l.lit, l.s, l.ls, list), nil
	}
	list := make([]int64, 0, len(n.List))
	for _, x := range n.List {
		switch v := x.(type) {
		case int64:
			list = append(list, v)
		case schemas.Timestamp:
			list = append(list, int64(v))
		default:
			return nil, fmt.Errorf("in list item %v is not an int64", x)
		}
	}
	return inList(b.n, l.lit, l.i, l.li, list), nil
}

func inList[T comparable](n int, lit bool, xs []T, lv T, list []T) *vec {
	has := func(x T) bool {
		for _, y := range list {
			if x == y {
				return true
			}
		}
		return false
	}
	if lit {
		return &vec{typ: schemas.TypeBool, lit: true, lb: has(lv)}
	}
	out := make([]bool, n)
	for i, x := range xs {
		out[i] = has(x)
	}
	return &vec{typ: schemas.TypeBool, b: out}
}

func evalStringFunc(b *batch, n *schemas.Node) (*vec, error) {
	l, r, err := evalArgs(b, n)
	if err != nil {
		return nil, err
	}
	f := strings.Contains
	switch n.Op {
	case schemas.OpStartsWith:
		f = strings.HasPrefix
	case schemas.OpEndsWith:
		f = strings.HasSuffix
	}
	if l.lit && r.lit {
		return &vec{typ: schemas.TypeBool, lit: true, lb: f(l.ls, r.ls)}, nil
	}
	out := make([]bool, b.n)
	for i := range out {
		x, y := l.ls, r.ls
		if !l.lit {
			x = l.s[i]
		}
		if !r.lit {
			y = r.s[i]
		}
		out[i] = f(x, y)
	}
	return &vec{typ: schemas.TypeBool, b: out}, nil
}
