package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestScheduler(t *testing.T, root string, clock Clock, reg prometheus.Registerer, jc JobConfig, run func(context.Context, RunContext) (RunResult, error)) *Scheduler {
	t.Helper()
	s, err := New(Options{
		Root:       root,
		Config:     Config{Jobs: map[string]JobConfig{Recompute: jc}},
		Jobs:       []Job{{Name: Recompute, Run: run}},
		Clock:      clock,
		Registerer: reg,
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	return s
}

func TestNoOverlap(t *testing.T) {
	tests := []struct {
		name   string
		hold   func(t *testing.T, s *Scheduler, root string) (release func())
		reason string
	}{
		{
			name: "same process",
			hold: func(t *testing.T, s *Scheduler, _ string) func() {
				started, release := make(chan struct{}), make(chan struct{})
				blocking := s.entries[Recompute]
				blocking.job.Run = func(ctx context.Context, _ RunContext) (RunResult, error) {
					close(started)
					<-release
					return RunResult{Rows: 7}, nil
				}
				done := make(chan error)
				go func() {
					_, err := s.RunNow(context.Background(), Recompute, RunOptions{})
					done <- err
				}()
				<-started
				return func() {
					close(release)
					require.NoError(t, <-done)
				}
			},
			reason: "already running in this process",
		},
		{
			name: "other process",
			hold: func(t *testing.T, _ *Scheduler, root string) func() {
				unlock, err := tryLock(root, Recompute) // a second open file: flock conflicts like another process
				require.NoError(t, err)
				return func() { require.NoError(t, unlock()) }
			},
			reason: "locked by another process",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			clock := newFakeClock(t0)
			var calls atomic.Int32
			s := newTestScheduler(t, root, clock, nil, DefaultJobConfig(Recompute),
				func(context.Context, RunContext) (RunResult, error) {
					calls.Add(1)
					return RunResult{}, nil
				})
			release := tt.hold(t, s, root)
			r, err := s.RunNow(context.Background(), Recompute, RunOptions{})
			require.ErrorIs(t, err, ErrSkipped)
			assert.Equal(t, StatusSkipped, r.Status)
			assert.Contains(t, r.Error, tt.reason)
			assert.Zero(t, calls.Load(), "the skipped run must not call the job")
			release()

			hist, err := s.History(Recompute, 0)
			require.NoError(t, err)
			var statuses []Status
			for _, h := range hist {
				statuses = append(statuses, h.Status)
			}
			if tt.name == "same process" {
				assert.ElementsMatch(t, []Status{StatusOK, StatusSkipped}, statuses)
			} else {
				assert.Equal(t, []Status{StatusSkipped}, statuses)
			}

			// Once released, the job runs again.
			s.entries[Recompute].job.Run = func(context.Context, RunContext) (RunResult, error) { return RunResult{}, nil }
			r, err = s.RunNow(context.Background(), Recompute, RunOptions{})
			require.NoError(t, err)
			assert.Equal(t, StatusOK, r.Status)
		})
	}
}

func TestRetryBackoff(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name       string
		retries    int
		failures   int  // attempts that fail before one succeeds
		permanent  bool // failures are marked Permanent
		want       []Status
		wantDelays []time.Duration
		wantErr    bool
	}{
		{name: "fails twice then succeeds", retries: 3, failures: 2,
			want: []Status{StatusFailed, StatusFailed, StatusOK}, wantDelays: []time.Duration{10 * time.Second, 20 * time.Second}},
		{name: "capped backoff", retries: 5, failures: 4,
			want:       []Status{StatusFailed, StatusFailed, StatusFailed, StatusFailed, StatusOK},
			wantDelays: []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second}},
		{name: "retries exhausted", retries: 1, failures: 5,
			want: []Status{StatusFailed, StatusFailed}, wantDelays: []time.Duration{10 * time.Second}, wantErr: true},
		{name: "permanent error not retried", retries: 3, failures: 5, permanent: true,
			want: []Status{StatusFailed}, wantErr: true},
		{name: "no retries", retries: 0, failures: 1,
			want: []Status{StatusFailed}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(t0)
			clock.auto = true
			reg := prometheus.NewRegistry()
			jc := JobConfig{Schedule: "@hourly", Retries: tt.retries, Backoff: 10 * time.Second, MaxBackoff: 25 * time.Second}
			var calls int
			s := newTestScheduler(t, t.TempDir(), clock, reg, jc, func(_ context.Context, rc RunContext) (RunResult, error) {
				calls++
				if rc.Attempt != calls {
					return RunResult{}, fmt.Errorf("attempt %d on call %d", rc.Attempt, calls)
				}
				clock.Advance(time.Second) // each attempt takes a second
				if calls <= tt.failures {
					if tt.permanent {
						return RunResult{}, Permanent(errBoom)
					}
					return RunResult{}, errBoom
				}
				return RunResult{Rows: 42}, nil
			})
			last, err := s.RunNow(context.Background(), Recompute, RunOptions{})
			if tt.wantErr {
				require.ErrorIs(t, err, errBoom)
			} else {
				require.NoError(t, err)
				assert.Equal(t, int64(42), last.Rows)
			}

			hist, err := s.History(Recompute, 0)
			require.NoError(t, err)
			require.Len(t, hist, len(tt.want))
			var got []Status
			var delays []time.Duration
			for i := len(hist) - 1; i >= 0; i-- { // oldest first
				r := hist[i]
				got = append(got, r.Status)
				assert.Equal(t, len(hist)-i, r.Attempt)
				assert.Equal(t, last.RunID, r.RunID, "every attempt shares the run id")
				assert.Equal(t, time.Second, r.Ended.Sub(r.Started))
				if i < len(hist)-1 {
					delays = append(delays, r.Started.Sub(hist[i+1].Ended))
				}
				if r.Status == StatusFailed {
					assert.Equal(t, "boom", r.Error)
				}
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantDelays, delays)

			failed := float64(min(tt.failures, len(tt.want)))
			assert.Equal(t, failed, metricValue(t, s.metrics.runs.WithLabelValues(Recompute, "failed")))
			if !tt.wantErr {
				assert.Equal(t, 1.0, metricValue(t, s.metrics.runs.WithLabelValues(Recompute, "ok")))
				assert.Equal(t, float64(last.Ended.Unix()), metricValue(t, s.metrics.lastSuccess.WithLabelValues(Recompute)))
			}
			mfs, err := reg.Gather()
			require.NoError(t, err)
			var observed uint64
			for _, mf := range mfs {
				if mf.GetName() == "portrait_job_duration_seconds" {
					observed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
				}
			}
			assert.Equal(t, uint64(len(tt.want)), observed, "one duration per attempt")
		})
	}
}

func TestCatchUpOnStart(t *testing.T) {
	tests := []struct {
		name      string
		lastOK    *time.Time // scheduled time of the last successful run
		down      time.Duration
		wantRuns  int
		wantSched time.Time
	}{
		{name: "ten missed activations run once", lastOK: &t0, down: 10*time.Hour + 30*time.Minute,
			wantRuns: 1, wantSched: t0.Add(10 * time.Hour)},
		{name: "one missed activation", lastOK: &t0, down: time.Hour,
			wantRuns: 1, wantSched: t0.Add(time.Hour)},
		{name: "nothing missed", lastOK: &t0, down: 59 * time.Minute, wantRuns: 0},
		{name: "no history: nothing to catch up", down: 10 * time.Hour, wantRuns: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.lastOK != nil {
				require.NoError(t, NewRunLog(root).Record(context.Background(), Run{
					Job: Recompute, RunID: "old", Attempt: 1, Trigger: TriggerSchedule,
					Scheduled: *tt.lastOK, Started: *tt.lastOK, Ended: tt.lastOK.Add(time.Minute), Status: StatusOK,
				}))
			}
			clock := newFakeClock(t0.Add(tt.down))
			var runs atomic.Int32
			s := newTestScheduler(t, root, clock, nil, JobConfig{Schedule: "0 * * * *", Enabled: true},
				func(context.Context, RunContext) (RunResult, error) {
					runs.Add(1)
					return RunResult{}, nil
				})
			require.NoError(t, s.Start(context.Background()))
			t.Cleanup(s.Stop)
			eventually(t, "the scheduler to wait for its next activation", func() bool { return clock.pending() == 1 })
			assert.Equal(t, int32(tt.wantRuns), runs.Load())
			if tt.wantRuns > 0 {
				last, ok, err := s.RunLog().Last(Recompute)
				require.NoError(t, err)
				require.True(t, ok)
				assert.Equal(t, TriggerCatchUp, last.Trigger)
				assert.Equal(t, tt.wantSched, last.Scheduled)
			}
		})
	}
}

func TestScheduleClockJumpRunsOnce(t *testing.T) {
	root := t.TempDir()
	clock := newFakeClock(t0.Add(30 * time.Minute))
	var runs atomic.Int32
	s := newTestScheduler(t, root, clock, nil, JobConfig{Schedule: "0 * * * *", Enabled: true},
		func(context.Context, RunContext) (RunResult, error) {
			runs.Add(1)
			return RunResult{}, nil
		})
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)

	steps := []struct {
		advance   time.Duration
		wantRuns  int32
		wantSched time.Time
	}{
		{advance: 20 * time.Minute, wantRuns: 0},                                  // 00:50: before the activation
		{advance: 10 * time.Minute, wantRuns: 1, wantSched: t0.Add(time.Hour)},    // 01:00
		{advance: 10 * time.Hour, wantRuns: 2, wantSched: t0.Add(11 * time.Hour)}, // jump over 10 activations
		{advance: 59 * time.Minute, wantRuns: 2},                                  // 11:59
		{advance: time.Minute, wantRuns: 3, wantSched: t0.Add(12 * time.Hour)},    // 12:00
	}
	eventually(t, "the first wait", func() bool { return clock.pending() == 1 })
	for i, st := range steps {
		clock.Advance(st.advance)
		eventually(t, fmt.Sprintf("step %d: %d runs and the next wait", i, st.wantRuns), func() bool {
			return runs.Load() == st.wantRuns && clock.pending() == 1
		})
		if !st.wantSched.IsZero() {
			last, ok, err := s.RunLog().Last(Recompute)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, st.wantSched, last.Scheduled, "step %d", i)
			assert.Equal(t, TriggerSchedule, last.Trigger)
		}
	}
	s.Stop()
	assert.Equal(t, int32(3), runs.Load())
}

func TestRunNowPassesCutoffAndList(t *testing.T) {
	root := t.TempDir()
	clock := newFakeClock(t0.Add(90 * time.Minute))
	var got RunContext
	s := newTestScheduler(t, root, clock, nil, JobConfig{Schedule: "15 * * * *", Enabled: true},
		func(_ context.Context, rc RunContext) (RunResult, error) {
			got = rc
			return RunResult{Rows: 3, Detail: "cutoff 5"}, nil
		})
	_, err := s.RunNow(context.Background(), "nope", RunOptions{})
	require.ErrorContains(t, err, `no job "nope"`)

	cut := schemasTS(t0)
	r, err := s.RunNow(context.Background(), Recompute, RunOptions{Cutoff: &cut})
	require.NoError(t, err)
	require.NotNil(t, got.Cutoff)
	assert.Equal(t, cut, *got.Cutoff)
	assert.Equal(t, TriggerManual, got.Trigger)
	assert.Equal(t, "cutoff 5", r.Detail)

	list, err := s.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, t0.Add(2*time.Hour+15*time.Minute), list[0].Next)
	require.NotNil(t, list[0].Last)
	assert.Equal(t, r.RunID, list[0].Last.RunID)
	assert.Equal(t, r.RunID, list[0].LastOK.RunID)
}

func TestPanicIsAFailedAttempt(t *testing.T) {
	s := newTestScheduler(t, t.TempDir(), newFakeClock(t0), nil, JobConfig{},
		func(context.Context, RunContext) (RunResult, error) { panic("oops") })
	r, err := s.RunNow(context.Background(), Recompute, RunOptions{})
	require.ErrorContains(t, err, "panic: oops")
	assert.Equal(t, StatusFailed, r.Status)
}

func TestLatestActivation(t *testing.T) {
	every, err := ParseSchedule("* * * * * *") // every second
	require.NoError(t, err)
	now := t0.Add(365 * 24 * time.Hour)
	start := time.Now()
	p, ok := latestActivation(every, every.Next(t0), now)
	require.True(t, ok)
	assert.Equal(t, now, p)
	assert.Less(t, time.Since(start), time.Second, "a year of one-second activations must not be walked one by one")

	_, ok = latestActivation(every, now.Add(time.Second), now)
	assert.False(t, ok)
}
