package chbatch

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/schemas"
)

// exprSymbols are the names the expression tests use: one of each type,
// nullable (like tags that can be empty) and not (like event fields).
var exprSymbols = []struct {
	name     string
	typ      schemas.Type
	nullable bool
}{
	{"i", schemas.TypeInt64, true},
	{"j", schemas.TypeInt64, false},
	{"f", schemas.TypeFloat64, true},
	{"s", schemas.TypeString, true},
	{"t", schemas.TypeString, false},
	{"b", schemas.TypeBool, true},
	{"c", schemas.TypeBool, false},
	{"ts", schemas.TypeTimestamp, true},
}

// exprRows are the values of exprSymbols the expressions are evaluated on.
var exprRows = [][]any{
	{int64(3), int64(2), 1.5, "ab", "abc", true, true, schemas.Timestamp(1511568000000)},
	{nil, int64(-2), nil, nil, "", nil, false, nil},
	{int64(0), int64(0), 0.0, "", "b", false, false, schemas.Timestamp(1511567999999)},
	{int64(-7), int64(9007199254740993), 2.5, "b", "ab", true, false, schemas.Timestamp(1511568001000)},
	{int64(math.MaxInt64), int64(3), -0.5, "abc", "abc", false, true, schemas.Timestamp(0)},
	{int64(1), int64(math.MinInt64), 1e300, "a", "ba", nil, true, schemas.Timestamp(-5)},
}

var exprSources = []string{
	"i > 3", "i == nil", "i != nil", "j >= -2", "i + j > 0", "i * j == 6", "i - j < 0",
	"i / j > 0.5", "j / 0 > 1", "-j / 0 < 0", "i * 2 < 0", "j * 9223372036854775807 < 0",
	"f < 2.5", "f == 1.5", "f + i > 3", "-i < 0", "-f > -2", "f * 2 >= 3", "(i + j) == nil",
	"j > 9007199254740992.0", "j == 9007199254740992.0", "i > 1e18", "f > 5e-324", "j > -9223372036854775807",
	`s == "ab"`, "s < t", "s >= t", "t != s", `s contains "b"`, `t startsWith "a"`, "t endsWith s",
	`s contains ""`, `t contains s`, `s startsWith t`, `t in ["abc", "", "b"]`, `s in ["a", "ab"]`,
	"b", "!b", "not c", "b == true", "b != false", "b == c", "b && i > 0", "b || j > 0", "c and b", "c or b",
	"!(i > 0)", "not (b and s == nil)", "b == nil", "i in [1, 2, 3]", "j in [-2, 0]",
	"ts > 1511568000000", "ts - 1000 >= 1511567000000", "ts == nil", "ts < i", "ts + 1 > 0", "ts in [0, -5]",
	"ts / 1000 > 1511568000.5", "-ts > 0",
}

func exprResolver(name string) (schemas.Symbol, bool) {
	for i, s := range exprSymbols {
		if s.name == name {
			return schemas.Symbol{Index: i, Type: s.typ, Nullable: s.nullable}, true
		}
	}
	return schemas.Symbol{}, false
}

// TestSQLMatchesEval evaluates every expression in ClickHouse over rows
// with nulls and edge values and compares with schemas.Expr.Eval.
func TestSQLMatchesEval(t *testing.T) {
	c := chtest.Open(t)
	ctx := testContext(t)

	var defs, names []string
	cols := make([]any, 0, len(exprSymbols)+1)
	ids := make([]int64, len(exprRows))
	for i := range ids {
		ids[i] = int64(i)
	}
	cols = append(cols, ids)
	names = append(names, "id")
	defs = append(defs, "`id` Int64")
	for k, s := range exprSymbols {
		col := newColumn(s.typ, s.nullable, len(exprRows))
		for _, row := range exprRows {
			require.NoError(t, col.add(row[k]), "symbol %s", s.name)
		}
		cols = append(cols, col.slice())
		names = append(names, s.name)
		typ := FieldType(s.typ)
		if s.nullable {
			typ = "Nullable(" + typ + ")"
		}
		defs = append(defs, q(s.name)+" "+typ)
	}
	require.NoError(t, c.Exec(ctx, "CREATE TABLE `vals` ("+strings.Join(defs, ", ")+") ENGINE = Memory"))
	require.NoError(t, insertColumns(ctx, c, "vals", names, cols))

	exprs := make([]*schemas.Expr, len(exprSources))
	sqls := make([]string, len(exprSources))
	for i, src := range exprSources {
		e, err := schemas.CompileExpr(src, exprResolver)
		require.NoError(t, err, src)
		exprs[i] = e
		sqls[i] = SQL(e.Root)
	}
	rows, err := c.Conn().Query(ctx, "SELECT "+strings.Join(sqls, ", ")+" FROM `vals` ORDER BY `id`")
	require.NoError(t, err)
	defer rows.Close()
	got := make([]uint8, len(sqls))
	dests := make([]any, len(sqls))
	for i := range got {
		dests[i] = &got[i]
	}
	n := 0
	for ; rows.Next(); n++ {
		require.NoError(t, rows.Scan(dests...))
		for i, e := range exprs {
			want := e.Eval(exprRows[n])
			if (got[i] == 1) != want {
				t.Errorf("row %d %v: %s: Go says %v, ClickHouse %d (SQL %s)", n, exprRows[n], e.Source, want, got[i], sqls[i])
			}
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, len(exprRows), n)
}

// TestFloatLiteralsRoundTrip checks that ClickHouse reads back the exact
// bits of every float literal, subnormals included (18.16 rejects
// subnormal literals as syntax errors).
func TestFloatLiteralsRoundTrip(t *testing.T) {
	c := chtest.Open(t)
	ctx := testContext(t)
	xs := []float64{0, math.Copysign(0, -1), 0.1, 0.3, 1.0 / 3, 50.5, 1e-7, 1e6, 1e21, 1e300, -1e-300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 2.225073858507201e-308, -4.9e-320,
		9007199254740993, 123456.789}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		xs = append(xs, math.Float64frombits(r.Uint64()&^(0x7ff<<52)|uint64(r.IntN(0x7fe))<<52))
	}
	lits := make([]string, len(xs))
	for i, x := range xs {
		lits[i] = floatLiteral(x)
	}
	got := make([]float64, len(xs))
	dests := make([]any, len(xs))
	for i := range got {
		dests[i] = &got[i]
	}
	require.NoError(t, c.Conn().QueryRow(ctx, "SELECT "+strings.Join(lits, ", ")).Scan(dests...))
	for i, x := range xs {
		require.Equal(t, math.Float64bits(x), math.Float64bits(got[i]), "literal %s of %v read back as %v", lits[i], x, got[i])
	}
}

func TestSQLText(t *testing.T) {
	tests := []struct{ src, want string }{
		{`i > 3`, "ifNull((`i` > toInt64(3)), 0)"},
		{`j > 2.5`, "(toFloat64(`j`) > toFloat64(2.5))"},
		{`i == nil`, "isNull(`i`)"},
		{`b && c`, "(ifNull(`b`, 0) AND `c`)"},
		{`!b`, "(NOT ifNull(`b`, 0))"},
		{`j / 2 > 1`, "((toFloat64(`j`) / toFloat64(toInt64(2))) > toFloat64(toInt64(1)))"},
		{`t in ["a", "b'c"]`, "(`t` IN ('a', 'b\\'c'))"},
		{`s contains "x"`, "ifNull((position(`s`, 'x') > 0), 0)"},
		{`t startsWith "x"`, "startsWith(`t`, 'x')"},
		{`c == true`, "(`c` = toUInt8(1))"},
		{`j > -9223372036854775807 - 1`, "(`j` > (toInt64(-9223372036854775807) - toInt64(1)))"},
		{`f > 5e-324`, "ifNull((`f` > (toFloat64(2.0501330894674953e-143) / toFloat64(4.149515568880993e+180))), 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := schemas.CompileExpr(tt.src, exprResolver)
			require.NoError(t, err)
			require.Equal(t, tt.want, SQL(e.Root))
		})
	}
	require.Equal(t, "(toInt64(-9223372036854775807) - toInt64(1))", intLiteral(math.MinInt64))
	require.Equal(t, "toFloat64(1.0)", floatLiteral(1))
	require.Equal(t, "toFloat64(-0.0)", floatLiteral(math.Copysign(0, -1)))
	require.Equal(t, "toFloat64(1e+21)", floatLiteral(1e21))
	require.Equal(t, "toUInt8(1)", literal(true))
}
