package state

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, err := Open(dir, "h1", log)
	require.NoError(t, err)
	k1, _ := EncodeKey(nil, schemas.TypeInt64, int64(-5))
	k2, _ := EncodeKey(nil, schemas.TypeInt64, int64(7))
	require.NoError(t, s.Write(&Checkpoint{
		Users:      []UserRecord{{Partition: 1, Key: k2, Value: []byte("b")}, {Partition: 1, Key: k1, Value: []byte("a")}, {Partition: 2, Key: k1, Value: []byte("c")}},
		Partitions: map[int32]Partition{1: {Next: 42, Watermark: 1000}},
	}))
	require.NoError(t, s.Write(&Checkpoint{Users: []UserRecord{{Partition: 2, Key: k1}}})) // delete
	require.NoError(t, s.Close())

	s, err = Open(dir, "h1", log)
	require.NoError(t, err)
	defer s.Close()
	pos, ok, err := s.Partition(1)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Partition{Next: 42, Watermark: 1000}, pos)
	_, ok, err = s.Partition(2)
	require.NoError(t, err)
	require.False(t, ok)
	for _, tc := range []struct {
		p    int32
		keys []any
	}{{1, []any{int64(-5), int64(7)}}, {2, nil}} {
		var keys []any
		require.NoError(t, s.Users(tc.p, func(k, _ []byte) error {
			key, err := DecodeKey(schemas.TypeInt64, k)
			keys = append(keys, key)
			return err
		}))
		require.Equal(t, tc.keys, keys, "partition %d", tc.p)
	}
}

func TestOpenRefusesOtherCatalog(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, err := Open(dir, "h1", log)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(dir, "h2", log)
	require.ErrorIs(t, err, ErrCatalogChanged)
}
