package batch

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// ReadState reads the lifetime partials stored under _state/ of the
// snapshot of cutoff (see the package documentation): the speed layer's
// rebase and repair start from them. The snapshot must have been computed
// with cat (same hash) and hold a state; one in an older format fails
// with ErrOldState.
func ReadState(root string, cat *schemas.Catalog, cutoff schemas.Timestamp) (*local.State, error) {
	return readState(root, cat, cutoff)
}

// readState reads the lifetime state of the snapshot of cutoff.
func readState(root string, cat *schemas.Catalog, cutoff schemas.Timestamp) (*local.State, error) {
	info, err := ReadSnapshotInfo(root, cutoff)
	if err != nil {
		return nil, err
	}
	switch {
	case !info.State:
		return nil, fmt.Errorf("snapshot %s holds no lifetime state", cutoff)
	case info.StateFormat != stateFormat:
		return nil, fmt.Errorf("snapshot %s: %w (%d, this version reads %d)", cutoff, ErrOldState, max(info.StateFormat, 1), stateFormat)
	}
	dir := filepath.Join(warehouse.SnapshotDir(root, cutoff), StateDir)
	l := newStateLayout(cat)
	// The state holds the users of the profiles: the marker's row count
	// sizes the state.
	users := int(min(info.Rows, 1<<26))
	r := &stateReader{cat: cat, l: l, s: &local.State{Cutoff: cutoff, Tags: l.life,
		Keys: make([]any, 0, users), Partials: make([][]schemas.Partial, 0, users)}}
	path := filepath.Join(dir, stateFile)
	if err := readStateFile(path, l.wideColumns(), r.wide); err != nil {
		return nil, fmt.Errorf("reading state of snapshot %s: %w", cutoff, err)
	}
	for _, j := range l.sets {
		t := &cat.Tags[l.life[j]]
		r.j, r.mode, r.next = j, t.Agg == schemas.AggMode, 0
		path := filepath.Join(dir, stateValuesFile(t.Name))
		if err := readStateFile(path, l.valuesColumns(cat, j), r.setValues); err != nil {
			return nil, fmt.Errorf("reading state of snapshot %s: %w", cutoff, err)
		}
	}
	return r.s, nil
}

// readStateFile reads the state file at path, which must have the
// columns want, calling fn with every row group.
func readStateFile(path string, want []column, fn func(*stateGroup) error) error {
	f, pf, cols, err := openFlat(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if len(cols) != len(want) {
		return fmt.Errorf("%s has %d columns, want %d", path, len(cols), len(want))
	}
	g := &stateGroup{cols: make([]stateColumn, len(want))}
	for i, fl := range pf.Schema().Fields() {
		if c := cols[i]; c.Name != want[i].Name || c.Type != want[i].Type {
			return fmt.Errorf("%s column %d is %s %s, want %s %s", path, i, c.Name, fl.Type().Kind(), want[i].Name, want[i].Type)
		}
		g.cols[i].node = fl
	}
	for i, rg := range pf.RowGroups() {
		g.n = int(rg.NumRows())
		for c, cc := range rg.ColumnChunks() {
			if err := g.cols[c].read(cc, g.n); err != nil {
				return fmt.Errorf("reading %s row group %d column %s: %w", path, i, want[c].Name, err)
			}
		}
		if err := fn(g); err != nil {
			return fmt.Errorf("%s row group %d: %w", path, i, err)
		}
	}
	return nil
}

// stateGroup is a row group of a state file, column by column.
type stateGroup struct {
	n    int
	cols []stateColumn
}

// stateColumn is a column of a row group of a state file, a value per
// row: in ints (INT64) or floats (DOUBLE), 0 for null, else in vals;
// valid says which rows are not null (nil: none is).
type stateColumn struct {
	node   parquet.Field
	ints   []int64
	floats []float64
	vals   []parquet.Value
	valid  []bool
}

// has reports whether row i is not null.
func (c *stateColumn) has(i int) bool { return c.valid == nil || c.valid[i] }

// read reads the n rows of a column chunk. Pages of INT64 and DOUBLE
// values are copied out whole, by row (their definition levels place the
// values), and released; others are read as values (which may point into
// the pages, then kept), turned into ints or floats for an integer or a
// float column.
func (c *stateColumn) read(cc parquet.ColumnChunk, n int) error {
	c.ints, c.floats, c.vals, c.valid = c.ints[:0], c.floats[:0], c.vals[:0], c.valid[:0]
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := c.page(p); err != nil {
			return err
		}
	}
	if len(c.vals) > 0 {
		c.fromValues()
	}
	if got := max(len(c.ints), len(c.floats), len(c.vals)); got != n || c.node.Optional() && len(c.valid) != n {
		return fmt.Errorf("%d values for %d rows", got, n)
	}
	if !c.node.Optional() {
		c.valid = nil
	}
	return nil
}

// page appends the rows of page p.
func (c *stateColumn) page(p parquet.Page) error {
	rows := int(p.NumValues())
	var defs []byte
	if c.node.Optional() {
		if defs = p.DefinitionLevels(); len(defs) != rows {
			return fmt.Errorf("page of %d rows has %d definition levels", rows, len(defs))
		}
		for _, d := range defs {
			c.valid = append(c.valid, d > 0)
		}
	}
	data := p.Data()
	values := rows - int(p.NumNulls())
	switch {
	case data.Kind() == encoding.Int64 && len(c.vals) == 0 && len(data.Int64()) == values:
		c.ints = spread(c.ints, data.Int64(), defs)
	case data.Kind() == encoding.Double && len(c.vals) == 0 && len(data.Double()) == values:
		c.floats = spread(c.floats, data.Double(), defs)
	case len(c.ints) > 0 || len(c.floats) > 0:
		return errors.New("pages of different kinds")
	default:
		var err error
		c.vals, err = readPageValues(c.vals, p)
		return err
	}
	parquet.Release(p)
	return nil
}

// fromValues moves the values of an integer or float column into ints or
// floats.
func (c *stateColumn) fromValues() {
	t, _ := typeOfNode(c.node)
	switch t {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		c.ints = slices.Grow(c.ints[:0], len(c.vals))[:len(c.vals)]
		for i := range c.vals {
			c.ints[i] = 0
			if v := &c.vals[i]; !v.IsNull() {
				c.ints[i] = intOf(v)
			}
		}
	case schemas.TypeFloat64:
		c.floats = slices.Grow(c.floats[:0], len(c.vals))[:len(c.vals)]
		for i := range c.vals {
			c.floats[i] = 0
			if v := &c.vals[i]; !v.IsNull() {
				c.floats[i] = v.Double()
			}
		}
	default:
		return
	}
	c.vals = c.vals[:0]
}

// spread appends the rows of a page to dst: xs are its values, placed by
// its definition levels defs (none: every row has a value).
func spread[T int64 | float64](dst, xs []T, defs []byte) []T {
	if len(defs) == 0 {
		return append(dst, xs...)
	}
	at := len(dst)
	dst = slices.Grow(dst, len(defs))[:at+len(defs)]
	out, k := dst[at:], 0
	for i, d := range defs {
		if d > 0 {
			out[i] = xs[k]
			k++
		} else {
			out[i] = 0
		}
	}
	return dst
}

// stateReader builds a State from the row groups of its files, reading
// the typed column values: only the keys and the partials' values are
// boxed.
type stateReader struct {
	cat *schemas.Catalog
	l   *stateLayout
	s   *local.State
	// The set tag whose values file is read, whether it is a mode tag, and
	// the first entity its next row may be of: the values file lists the
	// entities in the order of the wide file.
	j    int
	mode bool
	next int
	bx   local.Boxer
}

// wide reads a row group of the wide file: an entity per row. It makes
// the entities' partials stateChunk at a time, each chunk column by
// column, so that a chunk's partials stay in cache while being filled.
func (r *stateReader) wide(g *stateGroup) error {
	for lo := 0; lo < g.n; lo += stateChunk {
		if err := r.wideChunk(g, lo, min(lo+stateChunk, g.n)); err != nil {
			return err
		}
	}
	return nil
}

// stateChunk is how many entities' partials a state reader fills at a
// time: those of 1024 users of three tags take 344 KB.
const stateChunk = 1024

// wideChunk reads rows lo..hi-1 of a row group of the wide file.
func (r *stateReader) wideChunk(g *stateGroup, lo, hi int) error {
	nl := len(r.l.life)
	slab := make([]schemas.Partial, (hi-lo)*nl)
	for i := range hi - lo {
		r.s.Partials = append(r.s.Partials, slab[i*nl:(i+1)*nl:(i+1)*nl])
	}
	if kc := &g.cols[0]; r.l.cols[0].Type == schemas.TypeInt64 {
		for _, k := range kc.ints[lo:hi] {
			r.s.Keys = append(r.s.Keys, r.bx.Int64(k))
		}
	} else {
		for i := range kc.vals[lo:hi] {
			r.s.Keys = append(r.s.Keys, r.bx.String(string(kc.vals[lo+i].ByteArray())))
		}
	}
	for c := 1; c < len(r.l.cols); c++ {
		col, sc := &r.l.cols[c], &g.cols[c]
		ps := slab[col.j:]
		switch col.f {
		case fieldN:
			for i, x := range sc.ints[lo:hi] {
				ps[i*nl].N = x
			}
		case fieldSum:
			if col.Type == schemas.TypeInt64 {
				for i, x := range sc.ints[lo:hi] {
					ps[i*nl].Int = x
				}
			} else {
				for i, x := range sc.floats[lo:hi] {
					ps[i*nl].Float = x
				}
			}
		case fieldValue:
			if err := r.values(ps, nl, sc, lo, hi, col.Type); err != nil {
				return fmt.Errorf("column %s: %w", col.Name, err)
			}
		case fieldTime:
			div := msDivisor(sc.node)
			for i, x := range sc.ints[lo:hi] {
				ps[i*nl].Time = schemas.Timestamp(x / div)
			}
		case fieldPartition:
			for i, x := range sc.ints[lo:hi] {
				ps[i*nl].Partition = int32(x)
			}
		case fieldOffset:
			for i, x := range sc.ints[lo:hi] {
				ps[i*nl].Offset = x
			}
		}
	}
	return nil
}

// values sets ps[(i-lo)*nl] to {N: 1, Value: row i of column sc}, of type
// t, for every row i in lo..hi-1 not null; one loop per type.
func (r *stateReader) values(ps []schemas.Partial, nl int, sc *stateColumn, lo, hi int, t schemas.Type) error {
	switch t {
	case schemas.TypeInt64:
		for i, x := range sc.ints[lo:hi] {
			if sc.has(lo + i) {
				p := &ps[i*nl]
				p.N, p.Value = 1, r.bx.Int64(x)
			}
		}
	case schemas.TypeTimestamp:
		div := msDivisor(sc.node)
		for i, x := range sc.ints[lo:hi] {
			if sc.has(lo + i) {
				p := &ps[i*nl]
				p.N, p.Value = 1, r.bx.Timestamp(schemas.Timestamp(x/div))
			}
		}
	case schemas.TypeFloat64:
		for i, x := range sc.floats[lo:hi] {
			if sc.has(lo + i) {
				p := &ps[i*nl]
				p.N, p.Value = 1, r.bx.Float64(x)
			}
		}
	case schemas.TypeString:
		for i := range sc.vals[lo:hi] {
			if v := &sc.vals[lo+i]; !v.IsNull() {
				p := &ps[i*nl]
				p.N, p.Value = 1, r.bx.String(string(v.ByteArray()))
			}
		}
	case schemas.TypeBool:
		for i := range sc.vals[lo:hi] {
			if v := &sc.vals[lo+i]; !v.IsNull() {
				p := &ps[i*nl]
				p.N, p.Value = 1, v.Boolean()
			}
		}
	default:
		return fmt.Errorf("no state values of type %s", t)
	}
	return nil
}

// setValues reads a row group of the values file of set tag r.j: a value
// (and its count) per row, the values of an entity in a run, the
// entities in the order of the wide file.
func (r *stateReader) setValues(g *stateGroup) error {
	kc, vc := &g.cols[0], &g.cols[1]
	intKeys := r.l.cols[0].Type == schemas.TypeInt64
	t, _ := typeOfNode(vc.node)
	div := msDivisor(vc.node)
	for row := range g.n {
		for ; r.next < len(r.s.Keys); r.next++ {
			if intKeys && r.s.Keys[r.next].(int64) == kc.ints[row] || !intKeys && r.s.Keys[r.next].(string) == string(kc.vals[row].ByteArray()) {
				break
			}
		}
		if r.next == len(r.s.Keys) {
			var k any
			if intKeys {
				k = kc.ints[row]
			} else {
				k = string(kc.vals[row].ByteArray())
			}
			return fmt.Errorf("row %d: key %v is not in the wide file, or out of its order", row, k)
		}
		p := &r.s.Partials[r.next][r.j]
		var v any
		switch t {
		case schemas.TypeInt64:
			v = r.bx.Int64(vc.ints[row])
		case schemas.TypeTimestamp:
			v = r.bx.Timestamp(schemas.Timestamp(vc.ints[row] / div))
		case schemas.TypeFloat64:
			v = r.bx.Float64(vc.floats[row])
		case schemas.TypeString:
			v = r.bx.String(string(vc.vals[row].ByteArray()))
		case schemas.TypeBool:
			v = vc.vals[row].Boolean()
		}
		p.Values = append(p.Values, v)
		if r.mode {
			n := g.cols[2].ints[row]
			p.Counts = append(p.Counts, n)
			p.N += n
		} else {
			p.N++
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
