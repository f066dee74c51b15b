package serving

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestMetricsBeforeFirstLookup checks that the lookup metrics serve a
// zero series for every endpoint and status code before any request, and
// that requests then count in those same series.
func TestMetricsBeforeFirstLookup(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, reg := newTestHandler(t, c, taobaoSource(c), Config{})

	mfs, err := reg.Gather()
	require.NoError(t, err)
	requests := map[string]float64{}
	var endpoints []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "portrait_lookup_requests_total":
				requests[labels["endpoint"]+" "+labels["code"]] = m.GetCounter().GetValue()
			case "portrait_lookup_duration_seconds":
				require.Zero(t, m.GetHistogram().GetSampleCount())
				endpoints = append(endpoints, labels["endpoint"])
			}
		}
	}
	require.Equal(t, []string{"batch_get", "get"}, endpoints)
	require.Equal(t, map[string]float64{
		"get 200": 0, "get 400": 0, "get 404": 0, "get 503": 0,
		"batch_get 200": 0, "batch_get 400": 0, "batch_get 413": 0, "batch_get 503": 0,
	}, requests)

	tests := []struct {
		name, method, path, body string
		endpoint, code           string
	}{
		{"get found", "GET", "/v1/profiles/1", "", "get", "200"},
		{"get missing", "GET", "/v1/profiles/7", "", "get", "404"},
		{"get bad key", "GET", "/v1/profiles/x", "", "get", "400"},
		{"batch", "POST", "/v1/profiles:batchGet", `{"keys":[1]}`, "batch_get", "200"},
		{"batch bad", "POST", "/v1/profiles:batchGet", `{`, "batch_get", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counterValue(t, reg, tt.endpoint, tt.code)
			rec := do(h, tt.method, tt.path, tt.body)
			require.Equal(t, tt.code, strconv.Itoa(rec.Code), rec.Body.String())
			require.Equal(t, before+1, counterValue(t, reg, tt.endpoint, tt.code))
		})
	}
}
