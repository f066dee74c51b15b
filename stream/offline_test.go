package stream

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/kafkatest"
	"github.com/portrait-dev/portrait/schemas"
)

// TestOpenStateHolderChild holds a state store open until SIGTERM.
func TestOpenStateHolderChild(t *testing.T) {
	args := kafkatest.ChildArgs(t, "state", "ready")
	// The SIGTERM handler is in place before "ready" tells the parent it
	// may signal: a SIGTERM before it would kill the child outright.
	ctx, cancel := kafkatest.ChildContext()
	defer cancel()
	s, err := OpenState(Config{Catalog: schemas.MustLoad("../schemas/catalogs/taobao.yaml"), StateDir: args["state"]}, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(args["ready"], nil, 0o644))
	<-ctx.Done()
	require.NoError(t, s.Close())
}

func TestOpenStateRefusesStoreInUse(t *testing.T) {
	cat := schemas.MustLoad("../schemas/catalogs/taobao.yaml")
	dir := t.TempDir()
	ready := filepath.Join(t.TempDir(), "ready")
	child := kafkatest.StartChild(t, "TestOpenStateHolderChild", map[string]string{"state": dir, "ready": ready})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the child did not open the store")
		time.Sleep(20 * time.Millisecond)
	}
	_, err := OpenState(Config{Catalog: cat, StateDir: dir}, nil)
	require.ErrorIs(t, err, ErrStateLocked)
	require.ErrorContains(t, err, "a speed process runs? reconcile through its API instead")

	require.NoError(t, child.Process.Signal(syscall.SIGTERM))
	require.NoError(t, child.Wait())
	s, err := OpenState(Config{Catalog: cat, StateDir: dir}, nil)
	require.NoError(t, err, "free once the holder is gone")
	require.NoError(t, s.Close())
}
