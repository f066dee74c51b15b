package local

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// TestStringEq checks the byte-level string comparison against Go's ==,
// on a whole column and on a slice of one (whose offsets do not start at
// zero), with empty and prefix-sharing values.
func TestStringEq(t *testing.T) {
	vals := []string{"pv", "", "buy", "pv", "pvx", "p", "cart", "", "pv"}
	bld := array.NewStringBuilder(memory.DefaultAllocator)
	defer bld.Release()
	bld.AppendValues(vals, nil)
	whole := bld.NewStringArray()
	defer whole.Release()
	sliced := array.NewSlice(whole, 2, 8).(*array.String)
	defer sliced.Release()
	for _, col := range []struct {
		a    *array.String
		vals []string
	}{{whole, vals}, {sliced, vals[2:8]}} {
		for _, lit := range []string{"pv", "", "p", "cart", "fav"} {
			for _, ne := range []bool{false, true} {
				got := evalStringEq(col.a, lit, ne, col.a.Len())
				for i, v := range col.vals {
					require.Equal(t, (v == lit) != ne, got.b[i], "%q == %q (ne %v)", v, lit, ne)
				}
			}
		}
	}
}
