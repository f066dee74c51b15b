package chbatch

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCutoff is 2017-12-03T00:00:00Z, within the Taobao sample's period.
const goldenCutoff schemas.Timestamp = 1512259200000

func catalogPath(name string) string {
	return filepath.Join("..", "..", "schemas", "catalogs", name+".yaml")
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), got, "%s differs; run go test -update after checking the change", path)
}

func TestGoldenSQL(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		t.Run(name, func(t *testing.T) {
			cat := schemas.MustLoad(catalogPath(name))
			checkGolden(t, name+".ddl.sql", strings.Join(DDL(cat), ";\n\n")+";\n")
			checkGolden(t, name+".recompute.sql", RecomputeSQL(cat, goldenCutoff)+";\n")
		})
	}
}
