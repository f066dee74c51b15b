package benchrun

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRecordsEachStage checks that Run writes a non-empty CPU profile
// and execution trace per stage, reports progress, and stops at the
// first failing stage naming it.
func TestRunRecordsEachStage(t *testing.T) {
	dir := t.TempDir()
	spin := func(context.Context) (Result, error) {
		x := 0
		for i := range 1_000_000 {
			x ^= i
		}
		return Result{Items: int64(x&1 + 1), Unit: "ops"}, nil
	}
	var progress bytes.Buffer
	opts := RunOptions{Progress: &progress, ProfileDir: filepath.Join(dir, "p"), TraceDir: filepath.Join(dir, "t")}
	stages := []Stage{
		{Name: "First stage", Run: spin},
		{Name: "lookups @20k/s + x", Run: spin},
		{Name: "broken", Run: func(context.Context) (Result, error) { return Result{}, errors.New("boom") }},
		{Name: "never", Run: spin},
	}
	res, err := Run(context.Background(), stages, opts)
	if err == nil || !strings.Contains(err.Error(), `"broken"`) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the broken stage's error", err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	for _, f := range []string{"p/first-stage.cpu.pprof", "t/first-stage.trace", "p/lookups-20k-s-x.cpu.pprof", "t/lookups-20k-s-x.trace"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if st.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p/never.cpu.pprof")); !os.IsNotExist(err) {
		t.Errorf("a stage after the failure was recorded: %v", err)
	}
	if !strings.Contains(progress.String(), "bench: First stage: ") {
		t.Errorf("progress %q lacks the first stage's line", progress.String())
	}
}
