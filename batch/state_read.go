package batch

import (
	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
)

// ReadState reads the lifetime partials stored under _state/ of the
// snapshot of cutoff (see the package documentation): the speed layer's
// rebase and repair start from them. The snapshot must have been computed
// with cat (same hash) and hold a state.
func ReadState(root string, cat *schemas.Catalog, cutoff schemas.Timestamp) (*local.State, error) {
	return readState(root, cat, cutoff)
}
