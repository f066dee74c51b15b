package schemas

import (
	"fmt"
	"math"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// Expr is a compiled `where` filter or `rule`. It is parsed by the expr
// library (github.com/expr-lang/expr/parser) and type-checked into a small
// tree of [Node] that each executor translates: Eval for Go, SQL for
// ClickHouse.
//
// Semantics, the same in every executor:
//   - int64 arithmetic stays int64 (+, -, *; it wraps on overflow); a float
//     operand makes it float64; `/` always yields float64.
//   - Timestamps take part as their unix millisecond count.
//   - A null operand (only tag values can be null) makes arithmetic null
//     and every comparison false; `x == nil` and `x != nil` test for null.
//   - &&, || and ! take bools; a null bool counts as false.
type Expr struct {
	Source string
	Root   *Node
	// Refs are the names the expression refers to, in first-use order.
	Refs []string

	eval func([]any) any
}

// Op is an operation in a compiled expression.
type Op int

// The operations of the expression language.
const (
	OpLit Op = iota
	OpRef
	OpNot
	OpNeg
	OpAnd
	OpOr
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpIn
	OpContains
	OpStartsWith
	OpEndsWith
	OpIsNull
	OpNotNull
)

// Node is one typed node of a compiled expression.
type Node struct {
	Op   Op
	Type Type
	// Nullable is set when the value can be null (a reference to a
	// nullable tag, or arithmetic over one).
	Nullable bool
	Args     []*Node
	// Lit is the value of OpLit (int64, float64, string or bool) and List
	// the literals of OpIn.
	Lit  any
	List []any
	// Ref and Name identify the field or tag of OpRef.
	Ref  int
	Name string
}

// Symbol is a name an expression can refer to.
type Symbol struct {
	Index    int
	Type     Type
	Nullable bool
}

// Resolver looks up an identifier of an expression.
type Resolver func(name string) (Symbol, bool)

var binaryOps = map[string]Op{
	"==": OpEq, "!=": OpNe, "<": OpLt, "<=": OpLe, ">": OpGt, ">=": OpGe,
	"&&": OpAnd, "and": OpAnd, "||": OpOr, "or": OpOr,
	"+": OpAdd, "-": OpSub, "*": OpMul, "/": OpDiv,
	"in": OpIn, "contains": OpContains, "startsWith": OpStartsWith, "endsWith": OpEndsWith,
}

// CompileExpr parses and type-checks an expression that must yield a bool.
func CompileExpr(src string, resolve Resolver) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %s", src, firstLine(err.Error()))
	}
	c := &exprCompiler{resolve: resolve, seen: map[string]bool{}}
	root, err := c.node(tree.Node)
	if err != nil {
		return nil, fmt.Errorf("in %q: %w", src, err)
	}
	if root.Type != TypeBool {
		return nil, fmt.Errorf("in %q: expression yields %s, want bool", src, root.Type)
	}
	e := &Expr{Source: src, Root: root, Refs: c.refs}
	e.eval = compileEval(root)
	return e, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

type exprCompiler struct {
	resolve Resolver
	refs    []string
	seen    map[string]bool
}

func (c *exprCompiler) node(n ast.Node) (*Node, error) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return &Node{Op: OpLit, Type: TypeInt64, Lit: int64(x.Value)}, nil
	case *ast.FloatNode:
		return &Node{Op: OpLit, Type: TypeFloat64, Lit: x.Value}, nil
	case *ast.StringNode:
		return &Node{Op: OpLit, Type: TypeString, Lit: x.Value}, nil
	case *ast.BoolNode:
		return &Node{Op: OpLit, Type: TypeBool, Lit: x.Value}, nil
	case *ast.IdentifierNode:
		sym, ok := c.resolve(x.Value)
		if !ok {
			return nil, fmt.Errorf("unknown name %q", x.Value)
		}
		if !c.seen[x.Value] {
			c.seen[x.Value] = true
			c.refs = append(c.refs, x.Value)
		}
		return &Node{Op: OpRef, Type: sym.Type, Nullable: sym.Nullable, Ref: sym.Index, Name: x.Value}, nil
	case *ast.UnaryNode:
		return c.unary(x)
	case *ast.BinaryNode:
		return c.binary(x)
	case *ast.NilNode:
		return nil, fmt.Errorf("nil may only be compared with == or !=")
	}
	return nil, fmt.Errorf("unsupported expression %q (the language has literals, names, comparisons, && || !, + - * /, in [...], contains, startsWith, endsWith)", n.String())
}

func (c *exprCompiler) unary(x *ast.UnaryNode) (*Node, error) {
	// Fold negative literals so that -5 is a literal, as in SQL.
	switch lit := x.Node.(type) {
	case *ast.IntegerNode:
		if x.Operator == "-" {
			return &Node{Op: OpLit, Type: TypeInt64, Lit: -int64(lit.Value)}, nil
		}
	case *ast.FloatNode:
		if x.Operator == "-" {
			return &Node{Op: OpLit, Type: TypeFloat64, Lit: -lit.Value}, nil
		}
	}
	arg, err := c.node(x.Node)
	if err != nil {
		return nil, err
	}
	switch x.Operator {
	case "!", "not":
		if arg.Type != TypeBool {
			return nil, fmt.Errorf("%s needs a bool, got %s", x.Operator, arg.Type)
		}
		return &Node{Op: OpNot, Type: TypeBool, Args: []*Node{arg}}, nil
	case "-":
		if !numericLike(arg.Type) {
			return nil, fmt.Errorf("- needs a number, got %s", arg.Type)
		}
		return &Node{Op: OpNeg, Type: arithType(arg.Type, arg.Type), Nullable: arg.Nullable, Args: []*Node{arg}}, nil
	case "+":
		return arg, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", x.Operator)
}

func numericLike(t Type) bool { return t == TypeInt64 || t == TypeFloat64 || t == TypeTimestamp }

func arithType(a, b Type) Type {
	if a == TypeFloat64 || b == TypeFloat64 {
		return TypeFloat64
	}
	return TypeInt64
}

func (c *exprCompiler) binary(x *ast.BinaryNode) (*Node, error) {
	op, ok := binaryOps[x.Operator]
	if !ok {
		return nil, fmt.Errorf("unsupported operator %q", x.Operator)
	}
	// Null tests: x == nil, x != nil.
	_, lnil := x.Left.(*ast.NilNode)
	_, rnil := x.Right.(*ast.NilNode)
	if lnil || rnil {
		if lnil && rnil || (op != OpEq && op != OpNe) {
			return nil, fmt.Errorf("nil may only be compared with == or != against a name")
		}
		other := x.Left
		if lnil {
			other = x.Right
		}
		arg, err := c.node(other)
		if err != nil {
			return nil, err
		}
		nop := OpIsNull
		if op == OpNe {
			nop = OpNotNull
		}
		return &Node{Op: nop, Type: TypeBool, Args: []*Node{arg}}, nil
	}
	if op == OpIn {
		return c.in(x)
	}
	l, err := c.node(x.Left)
	if err != nil {
		return nil, err
	}
	r, err := c.node(x.Right)
	if err != nil {
		return nil, err
	}
	n := &Node{Op: op, Args: []*Node{l, r}}
	switch op {
	case OpAnd, OpOr:
		if l.Type != TypeBool || r.Type != TypeBool {
			return nil, fmt.Errorf("%s needs bools, got %s and %s", x.Operator, l.Type, r.Type)
		}
		n.Type = TypeBool
	case OpAdd, OpSub, OpMul, OpDiv:
		if !numericLike(l.Type) || !numericLike(r.Type) {
			return nil, fmt.Errorf("%s needs numbers, got %s and %s", x.Operator, l.Type, r.Type)
		}
		n.Type = arithType(l.Type, r.Type)
		if op == OpDiv {
			n.Type = TypeFloat64
		}
		n.Nullable = l.Nullable || r.Nullable
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		if !comparable(l.Type, r.Type) {
			return nil, fmt.Errorf("cannot compare %s with %s", l.Type, r.Type)
		}
		if l.Type == TypeBool && op != OpEq && op != OpNe {
			return nil, fmt.Errorf("bools only compare with == and !=")
		}
		n.Type = TypeBool
	case OpContains, OpStartsWith, OpEndsWith:
		if l.Type != TypeString || r.Type != TypeString {
			return nil, fmt.Errorf("%s needs strings, got %s and %s", x.Operator, l.Type, r.Type)
		}
		n.Type = TypeBool
	}
	return n, nil
}

func comparable(a, b Type) bool {
	if numericLike(a) && numericLike(b) {
		return true
	}
	return a == b
}

func (c *exprCompiler) in(x *ast.BinaryNode) (*Node, error) {
	l, err := c.node(x.Left)
	if err != nil {
		return nil, err
	}
	arr, ok := x.Right.(*ast.ArrayNode)
	if !ok {
		return nil, fmt.Errorf("in needs a literal list like [1, 2]")
	}
	if l.Type != TypeInt64 && l.Type != TypeString && l.Type != TypeTimestamp {
		return nil, fmt.Errorf("in needs an int64 or string on the left, got %s", l.Type)
	}
	n := &Node{Op: OpIn, Type: TypeBool, Args: []*Node{l}}
	for _, e := range arr.Nodes {
		lit, err := c.node(e)
		if err != nil {
			return nil, err
		}
		if lit.Op != OpLit || !comparable(l.Type, lit.Type) || lit.Type == TypeFloat64 {
			return nil, fmt.Errorf("in list items must be %s literals", l.Type)
		}
		n.List = append(n.List, lit.Lit)
	}
	if len(n.List) == 0 {
		return nil, fmt.Errorf("in needs a non-empty list")
	}
	return n, nil
}

// Eval evaluates the expression over values by index; it returns the
// bool result, with null counting as false.
func (e *Expr) Eval(values []any) bool {
	b, _ := e.eval(values).(bool)
	return b
}

// compileEval turns a node tree into a Go closure.
func compileEval(n *Node) func([]any) any {
	switch n.Op {
	case OpLit:
		v := n.Lit
		return func([]any) any { return v }
	case OpRef:
		i := n.Ref
		if n.Type == TypeTimestamp {
			return func(vs []any) any {
				if ts, ok := vs[i].(Timestamp); ok {
					return int64(ts)
				}
				return vs[i]
			}
		}
		return func(vs []any) any { return vs[i] }
	case OpIsNull, OpNotNull:
		a := compileEval(n.Args[0])
		want := n.Op == OpIsNull
		return func(vs []any) any { return (a(vs) == nil) == want }
	case OpNot:
		a := compileEval(n.Args[0])
		return func(vs []any) any { b, _ := a(vs).(bool); return !b }
	case OpAnd:
		a, b := compileEval(n.Args[0]), compileEval(n.Args[1])
		return func(vs []any) any {
			x, _ := a(vs).(bool)
			if !x {
				return false
			}
			y, _ := b(vs).(bool)
			return y
		}
	case OpOr:
		a, b := compileEval(n.Args[0]), compileEval(n.Args[1])
		return func(vs []any) any {
			x, _ := a(vs).(bool)
			if x {
				return true
			}
			y, _ := b(vs).(bool)
			return y
		}
	case OpNeg:
		a := compileEval(n.Args[0])
		return func(vs []any) any {
			switch x := a(vs).(type) {
			case int64:
				return -x
			case float64:
				return -x
			}
			return nil
		}
	case OpAdd, OpSub, OpMul, OpDiv:
		return compileArith(n)
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		a, b := compileEval(n.Args[0]), compileEval(n.Args[1])
		op := n.Op
		return func(vs []any) any {
			x, y := a(vs), b(vs)
			if x == nil || y == nil {
				return false
			}
			c := Compare(x, y)
			switch op {
			case OpEq:
				return c == 0
			case OpNe:
				return c != 0
			case OpLt:
				return c < 0
			case OpLe:
				return c <= 0
			case OpGt:
				return c > 0
			default:
				return c >= 0
			}
		}
	case OpIn:
		a := compileEval(n.Args[0])
		list := n.List
		return func(vs []any) any {
			x := a(vs)
			if x == nil {
				return false
			}
			for _, l := range list {
				if Compare(x, l) == 0 {
					return true
				}
			}
			return false
		}
	case OpContains, OpStartsWith, OpEndsWith:
		a, b := compileEval(n.Args[0]), compileEval(n.Args[1])
		f := strings.Contains
		if n.Op == OpStartsWith {
			f = strings.HasPrefix
		} else if n.Op == OpEndsWith {
			f = strings.HasSuffix
		}
		return func(vs []any) any {
			x, ok1 := a(vs).(string)
			y, ok2 := b(vs).(string)
			return ok1 && ok2 && f(x, y)
		}
	}
	panic(fmt.Sprintf("schemas: unknown op %d", n.Op))
}

func compileArith(n *Node) func([]any) any {
	a, b := compileEval(n.Args[0]), compileEval(n.Args[1])
	op := n.Op
	if n.Type == TypeInt64 {
		return func(vs []any) any {
			x, ok1 := a(vs).(int64)
			y, ok2 := b(vs).(int64)
			if !ok1 || !ok2 {
				return nil
			}
			switch op {
			case OpAdd:
				return x + y
			case OpSub:
				return x - y
			default:
				return x * y
			}
		}
	}
	return func(vs []any) any {
		x, ok1 := toFloat(a(vs))
		y, ok2 := toFloat(b(vs))
		if !ok1 || !ok2 {
			return nil
		}
		switch op {
		case OpAdd:
			return x + y
		case OpSub:
			return x - y
		case OpMul:
			return x * y
		default:
			return x / y
		}
	}
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return math.NaN(), false
}
