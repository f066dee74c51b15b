package kafka

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestLag(t *testing.T) {
	series := func(t *testing.T, reg *prometheus.Registry) map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return got
	}
	type set struct {
		p         int32
		hwm, next int64
		want      int64
	}
	for _, tc := range []struct {
		name string
		sets []set
		keep map[int32]bool
		want map[string]float64
	}{
		{"a series per partition, lag never below zero",
			[]set{{0, 10, 4, 6}, {1, 3, 5, -2}, {2, 0, 0, 0}}, nil,
			map[string]float64{"0": 6, "1": 0, "2": 0}},
		{"revoked partitions lose their series",
			[]set{{0, 10, 4, 6}, {1, 7, 7, 0}, {2, 9, 1, 8}}, map[int32]bool{1: true, 3: true},
			map[string]float64{"1": 0}},
		{"the last value stands",
			[]set{{0, 10, 4, 6}, {0, 12, 12, 0}}, map[int32]bool{0: true},
			map[string]float64{"0": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag_records", Help: "lag"}, []string{"partition"})
			reg.MustRegister(vec)
			l := NewLag(vec)
			for _, s := range tc.sets {
				require.Equal(t, s.want, l.Partition(s.p).Set(s.hwm, s.next))
			}
			if tc.keep != nil {
				l.Keep(tc.keep)
			}
			require.Equal(t, tc.want, series(t, reg))
		})
	}
}
