package warehouse

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReadEventRows reads mutated bytes of a small valid events file: the
// reader must never panic, and a file it cannot read must give a
// *CorruptFileError. The unmutated file reads back exactly.
func FuzzReadEventRows(f *testing.F) {
	// A small file (taobao, two row groups) keeps the fuzzer's
	// minimization of new inputs quick.
	cat := loadCatalog(f, "taobao")
	events := synthEvents(cat, 4, 3)
	var good bytes.Buffer
	require.NoError(f, writeEvents(&good, cat, events, 0, 2))
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()/2])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	// One file rewritten in place: truncating an open file is far cheaper
	// than os.WriteFile, which keeps executions (and minimization) fast.
	path := filepath.Join(f.TempDir(), "fuzz.parquet")
	file, err := os.Create(path)
	require.NoError(f, err)
	f.Cleanup(func() { file.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := file.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		got, err := ReadEventRows(context.Background(), cat, []string{path})
		if err != nil {
			var ce *CorruptFileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CorruptFileError: %v", err, err)
			}
			if bytes.Equal(data, good.Bytes()) {
				t.Fatalf("the valid file failed: %v", err)
			}
			return
		}
		for i, ev := range got {
			if len(ev.Values) != len(cat.Fields) {
				t.Fatalf("event %d has %d values, want %d", i, len(ev.Values), len(cat.Fields))
			}
		}
		if bytes.Equal(data, good.Bytes()) {
			require.Equal(t, events, got)
		}
	})
}
