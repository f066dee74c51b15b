package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runPortrait(t *testing.T, args ...string) string {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	require.NoError(t, root.Execute(), out.String())
	return out.String()
}

func TestImportAndWarehouseLs(t *testing.T) {
	wh := t.TempDir()
	src := filepath.Join(t.TempDir(), "events.csv")
	require.NoError(t, os.WriteFile(src, []byte("user_id,item_id,category_id,behavior,ts\n1,10,100,pv,1511658000\nbad,1,1,pv,1\n2,11,101,buy,1511661600\n"), 0o644))
	catalog := "../../schemas/catalogs/taobao.yaml"

	out := runPortrait(t, "import", "--quiet", "--catalog", catalog, "--warehouse", wh, src)
	require.Contains(t, out, src+": read 3, imported 2, rejected 1 (partition 1048576, 2 data files)")
	require.Contains(t, out, "rejects: "+filepath.Join(wh, "_rejects", "events.csv."))

	out = runPortrait(t, "import", "--quiet", "--catalog", catalog, "--warehouse", wh, src)
	require.Contains(t, out, src+": already imported")
	require.Contains(t, out, "nothing to do")

	out = runPortrait(t, "warehouse", "ls", "--warehouse", wh)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	require.Regexp(t, `^\s*TABLE\s+PARTITION\s+FILES\s+ROWS\s+BYTES\s+STATE$`, lines[0])
	require.Regexp(t, `^\s*events\s+dt=2017-11-26/hour=01\s+1\s+1\s+\d+\s+closed$`, lines[1])
	require.Regexp(t, `^\s*events\s+dt=2017-11-26/hour=02\s+1\s+1\s+\d+\s+closed$`, lines[2])
	require.Regexp(t, `^\s*total\s+2 partitions\s+2\s+2\s+\d+$`, lines[3])

	out = runPortrait(t, "warehouse", "ls", "--files", "--warehouse", wh)
	require.Contains(t, out, "part-1048576-2-2.parquet")
	require.Contains(t, out, "part-1048576-4-4.parquet")
}
