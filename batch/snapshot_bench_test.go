package batch

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// benchProfiles makes n profiles of the taobao catalog, and their lifetime
// state, shaped like a recompute's: sorted int64 keys, small counts, some
// nulls, timestamps over nine days.
func benchProfiles(cat *schemas.Catalog, n int) ([]schemas.Profile, *local.State) {
	r := rand.New(rand.NewPCG(1, 2))
	const t0 = 1511539200000 // 2017-11-25
	life := local.LifetimeTags(cat)
	profiles := make([]schemas.Profile, n)
	state := &local.State{Cutoff: t0 + 9*86_400_000, Tags: life, Keys: make([]any, n), Partials: make([][]schemas.Partial, n)}
	ts := func() schemas.Timestamp { return schemas.Timestamp(t0 + r.Int64N(9*86_400_000)) }
	for i := range profiles {
		vals := make([]any, len(cat.Tags))
		for j := range cat.Tags {
			t := &cat.Tags[j]
			switch {
			case t.IsRule():
				vals[j] = r.IntN(4) == 0
			case t.Agg == schemas.AggCount || t.Agg == schemas.AggCountDistinct:
				vals[j] = r.Int64N(30)
			case t.Agg == schemas.AggMode || t.Agg == schemas.AggLast:
				if r.IntN(3) > 0 {
					vals[j] = r.Int64N(10_000)
				}
			default: // min, max of the event time
				vals[j] = ts()
			}
		}
		key := int64(i*7 + 1)
		profiles[i] = schemas.Profile{Key: key, Values: vals}
		ps := make([]schemas.Partial, len(life))
		for k, ti := range life {
			if v := vals[ti]; v != nil {
				ps[k] = schemas.Partial{N: 1, Value: v}
				if cat.Tags[ti].Agg == schemas.AggLast {
					ps[k].Time, ps[k].Partition, ps[k].Offset = ts(), 1<<20, r.Int64N(20_000_000)
				}
			}
		}
		state.Keys[i], state.Partials[i] = key, ps
	}
	return profiles, state
}

// BenchmarkWriteSnapshot measures writing the snapshot of 1M taobao
// profiles: "snapshot" is the whole WriteSnapshot (the profile part and
// the lifetime state side by side, the marker, the swap), "profiles" and
// "state" each file alone.
func BenchmarkWriteSnapshot(b *testing.B) {
	cat := schemas.MustLoad("../schemas/catalogs/taobao.yaml")
	const n = 1 << 20
	boxed, state := benchProfiles(cat, n)
	profiles := columns(b, cat, boxed)
	key, tags := snapshotColumns(cat)
	cols := append([]column{key}, tags...)
	for _, bc := range []struct {
		name  string
		write func(dir string) (string, error)
	}{
		{"snapshot", func(dir string) (string, error) {
			_, err := WriteSnapshot(dir, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: profiles, State: state, Engine: EngineLocal})
			return warehouse.SnapshotDir(dir, state.Cutoff), err
		}},
		{"profiles", func(dir string) (string, error) {
			path := filepath.Join(dir, "part-00000.parquet")
			_, err := writeProfiles(path, cat, cols, profiles)
			return path, err
		}},
		{"state", func(dir string) (string, error) {
			path := filepath.Join(dir, StateDir)
			return path, writeState(path, cat, state)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			var path string
			cpu0 := cputime.Self()
			for b.Loop() {
				var err error
				if path, err = bc.write(dir); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cputime.Self()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "profiles/s")
			b.ReportMetric(dirBytes(b, path), "bytes")
		})
	}
}

// dirBytes is the size of a file, or of the files under a folder.
func dirBytes(b *testing.B, path string) float64 {
	var size int64
	err := filepath.Walk(path, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return float64(size)
}

// BenchmarkReadSnapshot measures reading back the snapshot of
// BenchmarkWriteSnapshot: "profiles" is ReadSnapshot, "state" readState
// (the base of an incremental recompute).
func BenchmarkReadSnapshot(b *testing.B) {
	cat := schemas.MustLoad("../schemas/catalogs/taobao.yaml")
	const n = 1 << 20
	boxed, state := benchProfiles(cat, n)
	profiles := columns(b, cat, boxed)
	root := b.TempDir()
	if _, err := WriteSnapshot(root, cat, SnapshotWrite{Cutoff: state.Cutoff, Profiles: profiles, State: state, Engine: EngineLocal}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		read func() (int, error)
	}{
		{"profiles", func() (int, error) {
			ps, err := ReadSnapshot(root, cat, state.Cutoff)
			return len(ps), err
		}},
		{"state", func() (int, error) {
			s, err := readState(root, cat, state.Cutoff)
			if err != nil {
				return 0, err
			}
			return len(s.Keys), err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu0 := cputime.Self()
			for b.Loop() {
				if got, err := bc.read(); err != nil || got != n {
					b.Fatal(got, err)
				}
			}
			b.ReportMetric((cputime.Self()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "profiles/s")
		})
	}
}
