package yield

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestAfterYieldsOnEveryNthStep runs a loop on one processor next to a
// goroutine that counts its turns: the other goroutine gets a turn at each
// yield point of the loop and at no other step.
func TestAfterYieldsOnEveryNthStep(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var turns atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			turns.Add(1)
			runtime.Gosched()
		}
	}()
	for turns.Load() == 0 {
		runtime.Gosched()
	}
	tests := []struct{ steps, every, min, max int64 }{
		{100, 1000, 0, 0}, // no yield point
		{100, 10, 8, 12},  // ten yield points
	}
	for _, tt := range tests {
		before := turns.Load()
		for i := range int(tt.steps) {
			After(i, int(tt.every))
		}
		if got := turns.Load() - before; got < tt.min || got > tt.max {
			t.Errorf("%d steps, yield every %d: the other goroutine ran %d times, want %d–%d", tt.steps, tt.every, got, tt.min, tt.max)
		}
	}
	close(stop)
	<-done
}
