package cputime

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, line string
		want       time.Duration
	}{
		{"plain", "1234 (portrait) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 37 0 0 20 0 9 0", 2870 * time.Millisecond},
		{"name with spaces and parens", "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0", 30 * time.Millisecond},
		{"truncated", "77 (x) R 1 2 3", 0},
		{"no name", "garbage", 0},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 2 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseStat(tt.line); got != tt.want {
				t.Errorf("parseStat = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSelfAndProcessAgree burns CPU and checks that both readings of this
// process move forward and agree within /proc's 10 ms resolution.
func TestSelfAndProcessAgree(t *testing.T) {
	s0, p0 := Self(), Process(os.Getpid())
	for x, start := 0, time.Now(); time.Since(start) < 150*time.Millisecond; x++ {
		_ = x * x
	}
	ds, dp := Self()-s0, Process(os.Getpid())-p0
	if ds < 50*time.Millisecond {
		t.Fatalf("Self moved %v over 150 ms of spinning", ds)
	}
	if diff := ds - dp; diff < -30*time.Millisecond || diff > 30*time.Millisecond {
		t.Fatalf("Self moved %v, Process %v", ds, dp)
	}
	if Process(-1) != 0 {
		t.Fatal("Process of a missing pid is not 0")
	}
}
