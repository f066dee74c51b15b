package batch

import (
	"fmt"
	"path/filepath"

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

func valueColumn(v any) int {
	switch v.(type) {
	case int64:
		return colVInt
	case float64:
		return colVFloat
	case string:
		return colVString
	case bool:
		return colVBool
	case schemas.Timestamp:
		return colVTime
	}
	return -1
}

// stateRow is one row of the state file before it is written.
type stateRow struct {
	key   int // index into State.Keys
	tag   int // index into State.Tags, -1 for the presence row
	p     *schemas.Partial
	value int // index into p.Values, -1 for the scalar row
}

func writeState(path string, cat *schemas.Catalog, s *local.State) (warehouse.MarkerFile, error) {
	if err := s.Check(cat); err != nil {
		return warehouse.MarkerFile{}, err
	}
	var rows []stateRow
	for i := range s.Keys {
		rows = append(rows, stateRow{key: i, tag: -1, value: -1})
		for j, ti := range s.Tags {
			p := &s.Partials[i][j]
			switch cat.Tags[ti].Agg {
			case schemas.AggCountDistinct, schemas.AggMode:
				for k := range p.Values {
					rows = append(rows, stateRow{key: i, tag: j, p: p, value: k})
				}
			default:
				if p.N > 0 {
					rows = append(rows, stateRow{key: i, tag: j, p: p, value: -1})
				}
			}
		}
	}
	cols := stateColumns(cat)
	names := make([]parquet.Value, len(s.Tags))
	for j, ti := range s.Tags {
		names[j] = levelled(cols, colTag, parquet.ByteArrayValue([]byte(cat.Tags[ti].Name)))
	}
	empty := levelled(cols, colTag, parquet.ByteArrayValue(nil))
	zero := levelled(cols, colN, parquet.Int64Value(0))
	// Typed cells, without boxing: 4 rows a user or more.
	i64 := func(row parquet.Row, c int, x int64) { row[c] = levelled(cols, c, parquet.Int64Value(x)) }
	return writeTableValues(path, cat.Name+"_state", cols, len(rows), func(r int, row parquet.Row) error {
		sr := rows[r]
		if err := setCell(row, cols, colKey, s.Keys[sr.key]); err != nil {
			return err
		}
		if sr.tag < 0 {
			row[colTag], row[colN] = empty, zero
			return nil
		}
		t := &cat.Tags[s.Tags[sr.tag]]
		p := sr.p
		row[colTag] = names[sr.tag]
		if sr.value >= 0 {
			v := p.Values[sr.value]
			n := int64(1)
			if t.Agg == schemas.AggMode {
				n = p.Counts[sr.value]
			}
			i64(row, colN, n)
			if c := valueColumn(v); c >= 0 {
				return setCell(row, cols, c, v)
			}
			return nil
		}
		i64(row, colN, p.N)
		switch t.Agg {
		case schemas.AggSum, schemas.AggAvg:
			if cat.Fields[t.Of].Type == schemas.TypeInt64 {
				i64(row, colSumInt, p.Int)
			} else {
				row[colSumFloat] = levelled(cols, colSumFloat, parquet.DoubleValue(p.Float))
			}
		case schemas.AggFirst, schemas.AggLast:
			i64(row, colTime, int64(p.Time))
			i64(row, colPartition, int64(p.Partition))
			i64(row, colOffset, p.Offset)
		}
		if p.Value != nil {
			if c := valueColumn(p.Value); c >= 0 {
				return setCell(row, cols, c, p.Value)
			}
		}
		return nil
	})
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
	s := &local.State{Cutoff: cutoff, Tags: life}
	pos := map[any]int{}
	for _, path := range files {
		line := 0
		_, err := readTable(path, func(row []any) error {
			line++
			k := row[colKey]
			i, ok := pos[k]
			if !ok {
				i = len(s.Keys)
				pos[k] = i
				s.Keys = append(s.Keys, k)
				s.Partials = append(s.Partials, make([]schemas.Partial, len(life)))
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
