package ui

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func get(t *testing.T, h http.Handler, path string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

func TestPage(t *testing.T) {
	h := NewHandler(StatusFunc(func(*http.Request) (Status, error) { return Status{}, nil }), fixedNow, nil)
	for _, path := range []string{"/ui", "/ui/"} {
		t.Run(path, func(t *testing.T) {
			res, body := get(t, h, path)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			page := string(body)
			for _, id := range []string{"c-throughput", "c-lag", "c-freshness", "c-drift", "firing", "jobs", "snapshot", "throughput-value"} {
				require.Contains(t, page, `id="`+id+`"`)
			}
			// Self-contained: nothing loaded from another origin.
			require.NotRegexp(t, regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`), page)
			require.NotContains(t, page, "@import")
		})
	}
	res, _ := get(t, h, "/ui/other")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestStatusJSON(t *testing.T) {
	tests := []struct {
		name  string
		in    Status
		check func(t *testing.T, got map[string]any)
	}{
		{
			name: "empty source gives empty lists, not null, and the default target",
			in:   Status{},
			check: func(t *testing.T, got map[string]any) {
				for _, k := range []string{"lag", "drift", "jobs", "firing"} {
					require.Equal(t, []any{}, got[k], k)
				}
				require.Equal(t, 60.0, got["freshness_target_seconds"])
				require.Equal(t, 0.0, got["freshness_seconds"], "unknown watermark: no freshness")
				require.Equal(t, t0.Format(time.RFC3339), got["now"])
				require.NotContains(t, got, "snapshot")
			},
		},
		{
			name: "derived freshness, snapshot age and drift share",
			in: Status{
				Throughput:     Throughput{Consumed: 1200, Applied: 1190},
				SpeedWatermark: t0.Add(-90 * time.Second),
				Snapshot:       &Snapshot{Cutoff: t0.Add(-2 * time.Hour), Users: 987},
				Drift:          []TagDrift{{Tag: "pv_24h", Compared: 1000, Different: 5}, {Tag: "buys_7d"}},
				Jobs:           []JobRun{{Job: "recompute", Status: "ok", Started: t0.Add(-time.Hour), Ended: t0.Add(-59 * time.Minute), Rows: 987}},
				Firing:         []Condition{{Name: "PortraitFreshnessTargetMissed", Severity: "critical", Summary: "stale"}},
			},
			check: func(t *testing.T, got map[string]any) {
				require.Equal(t, 90.0, got["freshness_seconds"])
				require.Equal(t, 7200.0, got["snapshot"].(map[string]any)["age_seconds"])
				drift := got["drift"].([]any)
				require.InDelta(t, 0.005, drift[0].(map[string]any)["share"], 1e-12)
				require.Equal(t, 0.0, drift[1].(map[string]any)["share"], "nothing compared: share 0, not NaN")
				require.Equal(t, 1200.0, got["throughput"].(map[string]any)["consumed"])
				require.Len(t, got["firing"], 1)
				require.Len(t, got["jobs"], 1)
			},
		},
		{
			name: "values the source set are kept",
			in:   Status{Now: t0.Add(time.Hour), FreshnessSeconds: 3, FreshnessTargetSeconds: 10, SpeedWatermark: t0},
			check: func(t *testing.T, got map[string]any) {
				require.Equal(t, 3.0, got["freshness_seconds"])
				require.Equal(t, 10.0, got["freshness_target_seconds"])
				require.Equal(t, t0.Add(time.Hour).Format(time.RFC3339), got["now"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(StatusFunc(func(*http.Request) (Status, error) { return tt.in, nil }), fixedNow, nil)
			res, body := get(t, h, "/ui/status.json")
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var got map[string]any
			require.NoError(t, json.Unmarshal(body, &got), "%s", body)
			tt.check(t, got)
		})
	}
}

func TestStatusJSONError(t *testing.T) {
	h := NewHandler(StatusFunc(func(*http.Request) (Status, error) {
		return Status{}, errors.New("state store closed")
	}), fixedNow, nil)
	res, body := get(t, h, "/ui/status.json")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.JSONEq(t, `{"error":"reading status: state store closed"}`, string(body))
}
