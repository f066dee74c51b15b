package stream

import "runtime"

// The speed layer's long CPU-bound loops (decoding a fetched batch,
// applying it, encoding a checkpoint, loading or rebasing a partition)
// give up their processor about every 50–100 µs of work, so that a
// lookup that became runnable on the same processors runs within that
// time rather than after Go's 10 ms preemption slice. The counts below
// are steps of each loop between yields, sized from the per-step costs
// measured at a million users; apply yields after every applyChunk
// events. A yield costs well under a microsecond when nothing else is
// runnable.
const (
	// yieldRecords: records decoded (≈0.4–0.6 µs each).
	yieldRecords = 128
	// yieldUsers: users encoded at a checkpoint (≈0.5 µs each), loaded
	// or rebased.
	yieldUsers = 128
)

// yieldAfter calls runtime.Gosched after every every-th step of a loop;
// step counts the steps done so far, from 0.
func yieldAfter(step, every int) {
	if step%every == every-1 {
		runtime.Gosched()
	}
}
