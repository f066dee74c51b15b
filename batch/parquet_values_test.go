package batch

import (
	"github.com/parquet-go/parquet-go"

	"github.com/portrait-dev/portrait/schemas"
)

// value returns the value of column c in row i as a Go value (nil for
// null).
func (g *rowGroup) value(c, i int) any {
	v := &g.vals[c][i]
	if v.IsNull() {
		return nil
	}
	return goValue(g.cols[c].Type, v, g.fields[c])
}

// goValue is a column value as the Go value of its type.
func goValue(t schemas.Type, v *parquet.Value, n parquet.Node) any {
	switch t {
	case schemas.TypeInt64:
		return intOf(v)
	case schemas.TypeTimestamp:
		return schemas.Timestamp(v.Int64() / msDivisor(n))
	case schemas.TypeFloat64:
		return v.Double()
	case schemas.TypeString:
		return string(v.ByteArray())
	case schemas.TypeBool:
		return v.Boolean()
	}
	return nil
}
