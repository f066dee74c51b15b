package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCatalogValidate(t *testing.T) {
	out := runPortrait(t, "catalog", "validate", "../../schemas/catalogs/taobao.yaml")
	require.Regexp(t, `^OK \.\./\.\./schemas/catalogs/taobao\.yaml: catalog taobao, 10 tags \(8 aggregates of which 3 lifetime, 2 rules\), 5 fields, bucket 1h, hash [0-9a-f]{16}\n$`, out)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`name: bad
events:
  key: user_id
  time: ts
  fields:
    user_id: int64
    ts: timestamp
bucket: 1h
tags:
  n_24h: {agg: count, window: 24h}
  Bad-Name: {agg: count}
  s: {agg: sum, of: nope}
  r: {rule: 'n_24h > "x"'}
`), 0o644))
	root := newRoot()
	var buf bytes.Buffer
	root.SetOut(&buf)
	root.SetErr(&buf)
	root.SetArgs([]string{"catalog", "validate", bad})
	err := root.Execute()
	require.Error(t, err)
	require.Contains(t, err.Error(), "invalid catalog: 3 problem(s)")
	require.Contains(t, buf.String(), bad+": line 11: tag Bad-Name")
	require.Contains(t, buf.String(), bad+": line 12: tag s: of: unknown field \"nope\"")
	require.Contains(t, buf.String(), bad+": line 13: tag r: rule:")
}

func TestCatalogExplain(t *testing.T) {
	out := runPortrait(t, "catalog", "explain", "--cutoff", "2017-12-03T00:00:00Z", "../../schemas/catalogs/taobao.yaml")
	require.Contains(t, out, "CREATE TABLE IF NOT EXISTS `events` (")
	require.Contains(t, out, "CREATE VIEW IF NOT EXISTS `profiles_latest`")
	require.Contains(t, out, "-- Recompute as of 2017-12-03T00:00:00Z")
	require.Contains(t, out, "REPLACE PARTITION ID '1512259200'")
	require.Contains(t, out, "INSERT INTO `profiles_recompute_1512259200000`")

	root := newRoot()
	root.SetOut(&bytes.Buffer{})
	root.SetArgs([]string{"catalog", "explain", "--cutoff", "2017-12-03T00:30:00Z", "../../schemas/catalogs/taobao.yaml"})
	require.ErrorContains(t, root.Execute(), "not a bucket boundary")
}
