package state

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestDriftMarksAndPartitions(t *testing.T) {
	s, err := Open(t.TempDir(), "h1", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s.Close()
	k1, _ := EncodeKey(nil, schemas.TypeInt64, int64(-5))
	k2, _ := EncodeKey(nil, schemas.TypeInt64, int64(7))
	require.NoError(t, s.Write(&Checkpoint{
		Partitions: map[int32]Partition{3: {Next: 1}, 0: {Next: 9}},
		Drift: []DriftRecord{
			{Partition: 3, Cause: 'l', Key: k1, Value: []byte{1}},
			{Partition: 3, Cause: 'u', Key: k2, Value: []byte{2}},
			{Partition: 4, Cause: 'l', Key: k2, Value: []byte{3}},
		},
	}))
	require.NoError(t, s.Write(&Checkpoint{Drift: []DriftRecord{{Partition: 3, Cause: 'u', Key: k2}}})) // delete

	parts, err := s.Partitions()
	require.NoError(t, err)
	require.Equal(t, []int32{0, 3}, parts)

	type mark struct {
		cause byte
		key   any
		value []byte
	}
	read := func(p int32) []mark {
		var out []mark
		require.NoError(t, s.Drift(p, func(cause byte, k, v []byte) error {
			key, err := DecodeKey(schemas.TypeInt64, k)
			require.NoError(t, err)
			out = append(out, mark{cause, key, append([]byte(nil), v...)})
			return nil
		}))
		return out
	}
	require.Equal(t, []mark{{'l', int64(-5), []byte{1}}}, read(3))
	require.Equal(t, []mark{{'l', int64(7), []byte{3}}}, read(4))
	require.Empty(t, read(0))
	_, ok, err := s.Partition(4)
	require.NoError(t, err)
	require.False(t, ok, "drift keys are not partition positions")
}
