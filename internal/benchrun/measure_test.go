package benchrun

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMeasureAndTable(t *testing.T) {
	r, err := Measure("spin", func() (Result, error) {
		buf := make([]byte, 64<<20) // touch 64 MiB so the peak moves
		for i := range buf {
			buf[i] = byte(i)
		}
		return Result{Items: 2_000_000, Unit: "events", Target: 1e6, Latencies: []time.Duration{1, 2, 3, 4, 100}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Wall <= 0 || r.CPU <= 0 || r.PeakRSS < 64<<20 {
		t.Fatalf("wall %v cpu %v peak %d", r.Wall, r.CPU, r.PeakRSS)
	}
	if r.Percentile(50) != 3 || r.Percentile(100) != 100 {
		t.Fatalf("p50 %v p100 %v", r.Percentile(50), r.Percentile(100))
	}
	var b bytes.Buffer
	PrintTable(&b, 2, []Result{r})
	for _, want := range []string{"spin", "2000000", "events", "/s/core", "peak MB"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestTableFigures(t *testing.T) {
	// 4M items in 2 s wall and 1 s of CPU on 2 cores, target 1M/s per core:
	// 2M/s, 1M/s per core (1.00x), 4M per CPU-second (4.00x), 0.25 CPU s/M.
	r := Result{Stage: "x", Items: 4_000_000, Unit: "rows", Wall: 2 * time.Second, CPU: time.Second, Target: 1e6}
	var b bytes.Buffer
	PrintTable(&b, 2, []Result{r})
	lines := strings.Split(b.String(), "\n")
	var row []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "x" {
			row = f
		}
	}
	want := []string{"x", "4000000", "rows", "2.00", "2.00M", "1.00M", "4.00M", "0.25", "-", "-", "0", "1.00M/s/core", "1.00x", "4.00x"}
	if strings.Join(row, " ") != strings.Join(want, " ") {
		t.Fatalf("row\n got %q\nwant %q\n%s", row, want, b.String())
	}
	if r.PerCPUSecond() != 4e6 || (Result{Items: 1}).PerCPUSecond() != 0 {
		t.Fatalf("PerCPUSecond %v", r.PerCPUSecond())
	}
}
