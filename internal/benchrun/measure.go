// Package benchrun is the harness behind `make bench`: it runs named
// stages (import, recompute, publish, …) over one deterministic synthetic
// data set and prints one table with throughput, CPU seconds per million
// items, latency percentiles and peak memory, next to the targets.
//
// Figures are for comparing within one run on one machine; the harness
// says how many cores it had, and throughput per core divides by that.
package benchrun

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/internal/cputime"
)

// Result is what one stage measured.
type Result struct {
	Stage string
	// Items is what the stage processed (events or rows), named by Unit.
	Items int64
	Unit  string
	Bytes int64
	Wall  time.Duration
	// CPU is the user+system time of this process; stages whose work runs
	// in another process (ClickHouse) say so in Note.
	CPU time.Duration
	// BrokerCPU is the CPU time of the Kafka broker's process during the
	// stage when it runs as a child process (not in CPU then).
	BrokerCPU time.Duration
	// PeakRSS is this process's peak resident memory during the stage.
	PeakRSS int64
	// Latencies, when set, give p50 and p99.
	Latencies []time.Duration
	// Target is the goal in items/s per core (0: none), TargetTotal the
	// goal in items/s for the whole machine (0: none).
	Target, TargetTotal float64
	Note                string
}

// PerSecond is the throughput of the stage.
func (r Result) PerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Items) / r.Wall.Seconds()
}

// PerCPUSecond is the items processed per CPU-second of this process:
// the per-core throughput when the cores are not all busy, robust
// against a shared machine (0 when the stage used no CPU here).
func (r Result) PerCPUSecond() float64 {
	if r.CPU <= 0 {
		return 0
	}
	return float64(r.Items) / r.CPU.Seconds()
}

// CPUPerMillion is CPU seconds per million items.
func (r Result) CPUPerMillion() float64 {
	if r.Items == 0 {
		return 0
	}
	return r.CPU.Seconds() / (float64(r.Items) / 1e6)
}

// Percentile returns the p-th percentile (0..100) of the latencies.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), r.Latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	i := int(p / 100 * float64(len(l)-1))
	return l[i]
}

// Measure runs f and fills Wall, CPU and PeakRSS of the result it returns,
// unless f measured a part of itself (a result with Wall set), whose
// figures are kept.
func Measure(stage string, f func() (Result, error)) (Result, error) {
	resetPeakRSS()
	cpu0 := cputime.Self()
	t0 := time.Now()
	r, err := f()
	if r.Wall == 0 {
		r.Wall = time.Since(t0)
		r.CPU = cputime.Self() - cpu0
		r.PeakRSS = peakRSS()
	}
	r.Stage = stage
	return r, err
}

// resetPeakRSS asks Linux to restart the VmHWM high-water mark, so each
// stage reports its own peak. Elsewhere the peak is the process's.
func resetPeakRSS() {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// PrintTable writes the results as an aligned text table.
func PrintTable(w io.Writer, cores int, results []Result) {
	fmt.Fprintf(w, "portrait bench — %d cores, %s/%s, %s\n\n", cores, runtime.GOOS, runtime.GOARCH, runtime.Version())
	header := []string{"stage", "items", "unit", "wall s", "items/s", "per core/s", "per CPU-s", "CPU s/M", "p50", "p99", "peak MB", "target", "vs target", "CPU vs target"}
	rows := [][]string{header}
	for _, r := range results {
		target, vs, cpuVs := "-", "-", "-"
		perCore := r.PerSecond() / float64(max(cores, 1))
		switch {
		case r.Target > 0:
			target = human(r.Target) + "/s/core"
			vs = fmt.Sprintf("%.2fx", perCore/r.Target)
			if r.CPU > 0 {
				cpuVs = fmt.Sprintf("%.2fx", r.PerCPUSecond()/r.Target)
			}
		case r.TargetTotal > 0:
			target = human(r.TargetTotal) + "/s"
			vs = fmt.Sprintf("%.2fx", r.PerSecond()/r.TargetTotal)
		}
		p50, p99 := "-", "-"
		if len(r.Latencies) > 0 {
			p50, p99 = r.Percentile(50).String(), r.Percentile(99).String()
		}
		cpu, perCPU := fmt.Sprintf("%.2f", r.CPUPerMillion()), human(r.PerCPUSecond())
		if r.CPU == 0 {
			cpu, perCPU = "-", "-"
		}
		rows = append(rows, []string{
			r.Stage, strconv.FormatInt(r.Items, 10), r.Unit, fmt.Sprintf("%.2f", r.Wall.Seconds()),
			human(r.PerSecond()), human(perCore), perCPU, cpu, p50, p99,
			strconv.FormatInt(r.PeakRSS>>20, 10), target, vs, cpuVs,
		})
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for i, row := range rows {
		for j, c := range row {
			fmt.Fprintf(w, "%-*s  ", widths[j], c)
		}
		fmt.Fprintln(w)
		if i == 0 {
			for j := range row {
				fmt.Fprint(w, strings.Repeat("-", widths[j]), "  ")
			}
			fmt.Fprintln(w)
		}
	}
	for _, r := range results {
		note := r.Note
		if r.BrokerCPU > 0 {
			with := r
			with.CPU += r.BrokerCPU
			note += fmt.Sprintf("; the broker process used %.2f CPU-s more (with it: %s per CPU-s, %.2f CPU s/M)",
				r.BrokerCPU.Seconds(), human(with.PerCPUSecond()), with.CPUPerMillion())
		}
		if note != "" {
			fmt.Fprintf(w, "\n%s: %s", r.Stage, note)
		}
	}
	fmt.Fprintln(w)
}

func human(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
