package stream

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGCApply(t *testing.T) {
	percent0, limit0 := gcSetting()
	procs0 := runtime.GOMAXPROCS(0)
	require.Equal(t, baseProcs, procs0)
	cases := []struct {
		name        string
		gc          GC
		wantPercent int
		wantLimit   int64
		wantProcs   int
		log         string
		err         string
	}{
		{name: "default", gc: DefaultGC(), wantPercent: DefaultGCPercent, wantLimit: limit0, wantProcs: 2 * procs0,
			log: fmt.Sprintf("gc_percent=200 gomaxprocs=%d", 2*procs0)},
		{name: "keep runtime's", gc: GC{}, wantPercent: percent0, wantLimit: limit0, wantProcs: procs0},
		{name: "limit", gc: GC{Percent: 400, MemoryLimitMB: 2048, ProcsPerCPU: 3}, wantPercent: 400, wantLimit: 2 << 30, wantProcs: 3 * procs0,
			log: fmt.Sprintf("gc_percent=400 gomaxprocs=%d memory_limit_mb=2048", 3*procs0)},
		{name: "off with limit", gc: GC{Percent: -1, MemoryLimitMB: 512}, wantPercent: -1, wantLimit: 512 << 20, wantProcs: procs0,
			log: fmt.Sprintf("gc_percent=-1 gomaxprocs=%d memory_limit_mb=512", procs0)},
		{name: "negative procs", gc: GC{ProcsPerCPU: -1}, err: "procs_per_cpu: -1 is not between 0 and 64"},
		{name: "off without limit", gc: GC{Percent: -1}, err: "gc_percent: negative (collector off) needs memory_limit_mb"},
		{name: "negative limit", gc: GC{MemoryLimitMB: -1}, err: "memory_limit_mb: -1 is negative"},
		{name: "huge limit", gc: GC{MemoryLimitMB: math.MaxInt64}, err: "memory_limit_mb: 9223372036854775807 is too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			restore, err := c.gc.Apply(slog.New(slog.NewTextHandler(&buf, nil)))
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			p, l := gcSetting()
			procs := runtime.GOMAXPROCS(0)
			restore()
			require.Equal(t, c.wantPercent, p)
			require.Equal(t, c.wantLimit, l)
			require.Equal(t, c.wantProcs, procs)
			require.Contains(t, buf.String(), "garbage collector")
			require.Contains(t, buf.String(), c.log)
			p, l = gcSetting()
			require.Equal(t, percent0, p, "restored")
			require.Equal(t, limit0, l, "restored")
			require.Equal(t, procs0, runtime.GOMAXPROCS(0), "restored")
		})
	}
}
