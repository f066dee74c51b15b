package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/serving"
	"github.com/portrait-dev/portrait/stream"
	"github.com/portrait-dev/portrait/warehouse"
)

// The speed layer is what the reconciler and the admin endpoint need.
var (
	_ serving.SpeedView   = (*stream.Speed)(nil)
	_ serving.CauseSource = (*stream.Speed)(nil)
	_ serving.Repairer    = (*stream.Speed)(nil)
)

const taobaoCatalog = "../../schemas/catalogs/taobao.yaml"

func runReconcile(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newReconcileCmd() // fresh flags every run
	var out, stderr bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestReconcileFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"neither", []string{"--catalog", taobaoCatalog},
			"give exactly one of --api ADDR (a running speed process) or --state DIR (its state store, no process running)"},
		{"both", []string{"--catalog", taobaoCatalog, "--api", "x:1", "--state", "d"},
			"give exactly one of --api ADDR (a running speed process) or --state DIR (its state store, no process running)"},
		{"format", []string{"--format", "xml", "--state", "d"}, `--format "xml": want table or json`},
		{"snapshot", []string{"--snapshot", "soon", "--state", "d"},
			`--snapshot: "soon" is neither latest, RFC 3339 nor unix seconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReconcile(t, tc.args...)
			require.EqualError(t, err, tc.want)
		})
	}
}

// snapshotWarehouse writes generated events and a snapshot of cutoff.
func snapshotWarehouse(t *testing.T, cat *schemas.Catalog) (string, schemas.Timestamp) {
	t.Helper()
	root := t.TempDir()
	o := gen.Defaults(4)
	o.Events, o.Users, o.Partitions = 300, 12, 1
	events := gen.Events(cat, o)
	_, err := warehouse.AppendEvents(root, cat, events, 0, warehouse.PartFileName)
	require.NoError(t, err)
	cutoff := cat.BucketStart(events[len(events)-1].Time)
	_, err = batch.Recompute(context.Background(), batch.Config{Root: root, Catalog: cat, Cutoff: cutoff})
	require.NoError(t, err)
	return root, cutoff
}

func TestReconcileStateAndAPI(t *testing.T) {
	cat := schemas.MustLoad(taobaoCatalog)
	root, cutoff := snapshotWarehouse(t, cat)
	state := t.TempDir()
	s, err := stream.OpenState(stream.Config{Catalog: cat, StateDir: state}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// An empty speed state: every snapshot user is only in the batch.
	out, err := runReconcile(t, "--catalog", taobaoCatalog, "--warehouse", root, "--state", state, "--format", "json")
	require.NoError(t, err)
	var rep serving.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, cutoff.String(), rep.SnapshotText)
	assert.Equal(t, 12, rep.BatchUsers)
	assert.Equal(t, 12, rep.Drifting)
	assert.EqualValues(t, 12, rep.Tags[0].OnlyBatch)
	_, err = os.Stat(filepath.Join(warehouse.SnapshotDir(root, cutoff), serving.ReconcileFile))
	require.NoError(t, err)

	table, err := runReconcile(t, "--catalog", taobaoCatalog, "--warehouse", root, "--state", state, "--snapshot", cutoff.String())
	require.NoError(t, err)
	assert.Contains(t, table, "users: batch 12, speed 0, either 12, drifting 12")

	// The same through a speed process's admin endpoint.
	s, err = stream.OpenState(stream.Config{Catalog: cat, StateDir: state}, nil)
	require.NoError(t, err)
	defer s.Close()
	h, err := serving.NewAdminHandler(serving.AdminConfig{Token: "t0k", Catalog: cat, Root: root, Speed: s})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	t.Setenv("PORTRAIT_ADMIN_TOKEN", "t0k")
	out, err = runReconcile(t, "--catalog", taobaoCatalog, "--warehouse", root, "--api", srv.URL, "--format", "json")
	require.NoError(t, err)
	var viaAPI serving.Report
	require.NoError(t, json.Unmarshal([]byte(out), &viaAPI))
	assert.Equal(t, rep.Tags, viaAPI.Tags)

	_, err = runReconcile(t, "--catalog", taobaoCatalog, "--warehouse", root, "--api", srv.URL, "--token", "wrong")
	require.ErrorContains(t, err, "401 Unauthorized: missing or wrong bearer token")
}
