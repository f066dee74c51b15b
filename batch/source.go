package batch

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/portrait-dev/portrait/batch/local"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// smallBatchRows: record batches with fewer rows are concatenated, in
// order, into batches of at least that many rows (or what is left at the
// end). An import writes a file per hour and chunk, most of them a few
// rows (stragglers of the hours before), and the engine pays a fixed cost
// per batch: the 20M-event warehouse has 2,478 files under 10k rows
// holding 1.4 % of the rows.
var smallBatchRows int64 = 32 * 1024

// eventSource reads the events files for the engine (warehouse.ReadEvents,
// which reads ahead), concatenating runs of small batches. It gives the
// same batches in the same order every time it is called.
func eventSource(cat *schemas.Catalog, files []string) local.Source {
	plain := warehouse.EventsSchema(cat)
	return func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		var small []arrow.RecordBatch
		var rows int64
		defer func() {
			for _, rec := range small {
				rec.Release()
			}
		}()
		flush := func() error {
			if len(small) == 0 {
				return nil
			}
			rec, err := concatBatches(plain, small, rows)
			for _, r := range small {
				r.Release()
			}
			small, rows = small[:0], 0
			if err != nil {
				return err
			}
			defer rec.Release()
			return fn(rec)
		}
		// The engine keeps nothing of a batch once it returns (see
		// local.Source): the reader may recycle its buffers.
		opts := warehouse.ReadOptions{Dictionaries: true, ReuseBuffers: true}
		err := warehouse.ReadEventsWith(ctx, cat, files, opts, func(rec arrow.RecordBatch) error {
			if rec.NumRows() >= smallBatchRows {
				if err := flush(); err != nil {
					return err
				}
				return fn(rec)
			}
			rec.Retain()
			small, rows = append(small, rec), rows+rec.NumRows()
			if rows >= smallBatchRows {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	}
}

// concatBatches concatenates record batches of the events schema (whose
// string columns may be dictionary arrays) holding rows rows in all into
// one of schema plain, with String columns (one batch is returned as is,
// retained).
func concatBatches(plain *arrow.Schema, recs []arrow.RecordBatch, rows int64) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	cols := make([]arrow.Array, plain.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for _, rec := range recs {
		if rec.NumCols() != int64(len(cols)) {
			return nil, fmt.Errorf("record batch has %d columns, want %d", rec.NumCols(), len(cols))
		}
	}
	parts := make([]arrow.Array, len(recs))
	for c := range cols {
		for i, rec := range recs {
			parts[i] = rec.Column(c)
			if d, ok := parts[i].(*array.Dictionary); ok {
				s, err := dictStrings(d)
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", plain.Field(c).Name, err)
				}
				defer s.Release()
				parts[i] = s
			}
		}
		var err error
		if cols[c], err = array.Concatenate(parts, memory.DefaultAllocator); err != nil {
			return nil, fmt.Errorf("concatenating column %s: %w", plain.Field(c).Name, err)
		}
	}
	return array.NewRecordBatch(plain, cols, rows), nil
}

// dictStrings decodes a dictionary array of strings.
func dictStrings(d *array.Dictionary) (arrow.Array, error) {
	vals, ok := d.Dictionary().(*array.String)
	if !ok {
		return nil, fmt.Errorf("dictionary of %s, want string", d.Dictionary().DataType())
	}
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	sb.Reserve(d.Len())
	for i := range d.Len() {
		if d.IsNull(i) {
			sb.AppendNull()
			continue
		}
		sb.Append(vals.Value(d.GetValueIndex(i)))
	}
	return sb.NewArray(), nil
}
