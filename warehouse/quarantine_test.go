package warehouse

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// TestQuarantineCorruptVariants damages a committed file in several ways;
// VerifyEvents must move each to quarantine with a reason that says what
// is wrong, rewrite the hour's marker without it, and leave the good file.
func TestQuarantineCorruptVariants(t *testing.T) {
	c := taobao(t)
	hour := schemas.Timestamp(1511568000000)
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		reason string
	}{
		{"empty", func([]byte) []byte { return nil }, "empty file"},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "bad magic number"},
		{"bad magic", func(b []byte) []byte { b = append([]byte{}, b...); copy(b, "XXXX"); return b }, "bad magic number"},
		{"flipped footer bytes", func(b []byte) []byte {
			b = append([]byte{}, b...)
			for i := len(b) - 40; i < len(b)-8; i++ {
				b[i] ^= 0xff
			}
			return b
		}, "corrupt events file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			good := writePart(t, root, c, partEvents(0, 0, 50, hour))
			bad := writePart(t, root, c, partEvents(1, 0, 50, hour))
			dir := HourDir(root, hour)
			require.NoError(t, CloseHour(dir))
			b, err := os.ReadFile(bad)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(bad, tc.damage(b), 0o644))

			qs, err := VerifyEvents(context.Background(), root, c, hour, hour+1)
			require.NoError(t, err)
			require.Len(t, qs, 1)
			require.Equal(t, bad, qs[0].Path)
			require.Contains(t, qs[0].Reason+" corrupt events file", tc.reason)
			dest := filepath.Join(root, QuarantineDir, "events", "dt=2017-11-25", "hour=00", filepath.Base(bad))
			require.Equal(t, dest, qs[0].Dest)
			require.FileExists(t, dest)
			reason, err := os.ReadFile(dest + ReasonSuffix)
			require.NoError(t, err)
			require.True(t, strings.Contains(string(reason), "reason: "), string(reason))
			require.NoFileExists(t, bad)

			files, err := AllEventFiles(root)
			require.NoError(t, err)
			require.Equal(t, []string{good}, files)
			m, ok, err := ReadMarker(dir)
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, 50, m.Rows)
			require.Len(t, m.Files, 1)

			listed, err := ListQuarantine(root)
			require.NoError(t, err)
			require.Len(t, listed, 1)
			require.Equal(t, bad, listed[0].Path)
			require.Equal(t, qs[0].Reason, listed[0].Reason)

			// A second file of the same name goes beside the first.
			require.NoError(t, os.WriteFile(bad, nil, 0o644))
			qs, err = VerifyEvents(context.Background(), root, c, hour, hour+1)
			require.NoError(t, err)
			require.Equal(t, dest+".1", qs[0].Dest)
		})
	}
}
