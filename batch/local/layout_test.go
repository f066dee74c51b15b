package local

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestSlotSizes keeps the per-user slots that every event touches at
// sizes that divide a cache line, so that no slot straddles two.
func TestSlotSizes(t *testing.T) {
	require.EqualValues(t, 32, unsafe.Sizeof(edgeSlot[int64]{}))
	require.EqualValues(t, 32, unsafe.Sizeof(edgeSlot[float64]{}))
	require.EqualValues(t, 32, unsafe.Sizeof(edgeSlot[bool]{}))
}
