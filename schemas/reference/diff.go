package reference

import (
	"fmt"
	"math"

	"github.com/portrait-dev/portrait/schemas"
)

// FloatTolerance is the relative error allowed between float64 tag values
// of two executors. Sums (and so averages) of float64 fields depend on the
// order of addition, which differs between executors; every other value
// must be equal exactly.
const FloatTolerance = 1e-9

// Diff lists the differences between two sets of profiles (both sorted by
// key), at most limit of them (0: all). Empty means equal, value for value.
func Diff(c *schemas.Catalog, want, got []schemas.Profile, limit int) []string {
	var out []string
	add := func(format string, args ...any) bool {
		out = append(out, fmt.Sprintf(format, args...))
		return limit > 0 && len(out) >= limit
	}
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && schemas.Compare(want[i].Key, got[j].Key) < 0):
			if add("key %v: missing", want[i].Key) {
				return out
			}
			i++
		case i == len(want) || schemas.Compare(want[i].Key, got[j].Key) > 0:
			if add("key %v: unexpected", got[j].Key) {
				return out
			}
			j++
		default:
			for k := range c.Tags {
				if !ValuesEqual(want[i].Values[k], got[j].Values[k]) {
					if add("key %v tag %s: want %v (%T), got %v (%T)", want[i].Key, c.Tags[k].Name,
						want[i].Values[k], want[i].Values[k], got[j].Values[k], got[j].Values[k]) {
						return out
					}
				}
			}
			i++
			j++
		}
	}
	return out
}

// ValuesEqual compares two tag values: same type and value, floats within
// FloatTolerance.
func ValuesEqual(a, b any) bool {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if aok && bok {
		if fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)) {
			return true
		}
		return math.Abs(fa-fb) <= FloatTolerance*math.Max(math.Abs(fa), math.Abs(fb))
	}
	return a == b
}
