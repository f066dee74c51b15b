package state

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestWriteOrder checks that writeOrder puts int64-keyed records in store
// key order, keeps the order of one user's parts, and declines other
// keys.
func TestWriteOrder(t *testing.T) {
	intKey := func(k int64) []byte {
		b, err := EncodeKey(nil, schemas.TypeInt64, k)
		require.NoError(t, err)
		return b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var many []UserRecord
	for range 5000 {
		p := int32(rng.IntN(3)) * 300 // partitions above 255 too
		k := intKey(rng.Int64N(1<<40) - 1<<39)
		many = append(many,
			UserRecord{Partition: p, Key: k, Part: []byte("a")},
			UserRecord{Partition: p, Key: k, Part: []byte("b1")},
			UserRecord{Partition: p, Key: k, Part: []byte("b2")})
	}
	for _, tc := range []struct {
		name  string
		users []UserRecord
		want  bool // an order is returned (nil: write as they come)
	}{
		{"none", nil, false},
		{"one", []UserRecord{{Key: intKey(1), Part: []byte("a")}}, false},
		{"string keys", []UserRecord{{Key: []byte("bob")}, {Key: []byte("al")}}, false},
		{"mixed lengths", []UserRecord{{Key: intKey(2)}, {Key: []byte("al")}}, false},
		{"two users", []UserRecord{{Key: intKey(2), Part: []byte("a")}, {Key: intKey(-1), Part: []byte("a")}}, true},
		{"in order already", []UserRecord{{Key: intKey(-1), Part: []byte("a")}, {Key: intKey(2), Part: []byte("a")}}, false},
		{"partitions out of order", []UserRecord{{Partition: 1, Key: intKey(-1)}, {Partition: 0, Key: intKey(2)}}, true},
		{"same key", []UserRecord{{Key: intKey(7), Part: []byte("b2")}, {Key: intKey(7), Part: []byte("a")}}, false},
		{"many", many, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order, _, _ := writeOrder(tc.users, nil, nil)
			if !tc.want {
				require.Nil(t, order)
				return
			}
			require.Len(t, order, len(tc.users))
			// The reference: a stable sort by the store key without the
			// part (the parts of a user keep their order).
			want := make([]int, len(tc.users))
			for i := range want {
				want[i] = i
			}
			userKey := func(i int) []byte {
				return appendPartKey(nil, tc.users[i].Partition, tc.users[i].Key, nil)
			}
			slices.SortStableFunc(want, func(a, b int) int { return bytes.Compare(userKey(a), userKey(b)) })
			got := make([]int, len(order))
			for i, o := range order {
				got[i] = int(o.i)
			}
			require.Equal(t, want, got)
		})
	}
}
