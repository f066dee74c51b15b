package chbatch

import (
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/schemas"
)

// cleanupTimeout bounds dropping a staging table after a write.
const cleanupTimeout = 30 * time.Second

// column accumulates one column of a batch insert in the slice type the
// driver's columnar Append takes (pointer slices for Nullable columns,
// pointing into one backing array so a row costs no allocation).
type column interface {
	add(v any) error
	slice() any
}

// newColumn returns a column for values of typ, nullable or not, with room
// for n values.
func newColumn(typ schemas.Type, nullable bool, n int) column {
	switch typ {
	case schemas.TypeInt64:
		return &typedColumn[int64, int64]{nullable: nullable, vals: make([]int64, 0, n), conv: func(v any) (int64, bool) { x, ok := v.(int64); return x, ok }}
	case schemas.TypeTimestamp:
		return &typedColumn[int64, schemas.Timestamp]{nullable: nullable, vals: make([]int64, 0, n), conv: func(v any) (int64, bool) { x, ok := v.(schemas.Timestamp); return int64(x), ok }}
	case schemas.TypeFloat64:
		return &typedColumn[float64, float64]{nullable: nullable, vals: make([]float64, 0, n), conv: func(v any) (float64, bool) { x, ok := v.(float64); return x, ok }}
	case schemas.TypeString:
		return &typedColumn[string, string]{nullable: nullable, vals: make([]string, 0, n), conv: func(v any) (string, bool) { x, ok := v.(string); return x, ok }}
	case schemas.TypeBool:
		return &typedColumn[uint8, bool]{nullable: nullable, vals: make([]uint8, 0, n), conv: func(v any) (uint8, bool) {
			x, ok := v.(bool)
			if x {
				return 1, ok
			}
			return 0, ok
		}}
	}
	panic(fmt.Sprintf("chbatch: no column for %s", typ))
}

// typedColumn holds values of ClickHouse type C read from Go values of
// type G.
type typedColumn[C any, G any] struct {
	nullable bool
	vals     []C
	null     []bool
	conv     func(any) (C, bool)
}

func (c *typedColumn[C, G]) add(v any) error {
	if v == nil {
		if !c.nullable {
			return fmt.Errorf("null value in a column that cannot be null")
		}
		var zero C
		c.vals = append(c.vals, zero)
		c.null = append(c.null, true)
		return nil
	}
	x, ok := c.conv(v)
	if !ok {
		var want G
		return fmt.Errorf("got %T, want %T", v, want)
	}
	c.vals = append(c.vals, x)
	if c.nullable {
		c.null = append(c.null, false)
	}
	return nil
}

func (c *typedColumn[C, G]) slice() any {
	if !c.nullable {
		return c.vals
	}
	ptrs := make([]*C, len(c.vals))
	for i := range c.vals {
		if !c.null[i] {
			ptrs[i] = &c.vals[i]
		}
	}
	return ptrs
}

// scanDest returns a Scan destination for a column of typ and a function
// that converts what was scanned into the Go value portrait uses (nil for
// NULL).
func scanDest(typ schemas.Type, nullable bool) (any, func() any) {
	switch typ {
	case schemas.TypeInt64:
		return scanOf(nullable, func(x int64) any { return x })
	case schemas.TypeTimestamp:
		return scanOf(nullable, func(x int64) any { return schemas.Timestamp(x) })
	case schemas.TypeFloat64:
		return scanOf(nullable, func(x float64) any { return x })
	case schemas.TypeString:
		return scanOf(nullable, func(x string) any { return x })
	case schemas.TypeBool:
		return scanOf(nullable, func(x uint8) any { return x != 0 })
	}
	panic(fmt.Sprintf("chbatch: no scan for %s", typ))
}

func scanOf[C any](nullable bool, conv func(C) any) (any, func() any) {
	if nullable {
		p := new(*C)
		return p, func() any {
			if *p == nil {
				return nil
			}
			return conv(**p)
		}
	}
	p := new(C)
	return p, func() any { return conv(*p) }
}
