package warehouse

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// stringKeyCatalog has a string key and a field of every other type.
const stringKeyCatalog = `
name: strkey
events:
  key: account
  time: ts
  fields:
    account: string
    score: float64
    flag: bool
    n: int64
    ts: timestamp
bucket: 1h
tags:
  c: {agg: count, window: 1h}
`

// TestAppendRecordSortByKey reads a file into EventColumns with
// AppendRecord, clusters it with SortByKey and checks that it writes the
// same bytes as WriteEvents of the events sorted by (key, partition,
// offset): every column moved with its row, ties kept in place order.
func TestAppendRecordSortByKey(t *testing.T) {
	strKey, err := schemas.Parse([]byte(stringKeyCatalog))
	require.NoError(t, err)
	for _, cat := range []*schemas.Catalog{loadCatalog(t, "taobao"), loadCatalog(t, "ecommerce"), strKey} {
		t.Run(cat.Name, func(t *testing.T) {
			events := synthEvents(cat, 3000, 11)
			// Few keys, so that many rows share one.
			for i := range events {
				if cat.KeyField().Type == schemas.TypeString {
					events[i].Values[cat.Key] = fmt.Sprintf("k%d", (i*7)%40)
				} else {
					events[i].Values[cat.Key] = int64((i*7)%40 - 20)
				}
			}
			path := filepath.Join(t.TempDir(), "part-0-0-2999.parquet")
			_, err := WriteEventsFile(path, cat, events, 9)
			require.NoError(t, err)

			cols := NewEventColumns(cat)
			err = ReadEvents(context.Background(), cat, []string{path}, func(rec arrow.RecordBatch) error {
				newest, err := cols.AppendRecord(rec)
				require.Equal(t, schemas.Timestamp(9), newest)
				return err
			})
			require.NoError(t, err)
			require.Equal(t, len(events), cols.Len())
			cols.SortByKey()

			want := slices.Clone(events)
			slices.SortFunc(want, func(a, b schemas.Event) int {
				var byKey int
				if s, ok := a.Values[cat.Key].(string); ok {
					byKey = cmp.Compare(s, b.Values[cat.Key].(string))
				} else {
					byKey = cmp.Compare(a.Values[cat.Key].(int64), b.Values[cat.Key].(int64))
				}
				return cmp.Or(byKey, cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
			})
			var got, wantBytes bytes.Buffer
			require.NoError(t, WriteEventColumns(&got, cols, 9))
			require.NoError(t, WriteEvents(&wantBytes, cat, want, 9))
			require.True(t, bytes.Equal(wantBytes.Bytes(), got.Bytes()), "clustered file differs from the sorted events' file")
		})
	}
}

// TestAppendRecordRejects: a record that is not of the plain events
// schema (here: string columns as dictionaries) adds nothing.
func TestAppendRecordRejects(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	path := filepath.Join(t.TempDir(), "part-0-0-99.parquet")
	_, err := WriteEventsFile(path, cat, synthEvents(cat, 100, 1), 9)
	require.NoError(t, err)
	cols := NewEventColumns(cat)
	err = ReadEventsWith(context.Background(), cat, []string{path}, ReadOptions{Dictionaries: true}, func(rec arrow.RecordBatch) error {
		_, err := cols.AppendRecord(rec)
		return err
	})
	require.ErrorContains(t, err, "field behavior is a dictionary")
	require.Zero(t, cols.Len())
}
