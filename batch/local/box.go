package local

import (
	"unsafe"

	"github.com/portrait-dev/portrait/schemas"
)

// boxer turns typed values into `any` for the partials of the State
// without one heap allocation per value: values are copied into chunks and each interface
// points at its copy. A chunk element is never written again once boxed,
// so the interfaces behave exactly like ordinary boxed values.
type boxer struct {
	i []int64
	f []float64
}

// eface is the layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type     = typeOf(int64(0))
	float64Type   = typeOf(float64(0))
	stringType    = typeOf("")
	timestampType = typeOf(schemas.Timestamp(0))
)

const boxChunk = 4096

func boxIn[T any](chunk *[]T, typ unsafe.Pointer, v T) any {
	if len(*chunk) == cap(*chunk) {
		*chunk = make([]T, 0, boxChunk)
	}
	*chunk = append(*chunk, v)
	return boxAt(typ, unsafe.Pointer(&(*chunk)[len(*chunk)-1]))
}

func (bx *boxer) int64(v int64) any {
	if v >= 0 && v < 256 {
		return v // the runtime boxes small integers without allocating
	}
	return boxIn(&bx.i, int64Type, v)
}

func (bx *boxer) timestamp(v int64) any { return boxIn(&bx.i, timestampType, v) }

func (bx *boxer) float64(v float64) any { return boxIn(&bx.f, float64Type, v) }

// boxAt returns the interface of type typ holding the value at p, which
// must never change.
func boxAt(typ, p unsafe.Pointer) any {
	var out any
	*(*eface)(unsafe.Pointer(&out)) = eface{typ: typ, data: p}
	return out
}

// stringAt boxes the string at p, which must never change.
func (bx *boxer) stringAt(p *string) any { return boxAt(stringType, unsafe.Pointer(p)) }
