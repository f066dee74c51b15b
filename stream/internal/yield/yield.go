// Package yield lets the speed layer's long CPU-bound loops (decoding a
// fetched batch, applying it, encoding and writing a checkpoint, loading
// or rebasing a partition) give up their processor about every 50–100 µs
// of work, so that a lookup that became runnable on the same processors
// runs within that time rather than after Go's 10 ms preemption slice.
// Each loop picks its step count from its per-step cost; a yield costs
// well under a microsecond when nothing else is runnable.
package yield

import "runtime"

// After calls runtime.Gosched after every every-th step of a loop; step
// counts the steps done so far, from 0.
func After(step, every int) {
	if step%every == every-1 {
		runtime.Gosched()
	}
}
