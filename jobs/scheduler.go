package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/portrait-dev/portrait/schemas"
)

// Job is a named job; the scheduler calls Run for every attempt.
type Job struct {
	Name string
	Run  func(ctx context.Context, r RunContext) (RunResult, error)
}

// RunContext tells a job which run and attempt it is.
type RunContext struct {
	RunID   string
	Attempt int
	// Trigger is TriggerSchedule, TriggerCatchUp or TriggerManual.
	Trigger   string
	Scheduled time.Time
	// Cutoff, when set, is the cutoff asked for by hand (--cutoff); a job
	// that picks its own cutoff (recompute) uses it instead.
	Cutoff *schemas.Timestamp
	// Now is the scheduler's clock.
	Now    func() time.Time
	Logger *slog.Logger
}

// RunResult is what a successful attempt reports.
type RunResult struct {
	Rows int64
	// Detail is a one-line summary kept in the run record.
	Detail string
}

// RunOptions are the options of a run started by hand.
type RunOptions struct {
	Cutoff *schemas.Timestamp
}

// ErrSkipped is returned by RunNow when the job was already running, in
// this process or another; the run is recorded as skipped.
var ErrSkipped = errors.New("skipped: the job is already running")

// errPermanent marks errors that retrying cannot fix.
var errPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, errPermanent} }

// Permanent marks err so the scheduler does not retry the attempt that
// returned it (bad configuration, bad input). nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool { return errors.Is(err, errPermanent) }

// Options configure a Scheduler.
type Options struct {
	// Root is the warehouse folder: run records and locks go under
	// Root/_jobs.
	Root   string
	Config Config
	Jobs   []Job
	// Recorders get every run record besides the warehouse's RunLog
	// (e.g. ClickHouseRecorder). Their errors are logged, not fatal.
	Recorders  []Recorder
	Clock      Clock                 // default RealClock
	Logger     *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // nil: metrics are not registered
	// RecordTimeout bounds each record write (default 30s).
	RecordTimeout time.Duration
}

// Scheduler runs registered jobs on their schedules and by hand.
type Scheduler struct {
	root    string
	cfg     Config
	clock   Clock
	logger  *slog.Logger
	log     *RunLog
	extra   multiRecorder
	metrics *metrics
	timeout time.Duration
	names   []string
	entries map[string]*entry

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type entry struct {
	job   Job
	cfg   JobConfig
	sched cron.Schedule // nil without a schedule
	// running is held for the whole run, retries included.
	running sync.Mutex
}

// New checks the options and builds a scheduler; Start starts its
// schedules. A job in the config that is neither registered nor known is
// an error (a typo would otherwise never run).
func New(o Options) (*Scheduler, error) {
	if o.Root == "" {
		return nil, errors.New("jobs: root: the warehouse folder is required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	s := &Scheduler{
		root:    o.Root,
		cfg:     o.Config,
		clock:   o.Clock,
		logger:  o.Logger,
		log:     NewRunLog(o.Root),
		extra:   o.Recorders,
		timeout: o.RecordTimeout,
		entries: map[string]*entry{},
	}
	if s.clock == nil {
		s.clock = RealClock{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // unexported: metrics still work, nobody scrapes them
	}
	s.metrics = newMetrics(reg)
	for _, j := range o.Jobs {
		if j.Name == "" || j.Run == nil {
			return nil, fmt.Errorf("jobs: job %q: a job needs a name and a Run function", j.Name)
		}
		if _, dup := s.entries[j.Name]; dup {
			return nil, fmt.Errorf("jobs: job %s registered twice", j.Name)
		}
		e := &entry{job: j, cfg: o.Config.Job(j.Name)}
		if e.cfg.Schedule != "" {
			sched, err := ParseSchedule(e.cfg.Schedule)
			if err != nil {
				return nil, fmt.Errorf("jobs: jobs.%s.schedule: %w", j.Name, err)
			}
			e.sched = sched
		}
		s.entries[j.Name] = e
		s.names = append(s.names, j.Name)
	}
	for name := range o.Config.Jobs {
		if _, ok := s.entries[name]; !ok && !slices.Contains(Known, name) {
			return nil, fmt.Errorf("jobs: jobs.%s: no such job (registered: %v)", name, s.names)
		}
	}
	s.metrics.init(s.names, s.log, s.logger)
	return s, nil
}

// RunLog returns the warehouse run log the scheduler records in.
func (s *Scheduler) RunLog() *RunLog { return s.log }

// Start starts the schedule of every enabled job. A job whose last
// successful run was scheduled before an activation that has passed
// (the process was down) runs once now. Stop stops them.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("jobs: scheduler already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	for _, name := range s.names {
		e := s.entries[name]
		if !e.cfg.Enabled || e.sched == nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, e)
		}()
	}
	return nil
}

// Stop cancels the schedules and the runs in progress and waits for them
// to return.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// loop runs one job on its schedule until ctx is done.
func (s *Scheduler) loop(ctx context.Context, e *entry) {
	name := e.job.Name
	if last, ok, err := s.log.Last(name, StatusOK); err != nil {
		s.logger.Warn("reading last run for catch-up", "job", name, "err", err)
	} else if ok {
		now := s.clock.Now()
		if missed, ok := latestActivation(e.sched, e.sched.Next(last.Scheduled), now); ok {
			s.logger.Info("running missed job once", "job", name, "last_scheduled", last.Scheduled, "missed", missed)
			_, _ = s.execute(ctx, e, TriggerCatchUp, missed, RunOptions{})
		}
	}
	next := e.sched.Next(s.clock.Now())
	for {
		if next.IsZero() {
			s.logger.Warn("job schedule has no further activation", "job", name, "schedule", e.cfg.Schedule)
			return
		}
		if d := next.Sub(s.clock.Now()); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(d):
			}
			continue // re-check: a clock may deliver early
		}
		if ctx.Err() != nil {
			return
		}
		// One run however many activations passed (a clock jump, a
		// suspended process): the newest one.
		scheduled, _ := latestActivation(e.sched, next, s.clock.Now())
		_, _ = s.execute(ctx, e, TriggerSchedule, scheduled, RunOptions{})
		now := s.clock.Now()
		if next = e.sched.Next(scheduled); !next.After(now) {
			next = e.sched.Next(now) // activations passed while it ran are not made up
		}
	}
}

// latestActivation returns the newest activation of s at or before now,
// given first, an activation; ok is false when first is after now (or
// zero). It searches back from now in growing windows so that a long
// downtime on a short schedule costs few steps.
func latestActivation(s cron.Schedule, first, now time.Time) (time.Time, bool) {
	if first.IsZero() || first.After(now) {
		return time.Time{}, false
	}
	p := first
	for w := time.Second; w < 1<<30*time.Second; w *= 2 {
		t0 := now.Add(-w)
		if !t0.After(first) {
			break
		}
		if n := s.Next(t0); !n.IsZero() && !n.After(now) {
			p = n
			break
		}
	}
	for {
		n := s.Next(p)
		if n.IsZero() || n.After(now) {
			return p, true
		}
		p = n
	}
}

// RunNow runs a job now, by hand, through the same path as a scheduled
// run: locks, retries with backoff, records. It returns the record of the
// last attempt, and an error when the run failed (wrapping ErrSkipped when
// the job was already running).
func (s *Scheduler) RunNow(ctx context.Context, name string, opts RunOptions) (Run, error) {
	e, ok := s.entries[name]
	if !ok {
		return Run{}, fmt.Errorf("jobs: no job %q (registered: %v)", name, s.names)
	}
	return s.execute(ctx, e, TriggerManual, s.clock.Now(), opts)
}

// execute is one run: take the locks, attempt, retry, record.
func (s *Scheduler) execute(ctx context.Context, e *entry, trigger string, scheduled time.Time, opts RunOptions) (Run, error) {
	name := e.job.Name
	rec := Run{Job: name, RunID: newRunID(scheduled), Attempt: 1, Trigger: trigger, Scheduled: scheduled.UTC()}
	skip := func(reason string) (Run, error) {
		now := s.clock.Now().UTC()
		rec.Started, rec.Ended, rec.Status, rec.Error = now, now, StatusSkipped, reason
		s.record(ctx, rec)
		s.logger.Info("job run skipped", "job", name, "run_id", rec.RunID, "reason", reason)
		return rec, fmt.Errorf("job %s: %w (%s)", name, ErrSkipped, reason)
	}
	if !e.running.TryLock() {
		return skip("already running in this process")
	}
	defer e.running.Unlock()
	unlock, err := tryLock(s.root, name)
	if errors.Is(err, errLocked) {
		return skip(err.Error())
	}
	if err != nil {
		now := s.clock.Now().UTC()
		rec.Started, rec.Ended, rec.Status, rec.Error = now, now, StatusFailed, err.Error()
		s.record(ctx, rec)
		return rec, err
	}
	defer func() {
		if err := unlock(); err != nil {
			s.logger.Warn("releasing job lock", "job", name, "err", err)
		}
	}()

	for attempt := 1; ; attempt++ {
		rec.Attempt = attempt
		rec.Started = s.clock.Now().UTC()
		res, err := s.attempt(ctx, e, RunContext{
			RunID: rec.RunID, Attempt: attempt, Trigger: trigger, Scheduled: rec.Scheduled,
			Cutoff: opts.Cutoff, Now: s.clock.Now, Logger: s.logger.With("job", name, "run_id", rec.RunID, "attempt", attempt),
		})
		rec.Ended = s.clock.Now().UTC()
		rec.Rows, rec.Detail = res.Rows, res.Detail
		if err == nil {
			rec.Status, rec.Error = StatusOK, ""
			s.record(ctx, rec)
			s.logger.Info("job run ok", "job", name, "run_id", rec.RunID, "attempt", attempt,
				"rows", res.Rows, "duration", rec.Ended.Sub(rec.Started), "detail", res.Detail)
			return rec, nil
		}
		rec.Status, rec.Error = StatusFailed, err.Error()
		s.record(ctx, rec)
		final := ctx.Err() != nil || IsPermanent(err) || attempt > e.cfg.Retries
		s.logger.Warn("job attempt failed", "job", name, "run_id", rec.RunID, "attempt", attempt, "final", final, "err", err)
		if final {
			return rec, fmt.Errorf("job %s run %s failed after %d attempt(s): %w", name, rec.RunID, attempt, err)
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("job %s run %s: %w", name, rec.RunID, ctx.Err())
		case <-s.clock.After(e.cfg.backoff(attempt)):
		}
	}
}

// attempt calls the job once with its timeout; a panic is an error.
func (s *Scheduler) attempt(ctx context.Context, e *entry, rc RunContext) (res RunResult, err error) {
	if e.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.Timeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return e.job.Run(ctx, rc)
}

// record writes r to the warehouse log and the other recorders; a failure
// is logged, never fatal to the run.
func (s *Scheduler) record(ctx context.Context, r Run) {
	s.metrics.record(r)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err := s.log.Record(ctx, r); err != nil {
		s.logger.Error("recording job run in the warehouse", "job", r.Job, "run_id", r.RunID, "err", err)
	}
	if err := s.extra.Record(ctx, r); err != nil {
		s.logger.Warn("recording job run", "job", r.Job, "run_id", r.RunID, "err", err)
	}
}

// History returns a job's run records, newest first ("" for every job;
// limit <= 0 for all).
func (s *Scheduler) History(name string, limit int) ([]Run, error) {
	return s.log.History(name, limit)
}

// List describes the registered jobs.
func (s *Scheduler) List() ([]JobInfo, error) {
	return List(s.cfg, s.names, s.log, s.clock.Now())
}

// JobInfo describes one job for `portrait jobs list`.
type JobInfo struct {
	Name     string
	Schedule string
	Enabled  bool
	// Next is the next activation after now (zero when the job is
	// disabled or has no schedule).
	Next time.Time
	// Last is the newest run record (nil when none), LastOK the newest
	// successful one.
	Last, LastOK *Run
}

// List describes the named jobs from their config and the run log.
func List(cfg Config, names []string, log *RunLog, now time.Time) ([]JobInfo, error) {
	out := make([]JobInfo, 0, len(names))
	for _, name := range names {
		jc := cfg.Job(name)
		info := JobInfo{Name: name, Schedule: jc.Schedule, Enabled: jc.Enabled}
		if jc.Enabled && jc.Schedule != "" {
			sched, err := ParseSchedule(jc.Schedule)
			if err != nil {
				return nil, fmt.Errorf("jobs.%s.schedule: %w", name, err)
			}
			info.Next = sched.Next(now).UTC()
		}
		if r, ok, err := log.Last(name); err != nil {
			return nil, err
		} else if ok {
			info.Last = &r
		}
		if r, ok, err := log.Last(name, StatusOK); err != nil {
			return nil, err
		} else if ok {
			info.LastOK = &r
		}
		out = append(out, info)
	}
	return out, nil
}

// newRunID names a run by its scheduled time and a random suffix.
func newRunID(scheduled time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return scheduled.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
