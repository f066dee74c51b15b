package serving

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestDriftMetricsSeries(t *testing.T) {
	cat := &schemas.Catalog{Tags: []schemas.Tag{{Name: "a"}, {Name: "b"}}}
	for _, tc := range []struct {
		name    string
		reports []*Report
		want    map[string][4]float64 // tag → compared, different, only_batch, only_speed
	}{
		{"before any reconcile every catalog tag is zero", nil,
			map[string][4]float64{"a": {}, "b": {}}},
		{"a report sets its tags", []*Report{{Tags: []TagDrift{
			{Tag: "a", Compared: 2, Different: 1, OnlyBatch: 1, OnlySpeed: 3},
			{Tag: "b", Compared: 5}}}},
			map[string][4]float64{"a": {6, 1, 1, 3}, "b": {5, 0, 0, 0}}},
		{"a catalog tag missing from the next report goes back to zero, an unknown one is dropped", []*Report{
			{Tags: []TagDrift{{Tag: "a", Compared: 2, Different: 1}, {Tag: "b", Compared: 1}, {Tag: "gone", Different: 4}}},
			{Tags: []TagDrift{{Tag: "a", Compared: 3}}}},
			map[string][4]float64{"a": {3, 0, 0, 0}, "b": {}}},
		{"an unknown tag is served while reported", []*Report{{Tags: []TagDrift{{Tag: "gone", OnlySpeed: 2}}}},
			map[string][4]float64{"a": {}, "b": {}, "gone": {2, 0, 0, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewDriftMetrics(reg, cat)
			for _, r := range tc.reports {
				m.Set(r)
			}
			got := map[string][4]float64{}
			mfs, err := reg.Gather()
			require.NoError(t, err)
			for _, mf := range mfs {
				require.Equal(t, "portrait_drift_values", mf.GetName())
				for _, s := range mf.GetMetric() {
					var tag, kind string
					for _, l := range s.GetLabel() {
						switch l.GetName() {
						case "tag":
							tag = l.GetValue()
						case "kind":
							kind = l.GetValue()
						}
					}
					v := got[tag]
					switch kind {
					case KindCompared:
						v[0] = s.GetGauge().GetValue()
					case KindDifferent:
						v[1] = s.GetGauge().GetValue()
					case KindOnlyBatch:
						v[2] = s.GetGauge().GetValue()
					case KindOnlySpeed:
						v[3] = s.GetGauge().GetValue()
					default:
						t.Fatalf("unexpected kind %q", kind)
					}
					got[tag] = v
				}
				require.Len(t, mf.GetMetric(), 4*len(tc.want), "series: one per tag and kind")
			}
			require.Equal(t, tc.want, got)
		})
	}
}
