package local

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestStringEq checks the string comparison of filters against Go's ==,
// on a whole column, on a slice of one (whose offsets do not start at
// zero) and on a dictionary array, with empty and prefix-sharing values.
func TestStringEq(t *testing.T) {
	vals := []string{"pv", "", "buy", "pv", "pvx", "p", "cart", "", "pv"}
	bld := array.NewStringBuilder(memory.DefaultAllocator)
	defer bld.Release()
	bld.AppendValues(vals, nil)
	whole := bld.NewStringArray()
	defer whole.Release()
	sliced := array.NewSlice(whole, 2, 8).(*array.String)
	defer sliced.Release()
	db := array.NewDictionaryBuilder(memory.DefaultAllocator, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	defer db.Release()
	for _, v := range vals {
		require.NoError(t, db.AppendString(v))
	}
	dict := db.NewArray()
	defer dict.Release()
	cat := &schemas.Catalog{Fields: []schemas.Field{{Name: "s", Type: schemas.TypeString}}}
	for _, col := range []struct {
		name string
		a    arrow.Array
		vals []string
	}{{"whole", whole, vals}, {"sliced", sliced, vals[2:8]}, {"dictionary", dict, vals}} {
		t.Run(col.name, func(t *testing.T) {
			sch := arrow.NewSchema([]arrow.Field{{Name: "s", Type: col.a.DataType()}}, nil)
			rec := array.NewRecordBatch(sch, []arrow.Array{col.a}, int64(col.a.Len()))
			defer rec.Release()
			b := &batch{rec: rec, n: col.a.Len(), cat: cat, fieldCol: []int{0}}
			for _, lit := range []string{"pv", "", "p", "cart", "fav"} {
				for _, ne := range []bool{false, true} {
					op := schemas.OpEq
					if ne {
						op = schemas.OpNe
					}
					n := &schemas.Node{Op: op, Args: []*schemas.Node{{Op: schemas.OpRef, Ref: 0}, {Op: schemas.OpLit, Lit: lit}}}
					f, l, ok := stringColumnEq(b, n)
					require.True(t, ok)
					got := evalStringEq(b, f, l, ne)
					for i, v := range col.vals {
						require.Equal(t, (v == lit) != ne, got.b[i], "%q == %q (ne %v)", v, lit, ne)
					}
				}
			}
		})
	}
}
