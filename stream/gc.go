package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
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

// GC is the garbage collector setting of a process that runs the speed
// layer (the portrait run and portrait speed commands). It is
// process-wide: in portrait run it covers the landing and the jobs too,
// whose heaps are small next to the speed layer's state.
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
}

// DefaultGC is the setting a deployment gets unless configured.
func DefaultGC() GC { return GC{Percent: DefaultGCPercent} }

// Validate checks that the setting can be applied.
func (g GC) Validate() error {
	if g.MemoryLimitMB < 0 {
		return fmt.Errorf("memory_limit_mb: %d is negative", g.MemoryLimitMB)
	}
	if g.MemoryLimitMB > math.MaxInt64>>20 {
		return fmt.Errorf("memory_limit_mb: %d is too large", g.MemoryLimitMB)
	}
	if g.Percent < 0 && g.MemoryLimitMB == 0 {
		return errors.New("gc_percent: negative (collector off) needs memory_limit_mb")
	}
	return nil
}

// Apply sets the runtime's garbage collector as g says, logs the
// resulting setting, and returns a function that restores the previous
// one (for tests and benchmarks).
func (g GC) Apply(logger *slog.Logger) (restore func(), err error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	oldPercent, oldLimit := gcSetting()
	percent, limit := oldPercent, oldLimit
	if g.MemoryLimitMB > 0 {
		limit = g.MemoryLimitMB << 20
		debug.SetMemoryLimit(limit)
	}
	if g.Percent != 0 {
		percent = g.Percent
		debug.SetGCPercent(percent)
	}
	attrs := []any{"gc_percent", percent}
	if limit == math.MaxInt64 {
		attrs = append(attrs, "memory_limit", "none")
	} else {
		attrs = append(attrs, "memory_limit_mb", limit>>20)
	}
	logger.Info("garbage collector", attrs...)
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}, nil
}

// gcSetting is the runtime's current GOGC percentage (negative: off) and
// memory limit (math.MaxInt64: none).
func gcSetting() (percent int, limit int64) {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	rtmetrics.Read(s)
	return int(int64(s[0].Value.Uint64())), int64(s[1].Value.Uint64()) // off: -1 as a uint64
}
