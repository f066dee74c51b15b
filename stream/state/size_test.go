package state

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestWriteSize checks the sizes behind the checkpoint-size histogram and
// the state-bytes gauge: a checkpoint's batch grows with what it writes
// and covers at least its keys and values, and the disk usage grows once
// big values were written.
func TestWriteSize(t *testing.T) {
	s, err := Open(t.TempDir(), "h1", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	before := s.DiskUsage()
	require.Positive(t, before, "the catalog hash and the WAL")

	k, _ := EncodeKey(nil, schemas.TypeInt64, int64(1))
	tests := []struct {
		name  string
		value []byte
	}{
		{"small", []byte("v")},
		{"1 KiB", bytes.Repeat([]byte("x"), 1024)},
		{"1 MiB", bytes.Repeat([]byte("y"), 1<<20)},
	}
	prev := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.WriteSize(&Checkpoint{
				Users:      []UserRecord{{Partition: 1, Key: k, Part: []byte("p"), Value: tt.value}},
				Partitions: map[int32]Partition{1: {Next: 42, Watermark: 1000}},
			})
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, len(k)+1+len(tt.value))
			require.Greater(t, n, prev)
			prev = n
		})
	}
	require.Greater(t, s.DiskUsage(), before+1<<20, "the 1 MiB value is on disk (in the WAL)")
}
