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
)

func writeState(path string, cat *schemas.Catalog, s local.StateView) (warehouse.MarkerFile, error) {
	if err := s.Check(cat); err != nil {
		return warehouse.MarkerFile{}, err
	}
	tags := s.StateTags()
	w := &stateWriter{cat: cat, s: s, nl: len(tags), names: make([]parquet.Value, len(tags)), kinds: make([]stateKind, len(tags))}
	for j, ti := range tags {
		t := &cat.Tags[ti]
		w.names[j] = parquet.ByteArrayValue([]byte(t.Name))
		switch t.Agg {
		case schemas.AggCountDistinct:
			w.kinds[j] = kindDistinct
		case schemas.AggMode:
			w.kinds[j] = kindMode
		case schemas.AggSum, schemas.AggAvg:
			w.kinds[j] = kindSumFloat
			if cat.Fields[t.Of].Type == schemas.TypeInt64 {
				w.kinds[j] = kindSumInt
			}
		case schemas.AggFirst, schemas.AggLast:
			w.kinds[j] = kindPlace
		default:
			w.kinds[j] = kindValue
		}
	}
	starts := w.groupStarts()
	cols := stateColumns(cat)
	// Only a later recompute reads the state, page by page: its pages need
	// no statistics nor bounds.
	opts := []parquet.WriterOption{parquet.DataPageStatistics(false)}
	for _, c := range cols {
		opts = append(opts, parquet.SkipPageBounds(c.Name))
	}
	return writeTable(path, cat.Name+"_state", stateCodec, cols, len(starts)-1, func() filler {
		return &stateFiller{stateWriter: w, starts: starts}
	}, opts...)
}

// groupStarts returns the first user of every row group, then the number
// of users. Row groups start at a user. A user makes at most one row per
// state tag besides its presence row unless a tag has a row per value
// (count_distinct, mode): then a row group ends at the first user after
// rowsPerGroup rows, which takes reading every partial once more (the
// partials are read stateChunk users at a time); else at the first user
// after rowsPerGroup rows by the row count of the first stateChunk users.
func (w *stateWriter) groupStarts() []int {
	var starts []int
	var parts []schemas.Partial
	n := w.s.Len()
	if !slices.ContainsFunc(w.kinds, func(k stateKind) bool { return k == kindDistinct || k == kindMode }) {
		hi := min(stateChunk, n)
		parts = w.s.PartialsOf(parts, 0, hi)
		rows := 0
		for i := range hi {
			rows += w.rowsOf(parts[i*w.nl : (i+1)*w.nl])
		}
		// users per group: rowsPerGroup rows at the sample's rows per user
		users := max(1, rowsPerGroup*hi/max(rows, 1))
		for lo := 0; lo < n; lo += users {
			starts = append(starts, lo)
		}
		return append(starts, n)
	}
	rows := rowsPerGroup
	for lo := 0; lo < n; lo += stateChunk {
		hi := min(lo+stateChunk, n)
		parts = w.s.PartialsOf(parts, lo, hi)
		for i := lo; i < hi; i++ {
			if rows >= rowsPerGroup {
				starts, rows = append(starts, i), 0
			}
			rows += w.rowsOf(parts[(i-lo)*w.nl : (i-lo+1)*w.nl])
		}
	}
	return append(starts, n)
}

// stateKind is how a lifetime tag's partial makes rows.
type stateKind uint8

const (
	kindValue    stateKind = iota // n and the value (min, max, count)
	kindSumInt                    // n and sum_int
	kindSumFloat                  // n and sum_float
	kindPlace                     // n, the value and its time, partition, offset
	kindDistinct                  // a row per value, n 1
	kindMode                      // a row per value, n its count
)

// stateChunk is how many users' partials writeState reads at a time to
// count their rows.
const stateChunk = 4096

// stateFiller gives the columns of the state file, a row group of whole
// users at a time.
type stateFiller struct {
	*stateWriter
	starts []int             // the first user of every row group, then the number of users
	parts  []schemas.Partial // the partials of the current row group's users
	refs   []stateRef        // the rows of the current row group
	has    uint32            // bit c set: column c has values in the group
}

func (f *stateFiller) group(g int) (int, error) {
	lo, hi := f.starts[g], f.starts[g+1]
	f.parts = f.s.PartialsOf(f.parts, lo, hi)
	var err error
	f.refs, f.has, err = f.rows(f.refs[:0], f.parts, lo, hi)
	return len(f.refs), err
}

// column fills a column with one loop per kind of column: the required
// ones without null handling, the scalar partial fields only from the
// partials that have them, the value columns from values of their type.
// Values are built in place: one returned and then stored costs a
// store-forwarding stall per cell. A nullable column without values in
// the group is all nulls.
func (f *stateFiller) column(dst []parquet.Value, c, lo, hi int) ([]parquet.Value, error) {
	n := len(dst)
	dst = slices.Grow(dst, hi-lo)[:n+hi-lo]
	out, refs := dst[n:], f.refs[lo:hi]
	if c > colN && f.has&(1<<c) == 0 {
		clear(out)
		return dst, nil
	}
	switch c {
	case colKey:
		for i := range refs {
			out[i] = refs[i].key
		}
	case colTag:
		for i := range refs {
			if r := &refs[i]; r.p == nil {
				out[i] = parquet.ByteArrayValue(nil)
			} else {
				out[i] = f.names[r.j]
			}
		}
	case colN:
		for i := range refs {
			out[i] = parquet.Int64Value(f.n(&refs[i]))
		}
	case colSumInt, colSumFloat, colTime, colPartition, colOffset:
		kind := kindPlace
		switch c {
		case colSumInt:
			kind = kindSumInt
		case colSumFloat:
			kind = kindSumFloat
		}
		for i := range refs {
			v, r := &out[i], &refs[i]
			if r.p == nil || r.k >= 0 || f.kinds[r.j] != kind {
				*v = parquet.Value{}
				continue
			}
			switch c {
			case colSumInt:
				*v = parquet.Int64Value(r.p.Int)
			case colSumFloat:
				*v = parquet.DoubleValue(r.p.Float)
			case colTime:
				*v = parquet.Int64Value(int64(r.p.Time))
			case colPartition:
				*v = parquet.Int64Value(int64(r.p.Partition))
			default:
				*v = parquet.Int64Value(r.p.Offset)
			}
			v.SetDefinitionLevel(1)
		}
	default: // the value columns
		for i := range refs {
			if r := &refs[i]; r.vc == int32(c) {
				out[i] = r.val
			} else {
				out[i] = parquet.Value{}
			}
		}
	}
	return dst, nil
}

// stateWriter turns the partials of a state into rows of the state file,
// written column by column.
type stateWriter struct {
	cat   *schemas.Catalog
	s     local.StateView
	nl    int             // the number of state tags
	names []parquet.Value // the tag column, by state tag
	kinds []stateKind     // by state tag
}

// stateRef is one row of the state file: a user's presence row (p nil),
// the scalar partial p of state tag j (k < 0), or value k of a
// count_distinct or mode partial p.
type stateRef struct {
	key  parquet.Value
	p    *schemas.Partial
	j, k int32
	// val is the row's value (definition level 1) and vc its value column
	// (v_int … v_time), or -1 when it has none: the value's type is
	// looked at once, not once per value column.
	val parquet.Value
	vc  int32
}

// rowsOf is the number of rows of a user of partials ps: its presence
// row and those of its partials.
func (w *stateWriter) rowsOf(ps []schemas.Partial) int {
	n := 1
	for j, k := range w.kinds {
		n += partialRows(k, &ps[j])
	}
	return n
}

// partialRows is the number of rows of a partial of the given kind: one
// per value of a count_distinct or mode partial, else one when it saw an
// event.
func partialRows(k stateKind, p *schemas.Partial) int {
	switch {
	case k == kindDistinct || k == kindMode:
		return len(p.Values)
	case p.N > 0:
		return 1
	}
	return 0
}

// kindColumns are the scalar partial columns (bits by column) of the rows
// of a kind of partial.
var kindColumns = [...]uint32{
	kindSumInt:   1 << colSumInt,
	kindSumFloat: 1 << colSumFloat,
	kindPlace:    1<<colTime | 1<<colPartition | 1<<colOffset,
	kindDistinct: 0, kindMode: 0, kindValue: 0,
}

// rows appends the rows of users [lo, hi), of partials parts, to refs,
// and returns the nullable columns they have values in (bits by column).
func (w *stateWriter) rows(refs []stateRef, parts []schemas.Partial, lo, hi int) ([]stateRef, uint32, error) {
	kt := w.cat.KeyField().Type
	var has uint32
	for i := lo; i < hi; i++ {
		var key parquet.Value
		if k := w.s.Key(i); !setValue(&key, kt, k) {
			return refs, has, fmt.Errorf("state key %v is %T, want %s", k, k, kt)
		}
		refs = append(refs, stateRef{key: key, j: -1, k: -1, vc: -1})
		ps := parts[(i-lo)*w.nl : (i-lo+1)*w.nl]
		for j, kind := range w.kinds {
			p := &ps[j]
			if kind == kindDistinct || kind == kindMode {
				for k := range p.Values {
					refs = append(refs, stateRef{key: key, p: p, j: int32(j), k: int32(k)})
					r := &refs[len(refs)-1]
					r.vc = stateValue(&r.val, p.Values[k])
					has |= 1 << (r.vc & 31) // bit 31 for no value
				}
			} else if partialRows(kind, p) == 1 {
				refs = append(refs, stateRef{key: key, p: p, j: int32(j), k: -1})
				r := &refs[len(refs)-1]
				r.vc = stateValue(&r.val, p.Value)
				has |= 1<<(r.vc&31) | kindColumns[kind]
			}
		}
	}
	return refs, has, nil
}

// n is the n column of row r.
func (w *stateWriter) n(r *stateRef) int64 {
	switch {
	case r.p == nil: // the presence row
		return 0
	case r.k < 0:
		return r.p.N
	case w.kinds[r.j] == kindMode:
		return r.p.Counts[r.k]
	}
	return 1 // a count_distinct value
}

// stateValue sets *dst to x (not nil) at definition level 1 and returns
// its value column, or returns -1 (x nil or of no value type).
func stateValue(dst *parquet.Value, x any) int32 {
	c := int32(-1)
	switch x := x.(type) {
	case int64:
		*dst, c = parquet.Int64Value(x), colVInt
	case float64:
		*dst, c = parquet.DoubleValue(x), colVFloat
	case string:
		setValue(dst, schemas.TypeString, x)
		c = colVString
	case bool:
		*dst, c = parquet.BooleanValue(x), colVBool
	case schemas.Timestamp:
		*dst, c = parquet.Int64Value(int64(x)), colVTime
	default:
		return -1
	}
	dst.SetDefinitionLevel(1)
	return c
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
	// The state holds the users of the profiles: the marker's row count
	// sizes the index (growing it to 1M keys costs more than filling it).
	users := 0
	if m, ok, err := warehouse.ReadMarker(warehouse.SnapshotDir(root, cutoff)); err == nil && ok {
		users = int(min(m.Rows, 1<<26))
	}
	r := &stateReader{cat: cat, life: life, i: -1, intKeys: cat.KeyField().Type == schemas.TypeInt64,
		s: &local.State{Cutoff: cutoff, Tags: life, Keys: make([]any, 0, users), Partials: make([][]schemas.Partial, 0, users)}}
	want := stateColumns(cat)
	for _, path := range files {
		r.path, r.line = path, 0
		_, err := readGroups(path, func(cols []column) error {
			if len(cols) != len(want) {
				return fmt.Errorf("%s has %d columns, want %d", path, len(cols), len(want))
			}
			for i := range want {
				if cols[i].Name != want[i].Name || cols[i].Type != want[i].Type {
					return fmt.Errorf("%s column %d is %s %s, want %s %s", path, i, cols[i].Name, cols[i].Type, want[i].Name, want[i].Type)
				}
			}
			return nil
		}, r.group)
		if err != nil {
			return nil, fmt.Errorf("reading state of snapshot %s: %w", cutoff, err)
		}
	}
	return r.s, nil
}

// stateReader builds a State from the row groups of state files, reading
// the typed column values: only the partials' values are boxed.
type stateReader struct {
	cat  *schemas.Catalog
	life []int
	s    *local.State
	// A user's rows follow one another: the key index (by key type, nil
	// while the keys come sorted) is only looked up when the key changes.
	// i is the current user.
	intKeys bool
	intPos  map[int64]int
	strPos  map[string]int
	i       int
	lastInt int64
	lastStr string
	slab    []schemas.Partial // the partials of the next users, allocated together
	path    string
	line    int
}

func (r *stateReader) group(g *rowGroup) error {
	key, tag, n := g.vals[colKey], g.vals[colTag], g.vals[colN]
	for row := range g.n {
		r.line++
		r.user(&key[row])
		name := tag[row].ByteArray()
		if len(name) == 0 {
			continue // the presence row
		}
		j := r.tagIndex(name)
		if j < 0 {
			return fmt.Errorf("%s row %d: %q is not a lifetime tag of catalog %s", r.path, r.line, name, r.cat.Name)
		}
		t := &r.cat.Tags[r.life[j]]
		p := &r.s.Partials[r.i][j]
		nv := intOf(&n[row])
		v := stateRowValue(g, row)
		switch t.Agg {
		case schemas.AggCountDistinct, schemas.AggMode:
			p.Values = append(p.Values, v)
			if t.Agg == schemas.AggMode {
				p.Counts = append(p.Counts, nv)
				p.N += nv
			} else {
				p.N++
			}
			continue
		}
		p.N, p.Value = nv, v
		p.Int, p.Float = 0, 0
		if x := &g.vals[colSumInt][row]; !x.IsNull() {
			p.Int = intOf(x)
		}
		if x := &g.vals[colSumFloat][row]; !x.IsNull() {
			p.Float = x.Double()
		}
		p.Time, p.Partition, p.Offset = 0, 0, 0
		if x := &g.vals[colTime][row]; !x.IsNull() {
			p.Time = schemas.Timestamp(x.Int64() / msDivisor(g.fields[colTime]))
		}
		if x := &g.vals[colPartition][row]; !x.IsNull() {
			p.Partition = int32(intOf(x))
		}
		if x := &g.vals[colOffset][row]; !x.IsNull() {
			p.Offset = intOf(x)
		}
	}
	return nil
}

// user makes r.i the user of key v, adding it when new. Keys come
// sorted (writeState writes them so): a key above the last one is new
// without a lookup. The first key out of order builds the key index, by
// which every later key is then looked up.
func (r *stateReader) user(v *parquet.Value) {
	if r.intKeys {
		k := intOf(v)
		switch {
		case r.i >= 0 && k == r.lastInt:
			return
		case r.intPos == nil && (r.i < 0 || k > r.lastInt):
			r.i = r.add(k)
		default:
			if r.intPos == nil {
				r.intPos = make(map[int64]int, cap(r.s.Keys))
				for i, k := range r.s.Keys {
					r.intPos[k.(int64)] = i
				}
			}
			i, ok := r.intPos[k]
			if !ok {
				i = r.add(k)
				r.intPos[k] = i
			}
			r.i = i
		}
		r.lastInt = k
		return
	}
	b := v.ByteArray()
	switch {
	case r.i >= 0 && string(b) == r.lastStr:
		return
	case r.strPos == nil && (r.i < 0 || string(b) > r.lastStr):
		r.i = r.add(string(b))
	default:
		if r.strPos == nil {
			r.strPos = make(map[string]int, cap(r.s.Keys))
			for i, k := range r.s.Keys {
				r.strPos[k.(string)] = i
			}
		}
		i, ok := r.strPos[string(b)]
		if !ok {
			k := string(b)
			i = r.add(k)
			r.strPos[k] = i
		}
		r.i = i
	}
	r.lastStr = r.s.Keys[r.i].(string)
}

// add appends a user with empty partials and returns its index.
func (r *stateReader) add(key any) int {
	nl := len(r.life)
	if len(r.slab) < nl {
		r.slab = make([]schemas.Partial, 1024*nl)
	}
	r.s.Keys = append(r.s.Keys, key)
	r.s.Partials = append(r.s.Partials, r.slab[:nl:nl])
	r.slab = r.slab[nl:]
	return len(r.s.Keys) - 1
}

// tagIndex returns the state index of the lifetime tag named name, or -1.
func (r *stateReader) tagIndex(name []byte) int {
	for j, ti := range r.life {
		if r.cat.Tags[ti].Name == string(name) {
			return j
		}
	}
	return -1
}

// stateRowValue returns the value of a state row: the one of v_int,
// v_float, v_string, v_bool, v_time that is not null (the last one if
// several are), or nil.
func stateRowValue(g *rowGroup, row int) any {
	for c := colVTime; c >= colVInt; c-- {
		if x := &g.vals[c][row]; !x.IsNull() {
			return g.value(c, row)
		}
	}
	return nil
}

// intOf reads an integer column's value (INT32 or INT64).
func intOf(v *parquet.Value) int64 {
	if v.Kind() == parquet.Int32 {
		return int64(v.Int32())
	}
	return v.Int64()
}
