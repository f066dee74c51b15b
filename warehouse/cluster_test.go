package warehouse

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestClusterByKey(t *testing.T) {
	ev := func(key any, p int32, off int64) schemas.Event {
		return schemas.Event{Values: []any{key}, Partition: p, Offset: off}
	}
	for _, tc := range []struct {
		name     string
		key      schemas.Type
		in, want []schemas.Event
	}{
		{"int keys, then place", schemas.TypeInt64,
			[]schemas.Event{ev(int64(3), 0, 1), ev(int64(-1), 0, 9), ev(int64(3), 0, 0), ev(int64(3), 1, 0)},
			[]schemas.Event{ev(int64(-1), 0, 9), ev(int64(3), 0, 0), ev(int64(3), 0, 1), ev(int64(3), 1, 0)}},
		{"string keys, then place", schemas.TypeString,
			[]schemas.Event{ev("b", 2, 5), ev("a", 0, 7), ev("b", 1, 6), ev("ab", 0, 1)},
			[]schemas.Event{ev("a", 0, 7), ev("ab", 0, 1), ev("b", 1, 6), ev("b", 2, 5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := &schemas.Catalog{Fields: []schemas.Field{{Name: "k", Type: tc.key}}, Key: 0}
			ClusterByKey(cat, tc.in)
			require.Equal(t, tc.want, tc.in)
		})
	}
}
