package stream

import (
	"bytes"
	"log/slog"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGCApply(t *testing.T) {
	percent0, limit0 := gcSetting()
	cases := []struct {
		name        string
		gc          GC
		wantPercent int
		wantLimit   int64
		log         string
		err         string
	}{
		{name: "default", gc: DefaultGC(), wantPercent: DefaultGCPercent, wantLimit: limit0, log: "gc_percent=200"},
		{name: "keep runtime's", gc: GC{}, wantPercent: percent0, wantLimit: limit0},
		{name: "limit", gc: GC{Percent: 400, MemoryLimitMB: 2048}, wantPercent: 400, wantLimit: 2 << 30, log: "gc_percent=400 memory_limit_mb=2048"},
		{name: "off with limit", gc: GC{Percent: -1, MemoryLimitMB: 512}, wantPercent: -1, wantLimit: 512 << 20, log: "gc_percent=-1 memory_limit_mb=512"},
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
			restore()
			require.Equal(t, c.wantPercent, p)
			require.Equal(t, c.wantLimit, l)
			require.Contains(t, buf.String(), "garbage collector")
			require.Contains(t, buf.String(), c.log)
			p, l = gcSetting()
			require.Equal(t, percent0, p, "restored")
			require.Equal(t, limit0, l, "restored")
		})
	}
}
