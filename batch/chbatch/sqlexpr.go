package chbatch

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// SQL translates a compiled where filter or rule to a ClickHouse boolean
// expression (UInt8, never NULL) with the semantics of schemas.Expr: a name
// becomes its quoted column, a comparison with a null operand is false,
// `x == nil` tests for null, and a null bool counts as false in && || !.
func SQL(n *schemas.Node) string {
	return exprSQL(n, func(r *schemas.Node) string { return q(r.Name) })
}

// exprSQL translates a bool expression; ref renders a name (rules inline
// the rules they refer to through it).
func exprSQL(n *schemas.Node, ref func(*schemas.Node) string) string {
	t := sqlTranslator{ref: ref}
	return t.boolean(n)
}

type sqlTranslator struct {
	ref func(*schemas.Node) string
}

// boolean renders a bool-typed node as a non-null UInt8: a nullable bool
// (a reference to a bool tag that can be empty) counts as false.
func (t sqlTranslator) boolean(n *schemas.Node) string {
	s := t.node(n)
	if n.Nullable {
		return "ifNull(" + s + ", 0)"
	}
	return s
}

// node renders any node; the result is Nullable exactly when n.Nullable.
func (t sqlTranslator) node(n *schemas.Node) string {
	switch n.Op {
	case schemas.OpLit:
		return literal(n.Lit)
	case schemas.OpRef:
		return t.ref(n)
	case schemas.OpNot:
		return "(NOT " + t.boolean(n.Args[0]) + ")"
	case schemas.OpAnd:
		return "(" + t.boolean(n.Args[0]) + " AND " + t.boolean(n.Args[1]) + ")"
	case schemas.OpOr:
		return "(" + t.boolean(n.Args[0]) + " OR " + t.boolean(n.Args[1]) + ")"
	case schemas.OpIsNull:
		return "isNull(" + t.node(n.Args[0]) + ")"
	case schemas.OpNotNull:
		return "isNotNull(" + t.node(n.Args[0]) + ")"
	case schemas.OpNeg:
		return "negate(" + t.number(n.Args[0], n.Type) + ")"
	case schemas.OpAdd, schemas.OpSub, schemas.OpMul, schemas.OpDiv:
		// Int64 op Int64 stays Int64 and wraps on overflow in ClickHouse as
		// in Go; a float operand converts the other first, as Go does.
		// `/` always divides as Float64 (x/0 is ±inf or nan in both).
		typ := n.Type
		return "(" + t.number(n.Args[0], typ) + " " + arithOps[n.Op] + " " + t.number(n.Args[1], typ) + ")"
	case schemas.OpEq, schemas.OpNe, schemas.OpLt, schemas.OpLe, schemas.OpGt, schemas.OpGe:
		l, r := n.Args[0], n.Args[1]
		// Go compares an int64 with a float64 as float64(int); ClickHouse
		// compares them exactly (9007199254740993 > 9007199254740992.0 is
		// true there, false in Go), so convert explicitly.
		typ := l.Type
		if l.Type == schemas.TypeFloat64 || r.Type == schemas.TypeFloat64 {
			typ = schemas.TypeFloat64
		}
		s := "(" + t.operand(l, typ) + " " + cmpOps[n.Op] + " " + t.operand(r, typ) + ")"
		return nullFalse(s, l.Nullable || r.Nullable)
	case schemas.OpIn:
		x := n.Args[0]
		items := make([]string, len(n.List))
		for i, v := range n.List {
			items[i] = literal(v)
		}
		return nullFalse("("+t.node(x)+" IN ("+strings.Join(items, ", ")+"))", x.Nullable)
	case schemas.OpContains, schemas.OpStartsWith, schemas.OpEndsWith:
		// position, startsWith and endsWith all exist on 18.16 and take
		// non-constant needles there; they compare bytes like Go's strings
		// functions, and an empty needle matches (position(s, '') = 1).
		a, b := t.node(n.Args[0]), t.node(n.Args[1])
		var s string
		switch n.Op {
		case schemas.OpContains:
			s = "(position(" + a + ", " + b + ") > 0)"
		case schemas.OpStartsWith:
			s = "startsWith(" + a + ", " + b + ")"
		default:
			s = "endsWith(" + a + ", " + b + ")"
		}
		return nullFalse(s, n.Args[0].Nullable || n.Args[1].Nullable)
	}
	panic(fmt.Sprintf("chbatch: unknown expression op %d", n.Op))
}

// number renders an arithmetic operand converted to the operation's type.
func (t sqlTranslator) number(n *schemas.Node, typ schemas.Type) string {
	if typ == schemas.TypeFloat64 && n.Type != schemas.TypeFloat64 {
		return "toFloat64(" + t.node(n) + ")"
	}
	return t.node(n)
}

// operand renders a comparison operand; numbers are converted to the
// comparison's type (timestamps compare as their Int64 milliseconds).
func (t sqlTranslator) operand(n *schemas.Node, typ schemas.Type) string {
	if typ == schemas.TypeFloat64 {
		return t.number(n, typ)
	}
	return t.node(n)
}

// nullFalse makes a comparison over a nullable operand false instead of
// NULL.
func nullFalse(s string, nullable bool) string {
	if nullable {
		return "ifNull(" + s + ", 0)"
	}
	return s
}

var arithOps = map[schemas.Op]string{schemas.OpAdd: "+", schemas.OpSub: "-", schemas.OpMul: "*", schemas.OpDiv: "/"}

var cmpOps = map[schemas.Op]string{
	schemas.OpEq: "=", schemas.OpNe: "!=", schemas.OpLt: "<", schemas.OpLe: "<=", schemas.OpGt: ">", schemas.OpGe: ">=",
}

// literal renders a constant of an expression with its exact type.
func literal(v any) string {
	switch x := v.(type) {
	case int64:
		return intLiteral(x)
	case schemas.Timestamp:
		return intLiteral(int64(x))
	case float64:
		return floatLiteral(x)
	case string:
		return clickhouse.QuoteString(x)
	case bool:
		if x {
			return "toUInt8(1)"
		}
		return "toUInt8(0)"
	}
	panic(fmt.Sprintf("chbatch: unsupported literal %T", v))
}

func intLiteral(x int64) string {
	if x == math.MinInt64 {
		// 9223372036854775808 does not fit the literal's negation.
		return "(toInt64(-9223372036854775807) - toInt64(1))"
	}
	return "toInt64(" + strconv.FormatInt(x, 10) + ")"
}

// two600 is 2^600, exact as a float64 and as its shortest decimal form.
var two600 = math.Ldexp(1, 600)

// floatLiteral renders a finite float64 so that ClickHouse reads back the
// same bits. The shortest round-trip decimal form works, except that the
// 18.16 parser rejects subnormal literals (5e-324 is a syntax error there):
// those are written as a normal number divided by 2^600, exact in IEEE
// arithmetic because the result is representable.
func floatLiteral(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		panic(fmt.Sprintf("chbatch: non-finite float literal %v", x))
	}
	if x != 0 && math.Abs(x) < 0x1p-1022 {
		return "(toFloat64(" + fmtFloat(x*two600) + ") / toFloat64(" + fmtFloat(two600) + "))"
	}
	return "toFloat64(" + fmtFloat(x) + ")"
}

func fmtFloat(x float64) string {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIn") {
		s += ".0"
	}
	return s
}
