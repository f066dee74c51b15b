package stream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUserMapSlab: users live in slab slots that removal frees and a
// later add reuses; an entry found before its removal no longer holds
// its key, which is how a lookup racing a removal notices.
func TestUserMapSlab(t *testing.T) {
	m := newUserMap()
	for k := range int64(slabChunk + 10) { // crosses into a second chunk
		m.add(k)
	}
	m.add("s1")
	require.Equal(t, slabChunk+11, m.len())
	require.Len(t, m.chunks, 2)

	old := m.get(int64(7))
	require.NotNil(t, old)
	old.mu.Lock()
	require.True(t, old.holds(int64(7)))
	require.False(t, old.holds(int64(8)))
	require.False(t, old.holds("7"))
	old.mu.Unlock()

	m.remove(old)
	require.Nil(t, m.get(int64(7)))
	require.False(t, old.holds(int64(7)), "a removed entry holds nothing")
	reused := m.add("s2")
	require.Same(t, old, reused, "the freed slot is reused")
	require.False(t, old.holds(int64(7)))
	require.True(t, reused.holds("s2"))
	require.True(t, reused.u.Empty(), "a reused slot starts empty")
	require.Len(t, m.chunks, 2)

	seen := map[any]bool{}
	for en := range m.all {
		seen[en.u.Key()] = true
	}
	require.Len(t, seen, m.len())
	require.False(t, seen[int64(7)])
	require.True(t, seen["s1"] && seen["s2"] && seen[int64(slabChunk+9)])
}
