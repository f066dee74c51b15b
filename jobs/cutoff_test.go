package jobs

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

func TestRecomputeCutoff(t *testing.T) {
	h := schemas.Timestamp(time.Hour.Milliseconds())
	base := schemasTS(t0)
	tests := []struct {
		name      string
		watermark schemas.Timestamp
		bucket    time.Duration
		want      schemas.Timestamp
	}{
		{"on a boundary", base + 5*h, time.Hour, base + 5*h},
		{"inside a bucket", base + 5*h + 1, time.Hour, base + 5*h},
		{"just before a boundary", base + 6*h - 1, time.Hour, base + 5*h},
		{"day buckets", base + 30*h, 24 * time.Hour, base + 24*h},
		{"before 1970 floors", -1, time.Hour, -h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, RecomputeCutoff(tt.watermark, tt.bucket))
		})
	}
}

// hourFixture writes an events hour: files are part-<p>-<first>-<last>.parquet
// names (their content does not matter here); listed are the ones the
// _SUCCESS marker lists (nil: no marker).
func hourFixture(t *testing.T, root string, start time.Time, files []string, listed []string) {
	t.Helper()
	dir := warehouse.HourDir(root, schemasTS(start))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	if listed != nil {
		m := warehouse.Marker{}
		for _, f := range listed {
			m.Files = append(m.Files, warehouse.MarkerFile{Name: f, Rows: 1})
		}
		require.NoError(t, warehouse.WriteMarker(dir, m))
	}
}

func TestClosedHours(t *testing.T) {
	root := t.TempDir()
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	hourFixture(t, root, h(0), []string{"part-0-0-9.parquet"}, []string{"part-0-0-9.parquet"})
	hourFixture(t, root, h(1), []string{"part-0-10-19.parquet", "part-1-0-5.parquet"}, []string{"part-0-10-19.parquet", "part-1-0-5.parquet"})
	hourFixture(t, root, h(2), []string{"part-0-20-29.parquet", "part-0-30-31.parquet"}, []string{"part-0-20-29.parquet"}) // re-opened
	hourFixture(t, root, h(3), nil, nil)                                                                                   // empty folder
	hourFixture(t, root, h(4), []string{"part-0-40-49.parquet"}, nil)                                                      // not closed yet
	// A compacted hour: the merged file supersedes the small ones.
	hourFixture(t, root, h(5), []string{"part-0-50-59.parquet", "part-0-50-54.parquet"}, []string{"part-0-50-59.parquet"})

	ts := func(n int) schemas.Timestamp { return schemasTS(h(n)) }
	tests := []struct {
		name     string
		from, to schemas.Timestamp
		open     []schemas.Timestamp
		msg      string
	}{
		{"closed hours only", ts(0), ts(2), nil, ""},
		{"empty and compacted hours are fine", ts(3), ts(4), nil, ""},
		{"compacted hour", ts(5), ts(6), nil, ""},
		{"re-opened hour", ts(0), ts(3), []schemas.Timestamp{ts(2)},
			"1 events hour(s) before 2026-01-01T03:00:00Z are not closed: 2026-01-01T02:00:00Z (re-opened: 1 file(s) not in _SUCCESS)"},
		{"everything", math.MinInt64, ts(6), []schemas.Timestamp{ts(2), ts(4)},
			"2 events hour(s) before 2026-01-01T06:00:00Z are not closed: 2026-01-01T02:00:00Z (re-opened: 1 file(s) not in _SUCCESS), 2026-01-01T04:00:00Z (no _SUCCESS)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ClosedHours(root, tt.from, tt.to)
			if tt.open == nil {
				require.NoError(t, err)
				return
			}
			var oh *OpenHoursError
			require.True(t, errors.As(err, &oh), "got %v", err)
			var got []schemas.Timestamp
			for _, h := range oh.Hours {
				got = append(got, h.Start)
			}
			assert.Equal(t, tt.open, got)
			assert.Equal(t, tt.msg, err.Error())
		})
	}

	wm, ok, err := ClosedWatermark(root)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, ts(2), wm, "the newest closed hour before the first open one ends at 02:00")
}

func TestRecomputeFrom(t *testing.T) {
	cat, err := schemas.Load("../schemas/catalogs/taobao.yaml")
	require.NoError(t, err)
	day := schemas.Timestamp(24 * time.Hour.Milliseconds())
	cutoff := schemasTS(t0) + 30*day
	window := cutoff - schemas.Timestamp(cat.LongestWindow())
	// taobao has lifetime tags: the base snapshot bounds what is read.
	assert.Equal(t, schemas.Timestamp(math.MinInt64), RecomputeFrom(cat, nil, cutoff))
	assert.Equal(t, window, RecomputeFrom(cat, []schemas.Timestamp{cutoff - 2*day, cutoff - day, cutoff}, cutoff),
		"a base newer than the window start: the window decides")
	assert.Equal(t, cutoff-20*day, RecomputeFrom(cat, []schemas.Timestamp{cutoff - 20*day, cutoff + day}, cutoff),
		"a base older than the window start: from the base")
}
