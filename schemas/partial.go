package schemas

// Partial is the mergeable state of one aggregate tag for one entity:
// what a snapshot stores for each lifetime tag, so that the next
// recompute (batch/local) and the speed layer's lifetime base
// (stream/incremental) go on from it without the events before its
// cutoff. Which fields are set depends on the aggregate:
//
//	count           N
//	sum, avg        N (values summed) and Int (int64 field) or Float (float64 field)
//	min, max        N (1 when set) and Value
//	first, last     N (1 when set), Value and its Time, Partition, Offset
//	count_distinct  Values: the distinct values, ascending; N = len(Values)
//	mode            Values ascending with their Counts; N = sum of Counts
type Partial struct {
	N         int64
	Int       int64
	Float     float64
	Value     any
	Time      Timestamp
	Partition int32
	Offset    int64
	Values    []any
	Counts    []int64
}
