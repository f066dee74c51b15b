package serving

import (
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

// BenchmarkReconcileCompare measures the merge-join and attribution of two
// views of 200k users over the taobao tags (no file or state I/O), with
// 1% of the users drifting in one tag and marked late.
func BenchmarkReconcileCompare(b *testing.B) {
	cat := schemas.MustLoad("../schemas/catalogs/taobao.yaml")
	const users = 200_000
	batchView := make([]schemas.Profile, users)
	speedView := make([]schemas.Profile, users)
	var marks []mark
	for i := range batchView {
		vals := []any{int64(i % 30), int64(i % 3), int64(i % 50), int64(7), int64(9), schemas.Timestamp(1_500_000_000_000 + i),
			i%3 > 0, false, int64(1), schemas.Timestamp(1_600_000_000_000)}
		batchView[i] = schemas.Profile{Key: int64(i), Values: vals}
		sv := append([]any(nil), vals...)
		if i%100 == 0 {
			sv[0] = int64(i%30 + 1)
			marks = append(marks, mark{CauseLate, int64(i), 1})
		}
		speedView[i] = schemas.Profile{Key: int64(i), Values: sv}
	}
	view := &referenceView{cat: cat, marks: marks}
	cfg := &ReconcileConfig{Catalog: cat, Causes: view, SampleSize: DefaultSampleSize}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep := &Report{Tags: make([]TagDrift, len(cat.Tags))}
		for k := range cat.Tags {
			rep.Tags[k].Numeric = cat.Tags[k].Type == schemas.TypeInt64
		}
		mergeJoin(rep, DefaultSampleSize, batchView, speedView)
		attribute(cfg, rep)
		if rep.Drifting != users/100 || rep.Cause(CauseLate).Drifting != users/100 {
			b.Fatalf("drifting %d, late %+v", rep.Drifting, rep.Cause(CauseLate))
		}
	}
	b.ReportMetric(float64(users)*float64(b.N)/b.Elapsed().Seconds(), "users/s")
}
