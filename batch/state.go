package batch

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
)

// stateFormat is the layout of the _state files this version writes and
// reads, recorded in the snapshot's marker (SnapshotInfo.StateFormat): 2
// is the wide table (see the package documentation). Snapshots written
// before it record none and hold format 1, a long table of one row per
// entity and tag, which is not read: a recompute on such a base runs in
// full, and writes format 2.
const stateFormat = 2

// ErrOldState is returned by ReadState for a state in an older format.
var ErrOldState = errors.New("lifetime state in an old format")

// State file names: the wide table of the scalar partials, one row per
// entity, and a long table of the values of every set-valued tag.
const stateFile = "part-00000.parquet"

func stateValuesFile(tag string) string { return "values-" + tag + ".parquet" }

// partField is what a column of the wide state file holds of its tag's
// partials.
type partField uint8

const (
	fieldKey       partField = iota // the entity's key
	fieldN                          // N (count, sum, avg)
	fieldSum                        // Int or Float (sum, avg)
	fieldValue                      // Value, null when none (min, max, first, last); N is 1 when set
	fieldTime                       // Time, null without a value (first, last)
	fieldPartition                  // Partition, likewise
	fieldOffset                     // Offset, likewise
)

// stateCol is a column of the wide state file: field f of the partials
// of state tag j.
type stateCol struct {
	column
	j int
	f partField
}

// stateLayout is how a catalog's lifetime partials are stored.
type stateLayout struct {
	life []int      // the lifetime tags (catalog indexes), by state index
	cols []stateCol // the wide file: the key, then the columns of the scalar tags
	// sets are the state indexes of the set-valued tags (count_distinct,
	// mode), whose values are in files of their own.
	sets []int
}

func newStateLayout(cat *schemas.Catalog) *stateLayout {
	l := &stateLayout{life: local.LifetimeTags(cat)}
	key := cat.KeyField()
	l.cols = []stateCol{{column: newColumn(key.Name, key.Type, false), j: -1, f: fieldKey}}
	add := func(j int, f partField, suffix string, t schemas.Type, nullable bool) {
		name := cat.Tags[l.life[j]].Name + "." + suffix
		l.cols = append(l.cols, stateCol{column: newColumn(name, t, nullable), j: j, f: f})
	}
	for j, ti := range l.life {
		t := &cat.Tags[ti]
		switch t.Agg {
		case schemas.AggCount:
			add(j, fieldN, "n", schemas.TypeInt64, false)
		case schemas.AggSum, schemas.AggAvg:
			add(j, fieldN, "n", schemas.TypeInt64, false)
			add(j, fieldSum, "sum", cat.Fields[t.Of].Type, false)
		case schemas.AggMin, schemas.AggMax:
			add(j, fieldValue, "v", t.Type, true)
		case schemas.AggFirst, schemas.AggLast:
			add(j, fieldValue, "v", t.Type, true)
			add(j, fieldTime, "time", schemas.TypeTimestamp, true)
			add(j, fieldPartition, "partition", schemas.TypeInt64, true)
			add(j, fieldOffset, "offset", schemas.TypeInt64, true)
		case schemas.AggCountDistinct, schemas.AggMode:
			l.sets = append(l.sets, j)
		default:
			panic(fmt.Sprintf("batch: lifetime tag %s has aggregate %s", t.Name, t.Agg))
		}
	}
	return l
}

// wideColumns are the columns of the wide state file.
func (l *stateLayout) wideColumns() []column {
	cols := make([]column, len(l.cols))
	for i := range l.cols {
		cols[i] = l.cols[i].column
	}
	return cols
}

// valuesColumns are the columns of the values file of set tag j: the
// key, a value, and its count for a mode tag.
func (l *stateLayout) valuesColumns(cat *schemas.Catalog, j int) []column {
	t := &cat.Tags[l.life[j]]
	cols := []column{l.cols[0].column, newColumn("value", cat.Fields[t.Of].Type, false)}
	if t.Agg == schemas.AggMode {
		cols = append(cols, newColumn("count", schemas.TypeInt64, false))
	}
	return cols
}

// writeState writes the lifetime state s into folder dir: the wide file,
// then the values file of every set-valued tag. Every file has a row
// group per rowsPerGroup entities.
func writeState(dir string, cat *schemas.Catalog, s local.StateView) error {
	if err := s.Check(cat); err != nil {
		return err
	}
	w := &stateWriter{cat: cat, l: newStateLayout(cat), s: s, keyType: cat.KeyField().Type}
	groups := (s.Len() + rowsPerGroup - 1) / rowsPerGroup
	// Only a later recompute reads the state, page by page: its pages need
	// no statistics nor bounds.
	noStats := func(cols []column) []parquet.WriterOption {
		opts := []parquet.WriterOption{parquet.DataPageStatistics(false)}
		for _, c := range cols {
			opts = append(opts, parquet.SkipPageBounds(c.Name))
		}
		return opts
	}
	cols := w.l.wideColumns()
	_, err := writeTable(filepath.Join(dir, stateFile), cat.Name+"_state", stateCodec, cols, groups, func() filler {
		return &wideFiller{stateWriter: w, parts: make([]local.ScalarPartials, len(w.l.life))}
	}, noStats(cols)...)
	if err != nil {
		return err
	}
	for _, j := range w.l.sets {
		t := &cat.Tags[w.l.life[j]]
		cols := w.l.valuesColumns(cat, j)
		_, err := writeTable(filepath.Join(dir, stateValuesFile(t.Name)), cat.Name+"_state_"+t.Name, stateCodec, cols, groups, func() filler {
			return &valuesFiller{stateWriter: w, j: j, typ: cols[1].Type, mode: len(cols) == 3}
		}, noStats(cols)...)
		if err != nil {
			return err
		}
	}
	return nil
}

// stateWriter holds what the fillers of a state's files share.
type stateWriter struct {
	cat     *schemas.Catalog
	l       *stateLayout
	s       local.StateView
	keyType schemas.Type
}

// key sets *dst to the key of entity i.
func (w *stateWriter) key(dst *parquet.Value, i int) error {
	if k := w.s.Key(i); !setValue(dst, w.keyType, k) {
		return fmt.Errorf("state key %v is %T, want %s", k, k, w.keyType)
	}
	return nil
}

// wideFiller gives the columns of the wide state file, rowsPerGroup
// entities a row group.
type wideFiller struct {
	*stateWriter
	lo    int                    // the first entity of the row group
	parts []local.ScalarPartials // by state tag: the partials of the group's entities (none for a set tag)
	// value fills a value column (parts[j].Value) as the tag column of
	// the profiles values.
	value  profileFiller
	values local.Profiles
}

func (f *wideFiller) group(g int) (int, error) {
	lo, hi := g*rowsPerGroup, min((g+1)*rowsPerGroup, f.s.Len())
	f.lo = lo
	if err := f.s.ScalarPartials(f.cat, lo, hi, f.parts); err != nil {
		return 0, err
	}
	return hi - lo, nil
}

// column fills a column with one loop per kind of column and value type:
// the type is not looked at per value. Values are built in place: one
// returned and then stored costs a store-forwarding stall per cell.
func (f *wideFiller) column(dst []parquet.Value, c, lo, hi int) ([]parquet.Value, error) {
	col := &f.l.cols[c]
	if col.f == fieldValue {
		// a nullable column of the tag's type, as a profile's
		f.values.Tags = append(f.values.Tags[:0], f.parts[col.j].Value)
		f.value.ps = &f.values
		return f.value.column(dst, 1, lo, hi)
	}
	n := len(dst)
	dst = slices.Grow(dst, hi-lo)[:n+hi-lo]
	out := dst[n:]
	if col.f == fieldKey {
		for i := range out {
			if err := f.key(&out[i], f.lo+lo+i); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	sp := &f.parts[col.j]
	switch col.f {
	case fieldN:
		for i, x := range sp.N[lo:hi] {
			out[i] = parquet.Int64Value(x)
		}
	case fieldSum:
		if col.Type == schemas.TypeInt64 {
			for i, x := range sp.Int[lo:hi] {
				out[i] = parquet.Int64Value(x)
			}
		} else {
			for i, x := range sp.Float[lo:hi] {
				out[i] = parquet.DoubleValue(x)
			}
		}
	case fieldTime:
		placeColumn(out, sp.Time[lo:hi], &sp.Value, lo)
	case fieldPartition:
		placeColumn(out, sp.Partition[lo:hi], &sp.Value, lo)
	case fieldOffset:
		placeColumn(out, sp.Offset[lo:hi], &sp.Value, lo)
	}
	return dst, nil
}

// placeColumn sets out[i] to xs[i] at definition level 1 where row lo+i of
// the value column is valid, else to null.
func placeColumn[T int32 | int64](out []parquet.Value, xs []T, value *local.Column, lo int) {
	for i, x := range xs {
		if v := &out[i]; value.Has(lo + i) {
			*v = parquet.Int64Value(int64(x))
			v.SetDefinitionLevel(1)
		} else {
			*v = parquet.Value{}
		}
	}
}

// valuesFiller gives the columns of the values file of set tag j: its
// row group g holds the values of the entities of the wide file's row
// group g (the writer leaves it out when they have none).
type valuesFiller struct {
	*stateWriter
	j     int
	typ   schemas.Type // of the values
	mode  bool         // a mode tag: the values have counts
	lo    int
	parts []schemas.Partial
	rows  []valueRef // the rows of the current group
}

// valueRef is a row of a values file: value k of the partial of entity
// i (counted from the group's first).
type valueRef struct{ i, k int32 }

func (f *valuesFiller) group(g int) (int, error) {
	lo, hi := g*rowsPerGroup, min((g+1)*rowsPerGroup, f.s.Len())
	f.lo = lo
	f.parts = f.s.TagPartials(f.parts, f.j, lo, hi)
	f.rows = f.rows[:0]
	for i := range f.parts {
		p := &f.parts[i]
		if f.mode && len(p.Counts) != len(p.Values) {
			return 0, fmt.Errorf("state key %v: mode partial has %d values and %d counts", f.s.Key(lo+i), len(p.Values), len(p.Counts))
		}
		for k := range p.Values {
			f.rows = append(f.rows, valueRef{int32(i), int32(k)})
		}
	}
	return len(f.rows), nil
}

func (f *valuesFiller) column(dst []parquet.Value, c, lo, hi int) ([]parquet.Value, error) {
	n := len(dst)
	dst = slices.Grow(dst, hi-lo)[:n+hi-lo]
	out, rows := dst[n:], f.rows[lo:hi]
	switch c {
	case 0:
		for i, r := range rows {
			if i > 0 && r.i == rows[i-1].i {
				out[i] = out[i-1]
			} else if err := f.key(&out[i], f.lo+int(r.i)); err != nil {
				return dst, err
			}
		}
	case 1:
		for i, r := range rows {
			if x := f.parts[r.i].Values[r.k]; !setValue(&out[i], f.typ, x) {
				return dst, fmt.Errorf("state tag %s: value %v is %T, want %s", f.cat.Tags[f.l.life[f.j]].Name, x, x, f.typ)
			}
		}
	default:
		for i, r := range rows {
			p := &f.parts[r.i]
			out[i] = parquet.Int64Value(p.Counts[r.k])
		}
	}
	return dst, nil
}
