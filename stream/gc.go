package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
)

// DefaultGCPercent is the garbage collector's target (GOGC) a process
// running the speed layer sets, see GC.
//
// The speed layer's state is a large, long-lived heap (about 1.3 GB at a
// million users): with Go's default of 100 the collector marks all of it
// every time as much again has been allocated, 12–16 % of the CPU in the
// 1M-user end-to-end benchmark; 200 took 9–13 % and 400 7–9 %, for a
// heap that peaks at about 3× (200) or 5× (400) the live state. 200 is
// the default as a middle ground for hosts sized for the live state;
// raise it where memory allows, and bound the heap with a memory limit.
const DefaultGCPercent = 200

// DefaultProcsPerCPU is the multiple of the runtime's own GOMAXPROCS
// (the CPUs it found at start, or the GOMAXPROCS variable) that a process
// running the speed layer sets, see GC.
//
// During a collection Go runs idle-time mark workers on processors that
// have nothing else to do, and such a worker keeps its processor until it
// finds goroutines in the run queues or the network poller, or is
// preempted after 10 ms: a goroutine woken by a timer or readied on
// another processor's queue waits behind it. With one processor per
// core, a lookup that arrives during the collection's mark phase (about
// 0.2–0.5 s every 15–20 s at a million users) often waits milliseconds;
// with twice as many, a free processor is nearly always there to take it
// and the OS shares the cores between them in finer slices. Measured at
// 1M users, 20k lookups/s while ingesting 50k events/s on 2 cores: p99
// 2.2–3.6 ms with 2 processors, 0.55–0.98 ms with 4, and the speed
// layer's throughput unchanged (docs/performance.md).
const DefaultProcsPerCPU = 2

// baseProcs is the runtime's GOMAXPROCS when the process started (the
// GOMAXPROCS environment variable, else the CPUs it may use).
var baseProcs = runtime.GOMAXPROCS(0)

// GC is the garbage collector and scheduler setting of a process that
// runs the speed layer (the portrait run and portrait speed commands). It
// is process-wide: in portrait run it covers the landing and the jobs
// too, whose heaps are small next to the speed layer's state.
type GC struct {
	// Percent is the GOGC target: the heap may grow by this percentage
	// of the live heap before a collection. 0 keeps the runtime's setting
	// (the GOGC environment variable, else 100); negative turns the
	// proportional target off, leaving MemoryLimitMB alone to trigger
	// collections.
	Percent int
	// MemoryLimitMB is the runtime's soft memory limit (GOMEMLIMIT) in
	// MiB: the collector runs more often as the process nears it. 0 keeps
	// the runtime's setting (the GOMEMLIMIT environment variable, else
	// none).
	MemoryLimitMB int64
	// ProcsPerCPU sets GOMAXPROCS to this many times the runtime's own
	// setting at start (see DefaultProcsPerCPU); 0 keeps the runtime's.
	ProcsPerCPU int
}

// DefaultGC is the setting a deployment gets unless configured.
func DefaultGC() GC { return GC{Percent: DefaultGCPercent, ProcsPerCPU: DefaultProcsPerCPU} }

// Validate checks that the setting can be applied.
func (g GC) Validate() error {
	if g.MemoryLimitMB < 0 {
		return fmt.Errorf("memory_limit_mb: %d is negative", g.MemoryLimitMB)
	}
	if g.MemoryLimitMB > math.MaxInt64>>20 {
		return fmt.Errorf("memory_limit_mb: %d is too large", g.MemoryLimitMB)
	}
	if g.ProcsPerCPU < 0 || g.ProcsPerCPU > 64 {
		return fmt.Errorf("procs_per_cpu: %d is not between 0 and 64", g.ProcsPerCPU)
	}
	if g.Percent < 0 && g.MemoryLimitMB == 0 {
		return errors.New("gc_percent: negative (collector off) needs memory_limit_mb")
	}
	return nil
}

// Apply sets the runtime's garbage collector and GOMAXPROCS as g says, logs the
// resulting setting, and returns a function that restores the previous
// one (for tests and benchmarks).
func (g GC) Apply(logger *slog.Logger) (restore func(), err error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	oldPercent, oldLimit := gcSetting()
	oldProcs := runtime.GOMAXPROCS(0)
	if g.ProcsPerCPU > 0 {
		runtime.GOMAXPROCS(g.ProcsPerCPU * baseProcs)
	}
	percent, limit := oldPercent, oldLimit
	if g.MemoryLimitMB > 0 {
		limit = g.MemoryLimitMB << 20
		debug.SetMemoryLimit(limit)
	}
	if g.Percent != 0 {
		percent = g.Percent
		debug.SetGCPercent(percent)
	}
	attrs := []any{"gc_percent", percent, "gomaxprocs", runtime.GOMAXPROCS(0)}
	if limit == math.MaxInt64 {
		attrs = append(attrs, "memory_limit", "none")
	} else {
		attrs = append(attrs, "memory_limit_mb", limit>>20)
	}
	logger.Info("garbage collector", attrs...)
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
		runtime.GOMAXPROCS(oldProcs)
	}, nil
}

// gcSetting is the runtime's current GOGC percentage (negative: off) and
// memory limit (math.MaxInt64: none).
func gcSetting() (percent int, limit int64) {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	rtmetrics.Read(s)
	return int(int64(s[0].Value.Uint64())), int64(s[1].Value.Uint64()) // off: -1 as a uint64
}
