// Package radix sorts by unsigned 64-bit keys in linear time: the speed
// layer orders a checkpoint's users and records by key (a Pebble batch in
// key order is several times cheaper to apply), hundreds of thousands at
// a time, where a comparison sort would cost more than it saves.
package radix

// Sort orders a by key, keeping the order of elements with equal keys
// (stable), and returns the sorted elements: a or tmp, which must hold
// at least len(a) elements. It reads key once per element and pass: a
// byte at a time from the least significant, skipping the bytes every
// key shares (the high bytes of small numbers).
func Sort[T any](a, tmp []T, key func(*T) uint64) []T {
	if len(a) < 2 {
		return a
	}
	b := tmp[:len(a)]
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for i := range a {
			count[byte(key(&a[i])>>shift)]++
		}
		if count[byte(key(&a[0])>>shift)] == len(a) {
			continue
		}
		pos := 0
		for d := range count {
			pos, count[d] = pos+count[d], pos
		}
		for i := range a {
			d := byte(key(&a[i]) >> shift)
			b[count[d]] = a[i]
			count[d]++
		}
		a, b = b, a
	}
	return a
}
