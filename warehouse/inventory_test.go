package warehouse

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestInventory(t *testing.T) {
	cat := loadCatalog(t, "taobao")
	root := t.TempDir()
	h := schemas.Timestamp(1_511_658_000_000)
	ev := func(off int64, ts schemas.Timestamp) schemas.Event {
		return schemas.Event{Values: []any{int64(1), int64(2), int64(3), "pv", ts}, Time: ts, Partition: 0, Offset: off}
	}
	// Hour 01 closed with two rows; hour 02 closed, then a straggler lands.
	_, err := AppendEvents(root, cat, []schemas.Event{ev(1, h), ev(2, h+1), ev(3, h+3600_000)}, 0, PartFileName)
	require.NoError(t, err)
	_, err = WriteHourFiles(root, cat, []schemas.Event{ev(4, h+3600_000)}, 0, PartFileName)
	require.NoError(t, err)
	// A snapshot folder without a marker yet.
	snap := SnapshotDir(root, h)
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(snap, "part-0.parquet"), []byte("x"), 0o644))

	parts, err := Inventory(root)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	for i, want := range []struct {
		table, name      string
		files            int
		rows             int64
		marked, complete bool
	}{
		{EventsTable, "dt=2017-11-26/hour=01", 1, 2, true, true},
		{EventsTable, "dt=2017-11-26/hour=02", 2, 1, true, false},
		{ProfilesTable, "snapshot=20171126T010000Z", 1, 0, false, false},
	} {
		p := parts[i]
		require.Equal(t, want.table, p.Table)
		require.Equal(t, want.name, p.Name)
		require.Len(t, p.Files, want.files, p.Name)
		require.Equal(t, want.rows, p.Rows, p.Name)
		require.Equal(t, want.marked, p.Marked, p.Name)
		require.Equal(t, want.complete, p.Complete, p.Name)
	}
	require.Equal(t, int64(-1), parts[1].Files[1].Rows, "the straggler is not in the marker")
}
