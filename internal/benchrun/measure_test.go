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
