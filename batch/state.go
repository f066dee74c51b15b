package batch

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// stateColumns are the columns of a snapshot's _state/part-*.parquet (see
// the package documentation).
func stateColumns(cat *schemas.Catalog) []column {
	return []column{
		newColumn(cat.KeyField().Name, cat.KeyField().Type, false),
		newColumn("tag", schemas.TypeString, false),
		newColumn("n", schemas.TypeInt64, false),
		newColumn("sum_int", schemas.TypeInt64, true),
		newColumn("sum_float", schemas.TypeFloat64, true),
		newColumn("v_int", schemas.TypeInt64, true),
		newColumn("v_float", schemas.TypeFloat64, true),
		newColumn("v_string", schemas.TypeString, true),
		newColumn("v_bool", schemas.TypeBool, true),
		newColumn("v_time", schemas.TypeTimestamp, true),
		newColumn("time", schemas.TypeTimestamp, true),
		newColumn("partition", schemas.TypeInt64, true),
		newColumn("offset", schemas.TypeInt64, true),
	}
}

const (
	colKey = iota
	colTag
	colN
	colSumInt
	colSumFloat
	colVInt
	colVFloat
	colVString
	colVBool
	colVTime
	colTime
	colPartition
	colOffset
	numStateColumns
)

func writeState(path string, cat *schemas.Catalog, s *local.State) (warehouse.MarkerFile, error) {
	if err := s.Check(cat); err != nil {
		return warehouse.MarkerFile{}, err
	}
	w := &stateWriter{cat: cat, s: s, names: make([]parquet.Value, len(s.Tags))}
	for j, ti := range s.Tags {
		w.names[j] = parquet.ByteArrayValue([]byte(cat.Tags[ti].Name))
	}
	// Row groups start at a user: the first user after rowsPerGroup rows.
	var starts []int
	rows := rowsPerGroup
	for i := range s.Keys {
		if rows >= rowsPerGroup {
			starts, rows = append(starts, i), 0
		}
		rows += w.rowsOf(i)
	}
	starts = append(starts, len(s.Keys))
	cols := stateColumns(cat)
	return writeTable(path, cat.Name+"_state", cols, len(starts)-1, func() filler {
		return &stateFiller{stateWriter: w, starts: starts, cols: cols}
	})
}

// stateFiller gives the columns of the state file, a row group of whole
// users at a time.
type stateFiller struct {
	*stateWriter
	starts []int // the first user of every row group, then len(Keys)
	cols   []column
	refs   []stateRef // the rows of the current row group
}

func (f *stateFiller) group(g int) (int, error) {
	var err error
	f.refs, err = f.rows(f.refs[:0], f.starts[g], f.starts[g+1])
	return len(f.refs), err
}

func (f *stateFiller) column(dst []parquet.Value, c, lo, hi int) ([]parquet.Value, error) {
	def := defLevel(&f.cols[c])
	n := len(dst)
	dst = slices.Grow(dst, hi-lo)[:n+hi-lo]
	for i := lo; i < hi; i++ {
		v := &dst[n+i-lo]
		*v = parquet.Value{}
		if f.cell(v, c, &f.refs[i]); !v.IsNull() {
			v.SetDefinitionLevel(def)
		}
	}
	return dst, nil
}

// stateWriter turns the partials of a state into rows of the state file,
// written column by column.
type stateWriter struct {
	cat   *schemas.Catalog
	s     *local.State
	names []parquet.Value // the tag column, by state tag
}

// stateRef is one row of the state file: user i's presence row (j < 0),
// the scalar partial of state tag j (k < 0), or value k of a
// count_distinct or mode partial.
type stateRef struct {
	key  parquet.Value
	i    int32
	j, k int32
}

// rowsOf is the number of rows of user i.
func (w *stateWriter) rowsOf(i int) int {
	n := 1
	for j, ti := range w.s.Tags {
		p := &w.s.Partials[i][j]
		switch w.cat.Tags[ti].Agg {
		case schemas.AggCountDistinct, schemas.AggMode:
			n += len(p.Values)
		default:
			if p.N > 0 {
				n++
			}
		}
	}
	return n
}

// rows appends the rows of users [lo, hi) to refs.
func (w *stateWriter) rows(refs []stateRef, lo, hi int) ([]stateRef, error) {
	kt := w.cat.KeyField().Type
	for i := lo; i < hi; i++ {
		var key parquet.Value
		if !setValue(&key, kt, w.s.Keys[i]) {
			return refs, fmt.Errorf("state key %v is %T, want %s", w.s.Keys[i], w.s.Keys[i], kt)
		}
		refs = append(refs, stateRef{key: key, i: int32(i), j: -1, k: -1})
		for j, ti := range w.s.Tags {
			p := &w.s.Partials[i][j]
			switch w.cat.Tags[ti].Agg {
			case schemas.AggCountDistinct, schemas.AggMode:
				for k := range p.Values {
					refs = append(refs, stateRef{key: key, i: int32(i), j: int32(j), k: int32(k)})
				}
			default:
				if p.N > 0 {
					refs = append(refs, stateRef{key: key, i: int32(i), j: int32(j), k: -1})
				}
			}
		}
	}
	return refs, nil
}

// cell sets *v (null on entry) to the value of column c in row r. It
// writes in place: a Value returned and then stored costs a
// store-forwarding stall per cell.
func (w *stateWriter) cell(v *parquet.Value, c int, r *stateRef) {
	switch {
	case c == colKey:
		*v = r.key
	case c == colTag && r.j < 0:
		*v = parquet.ByteArrayValue(nil)
	case c == colTag:
		*v = w.names[r.j]
	case r.j < 0: // the presence row
		if c == colN {
			*v = parquet.Int64Value(0)
		}
	case r.k >= 0: // a value of a count_distinct or mode partial
		p := &w.s.Partials[r.i][r.j]
		switch {
		case c == colN && w.cat.Tags[w.s.Tags[r.j]].Agg == schemas.AggMode:
			*v = parquet.Int64Value(p.Counts[r.k])
		case c == colN:
			*v = parquet.Int64Value(1)
		default:
			stateValue(v, c, p.Values[r.k])
		}
	default:
		w.scalarCell(v, c, r)
	}
}

// scalarCell is cell for the row of a scalar partial.
func (w *stateWriter) scalarCell(v *parquet.Value, c int, r *stateRef) {
	t := &w.cat.Tags[w.s.Tags[r.j]]
	p := &w.s.Partials[r.i][r.j]
	sum := t.Agg == schemas.AggSum || t.Agg == schemas.AggAvg
	place := t.Agg == schemas.AggFirst || t.Agg == schemas.AggLast
	switch {
	case c == colN:
		*v = parquet.Int64Value(p.N)
	case c == colSumInt && sum && w.cat.Fields[t.Of].Type == schemas.TypeInt64:
		*v = parquet.Int64Value(p.Int)
	case c == colSumFloat && sum && w.cat.Fields[t.Of].Type != schemas.TypeInt64:
		*v = parquet.DoubleValue(p.Float)
	case c == colTime && place:
		*v = parquet.Int64Value(int64(p.Time))
	case c == colPartition && place:
		*v = parquet.Int64Value(int64(p.Partition))
	case c == colOffset && place:
		*v = parquet.Int64Value(p.Offset)
	default:
		stateValue(v, c, p.Value)
	}
}

// stateValue sets *dst to x when c is the value column of x's type (else
// leaves it null).
func stateValue(dst *parquet.Value, c int, x any) {
	switch x := x.(type) {
	case int64:
		if c == colVInt {
			*dst = parquet.Int64Value(x)
		}
	case float64:
		if c == colVFloat {
			*dst = parquet.DoubleValue(x)
		}
	case string:
		if c == colVString {
			setValue(dst, schemas.TypeString, x)
		}
	case bool:
		if c == colVBool {
			*dst = parquet.BooleanValue(x)
		}
	case schemas.Timestamp:
		if c == colVTime {
			*dst = parquet.Int64Value(int64(x))
		}
	}
}

// readState reads the lifetime state of the snapshot of cutoff.
func readState(root string, cat *schemas.Catalog, cutoff schemas.Timestamp) (*local.State, error) {
	dir := filepath.Join(warehouse.SnapshotDir(root, cutoff), StateDir)
	files, err := warehouse.DataFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("snapshot %s has no state files", cutoff)
	}
	life := local.LifetimeTags(cat)
	byName := map[string]int{}
	for j, ti := range life {
		byName[cat.Tags[ti].Name] = j
	}
	// The state holds the users of the profiles: the marker's row count
	// sizes the index (growing it to 1M keys costs more than filling it).
	users := 0
	if m, ok, err := warehouse.ReadMarker(warehouse.SnapshotDir(root, cutoff)); err == nil && ok {
		users = int(min(m.Rows, 1<<26))
	}
	s := &local.State{Cutoff: cutoff, Tags: life, Keys: make([]any, 0, users), Partials: make([][]schemas.Partial, 0, users)}
	pos := make(map[any]int, users)
	// A user's rows follow one another: the map is only looked up when
	// the key changes.
	var last any
	i := -1
	var slab []schemas.Partial // the partials of the next users, allocated together
	for _, path := range files {
		line := 0
		_, err := readTable(path, func(row []any) error {
			line++
			if k := row[colKey]; i < 0 || k != last {
				var ok bool
				if i, ok = pos[k]; !ok {
					i = len(s.Keys)
					pos[k] = i
					if len(slab) < len(life) {
						slab = make([]schemas.Partial, 1024*len(life))
					}
					s.Keys = append(s.Keys, k)
					s.Partials = append(s.Partials, slab[:len(life):len(life)])
					slab = slab[len(life):]
				}
				last = k
			}
			name, _ := row[colTag].(string)
			if name == "" {
				return nil
			}
			j, ok := byName[name]
			if !ok {
				return fmt.Errorf("%s row %d: %q is not a lifetime tag of catalog %s", path, line, name, cat.Name)
			}
			t := &cat.Tags[life[j]]
			p := &s.Partials[i][j]
			n, _ := row[colN].(int64)
			var v any
			for _, c := range []int{colVInt, colVFloat, colVString, colVBool, colVTime} {
				if row[c] != nil {
					v = row[c]
				}
			}
			switch t.Agg {
			case schemas.AggCountDistinct, schemas.AggMode:
				p.Values = append(p.Values, v)
				if t.Agg == schemas.AggMode {
					p.Counts = append(p.Counts, n)
					p.N += n
				} else {
					p.N++
				}
				return nil
			}
			p.N, p.Value = n, v
			p.Int, _ = row[colSumInt].(int64)
			p.Float, _ = row[colSumFloat].(float64)
			p.Time, _ = row[colTime].(schemas.Timestamp)
			part, _ := row[colPartition].(int64)
			p.Partition = int32(part)
			p.Offset, _ = row[colOffset].(int64)
			return nil
		}, func(cols []column) error {
			want := stateColumns(cat)
			if len(cols) != len(want) {
				return fmt.Errorf("%s has %d columns, want %d", path, len(cols), len(want))
			}
			for i := range want {
				if cols[i].Name != want[i].Name || cols[i].Type != want[i].Type {
					return fmt.Errorf("%s column %d is %s %s, want %s %s", path, i, cols[i].Name, cols[i].Type, want[i].Name, want[i].Type)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading state of snapshot %s: %w", cutoff, err)
		}
	}
	return s, nil
}
