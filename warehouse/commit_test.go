package warehouse

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteFilesAtomic(t *testing.T) {
	root := t.TempDir()
	text := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	for _, tc := range []struct {
		name  string
		files []AtomicFile
		err   string
		want  map[string]string // relative path → content after the call
	}{
		{
			name: "new nested folders and a shared one",
			files: []AtomicFile{
				{filepath.Join(root, "a", "b", "one"), text("1")},
				{filepath.Join(root, "a", "b", "two"), text("22")},
				{filepath.Join(root, "c", "three"), text("333")},
			},
			want: map[string]string{"a/b/one": "1", "a/b/two": "22", "c/three": "333"},
		},
		{
			name: "replaces a file",
			files: []AtomicFile{
				{filepath.Join(root, "a", "b", "one"), text("one again")},
			},
			want: map[string]string{"a/b/one": "one again", "a/b/two": "22"},
		},
		{
			name: "a failed writer leaves nothing of the commit",
			files: []AtomicFile{
				{filepath.Join(root, "d", "ok"), text("fine")},
				{filepath.Join(root, "d", "bad"), func(w io.Writer) error {
					_, _ = io.WriteString(w, "half")
					return errors.New("boom")
				}},
			},
			err:  "writing " + filepath.Join(root, "d", "bad") + ": boom",
			want: map[string]string{"a/b/one": "one again", "c/three": "333"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes, err := WriteFilesAtomic(tc.files)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
			} else {
				require.NoError(t, err)
				require.Len(t, sizes, len(tc.files))
			}
			for rel, content := range tc.want {
				b, err := os.ReadFile(filepath.Join(root, rel))
				require.NoError(t, err)
				require.Equal(t, content, string(b))
			}
			for i, f := range tc.files {
				if tc.err == "" {
					require.Equal(t, int64(len(tc.want[strings.TrimPrefix(f.Path, root+"/")])), sizes[i])
				}
			}
			// No temp file survives, and a failed commit renamed nothing.
			err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				require.NoError(t, err)
				require.False(t, strings.HasPrefix(d.Name(), TempPrefix), "temp file %s left", path)
				if tc.err != "" && !d.IsDir() {
					require.NotContains(t, path, filepath.Join(root, "d"))
				}
				return nil
			})
			require.NoError(t, err)
		})
	}
}
