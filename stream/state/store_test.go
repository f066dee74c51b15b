package state

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
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
	a, b := []byte("a"), []byte("b1")
	require.NoError(t, s.Write(&Checkpoint{
		Users: []UserRecord{
			{Partition: 1, Key: k2, Part: b, Value: []byte("k2b")},
			{Partition: 1, Key: k1, Part: b, Value: []byte("k1b")},
			{Partition: 1, Key: k1, Part: a, Value: []byte("k1a")},
			{Partition: 2, Key: k1, Part: a, Value: []byte("c")},
		},
		Partitions: map[int32]Partition{1: {Next: 42, Watermark: 1000}},
	}))
	require.NoError(t, s.Write(&Checkpoint{Users: []UserRecord{{Partition: 2, Key: k1, Part: a}}})) // delete
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
		p     int32
		parts []string
	}{{1, []string{"-5 a k1a", "-5 b1 k1b", "7 b1 k2b"}}, {2, nil}} {
		var parts []string
		require.NoError(t, s.Users(tc.p, func(k, part, v []byte) error {
			key, err := DecodeKey(schemas.TypeInt64, k)
			parts = append(parts, fmt.Sprintf("%v %s %s", key, part, v))
			return err
		}))
		require.Equal(t, tc.parts, parts, "partition %d", tc.p)
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

func TestOpenRefusesOtherFormat(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format []byte // nil: none stored (format 1)
		err    string
	}{
		{"format 1", nil, "(format 1, this build reads 2)"},
		{"format 3", []byte("3"), "(format 3, this build reads 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := pebble.Open(dir, &pebble.Options{})
			require.NoError(t, err)
			require.NoError(t, db.Set(catalogKey, []byte("h1"), pebble.Sync))
			if tc.format != nil {
				require.NoError(t, db.Set(formatKey, tc.format, pebble.Sync))
			}
			require.NoError(t, db.Close())
			_, err = Open(dir, "h1", slog.New(slog.DiscardHandler))
			require.ErrorIs(t, err, ErrFormat)
			require.ErrorContains(t, err, tc.err)
			require.ErrorContains(t, err, "remove the directory to rebuild from Kafka")
		})
	}
}
