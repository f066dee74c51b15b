package stream

import (
	"fmt"
	"sync"

	"github.com/portrait-dev/portrait/stream/incremental"
)

// entry is one user's state and its lock. The user is held by value:
// one heap object per user less for the garbage collector to mark.
type entry struct {
	mu    sync.Mutex
	u     incremental.User
	dirty bool
}

// userMap is a partition's users by key. Keys are int64 or string (the
// key field's types, see normalizeKey), each kind in its own map: an
// int64 key is hashed and compared as an int64 rather than as an
// interface (the speed layer's most frequent map access), and is not
// kept boxed by the map.
type userMap struct {
	ints map[int64]*entry
	strs map[string]*entry
}

// newEntry is an empty user with key (an int64 or a string).
func newEntry(key any) *entry {
	en := &entry{}
	en.u.SetKey(key)
	return en
}

func newUserMap() userMap {
	return userMap{ints: map[int64]*entry{}, strs: map[string]*entry{}}
}

// get is the user with key k, or nil.
func (m *userMap) get(k any) *entry {
	switch k := k.(type) {
	case int64:
		return m.ints[k]
	case string:
		return m.strs[k]
	}
	return nil
}

// put adds en under key k, an int64 or a string.
func (m *userMap) put(k any, en *entry) {
	switch k := k.(type) {
	case int64:
		m.ints[k] = en
	case string:
		m.strs[k] = en
	default:
		panic(fmt.Sprintf("stream: user key of type %T", k))
	}
}

func (m *userMap) delete(k any) {
	switch k := k.(type) {
	case int64:
		delete(m.ints, k)
	case string:
		delete(m.strs, k)
	}
}

func (m *userMap) len() int { return len(m.ints) + len(m.strs) }

// all yields every user.
func (m *userMap) all(yield func(*entry) bool) {
	for _, en := range m.ints {
		if !yield(en) {
			return
		}
	}
	for _, en := range m.strs {
		if !yield(en) {
			return
		}
	}
}
