// Package jobs runs portrait's scheduled batch jobs (recompute, reconcile,
// load-events, compact, retention) on cron schedules from the config.
//
// The scheduler does not know what a job does: the caller registers each
// job's function (Job) and the scheduler runs it on its schedule or by hand
// (Scheduler.RunNow), always through the same path:
//
//   - a job never overlaps itself: a per-job mutex in the process and an
//     flock on <warehouse>/_jobs/<job>.lock across processes; a run that
//     finds either held is recorded as skipped;
//   - a failed attempt is retried with exponential backoff (Backoff,
//     doubling, capped at MaxBackoff) up to Retries times, unless its error
//     is marked Permanent;
//   - every attempt is recorded durably in the warehouse as JSON Lines
//     (<warehouse>/_jobs/runs-YYYY-MM-DD.jsonl, appended and fsynced) and,
//     when configured, in ClickHouse job_runs (ClickHouseRecorder);
//   - a run missed while the scheduler was down is run once on start, not
//     once per missed activation; a clock jump of many activations while it
//     waits also yields one run.
//
// Time comes from an injected Clock, so tests drive the schedule without
// sleeping. Schedules are robfig/cron specs with an optional seconds field
// and descriptors (@hourly, @every 1h); they are read in UTC unless they
// start with CRON_TZ=.
//
// The recompute job's cutoff logic lives here as plain functions
// (RecomputeCutoff, ClosedHours, ClosedWatermark) so that the job the caller
// wires around batch.Recompute needs no logic of its own.
//
// Metrics (registered on the Registerer passed in):
//
//	portrait_job_runs_total{job,status}            attempts recorded, by status ok|failed|skipped
//	portrait_job_duration_seconds{job}             duration of each attempt (histogram)
//	portrait_job_last_success_timestamp_seconds{job} end of the last successful attempt
package jobs
