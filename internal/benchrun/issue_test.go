package benchrun

import (
	"testing"
	"time"
)

// TestIssueOpenLoop checks the lookup stage's pacer: every request is
// issued once, in order, never before its scheduled time, and its
// reported lateness is exactly issue time minus schedule.
func TestIssueOpenLoop(t *testing.T) {
	const rate, total = 20_000, 2_000 // 100 ms of schedule
	issued := make([]time.Time, total)
	due := make(chan int, total)
	began := time.Now()
	late := issue(began, rate, total, issued, due)
	next := 0
	for i := range due {
		if i != next {
			t.Fatalf("request %d issued, want %d", i, next)
		}
		next++
		at := began.Add(time.Duration(i) * time.Second / rate)
		if issued[i].Before(at) {
			t.Fatalf("request %d issued %v before its schedule", i, at.Sub(issued[i]))
		}
		if late[i] != issued[i].Sub(at) {
			t.Fatalf("request %d: lateness %v, want %v", i, late[i], issued[i].Sub(at))
		}
	}
	if next != total {
		t.Fatalf("%d requests issued, want %d", next, total)
	}
	if took := time.Since(began); took < 100*time.Millisecond-time.Second/rate {
		t.Fatalf("schedule of 100ms issued in %v", took)
	}
}
