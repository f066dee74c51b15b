package warehouse

import (
	"cmp"
	"slices"
	"strings"

	"github.com/portrait-dev/portrait/schemas"
)

// Rows within an events file written by import or compaction are
// clustered: ordered by the entity key, then by source place (partition,
// offset). A recompute then touches each user's state in ascending order
// (its per-user records and value sets stay in the cache and the
// processor's prefetchers follow), and the key column of a file packs
// into few bits. The landing writes its files in arrival order;
// compaction clusters them. No reader depends on the order of rows: ties
// are broken by the (partition, offset) columns, never by position.

// ClusterByKey sorts events by the catalog's key, then by (partition,
// offset).
func ClusterByKey(cat *schemas.Catalog, events []schemas.Event) {
	k := cat.Key
	if cat.Fields[k].Type == schemas.TypeString {
		clusterBy(events, func(e *schemas.Event) string { return e.Values[k].(string) }, strings.Compare)
		return
	}
	clusterBy(events, func(e *schemas.Event) int64 { return e.Values[k].(int64) }, cmp.Compare[int64])
}

// clusterBy sorts events by key, then by (partition, offset), comparing
// unboxed keys taken out once.
func clusterBy[K any](events []schemas.Event, key func(*schemas.Event) K, compare func(a, b K) int) {
	type sortKey struct {
		k      K
		part   int32
		offset int64
		i      int
	}
	keys := make([]sortKey, len(events))
	for i := range events {
		e := &events[i]
		keys[i] = sortKey{key(e), e.Partition, e.Offset, i}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		return cmp.Or(compare(a.k, b.k), cmp.Compare(a.part, b.part), cmp.Compare(a.offset, b.offset))
	})
	sorted := make([]schemas.Event, len(events))
	for j, sk := range keys {
		sorted[j] = events[sk.i]
	}
	copy(events, sorted)
}
