package jobs

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_job_runs_total",
			Help: "Job attempts recorded, by job and status (ok, failed, skipped).",
		}, []string{"job", "status"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portrait_job_duration_seconds",
			Help:    "Duration of each job attempt.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10), // 0.1s … ~7h
		}, []string{"job"}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portrait_job_last_success_timestamp_seconds",
			Help: "Unix time at which the job's last successful attempt ended (from the run log at start); 0 before the first.",
		}, []string{"job"}),
	}
}

// statuses are the values of the status label of portrait_job_runs_total.
var statuses = []Status{StatusOK, StatusFailed, StatusSkipped}

// init creates the series of every registered job before its first run,
// so that dashboards and alerts see zeros instead of nothing: runs for
// each status, an empty duration histogram, and the last success as the
// run log has it (0 when it has none).
func (m *metrics) init(names []string, log *RunLog, logger *slog.Logger) {
	for _, job := range names {
		for _, st := range statuses {
			m.runs.WithLabelValues(job, string(st))
		}
		m.duration.WithLabelValues(job)
		last := m.lastSuccess.WithLabelValues(job)
		r, ok, err := log.Last(job, StatusOK)
		switch {
		case err != nil:
			logger.Warn("reading the run log for the last success", "job", job, "err", err)
		case ok:
			last.Set(float64(r.Ended.UnixNano()) / 1e9)
		}
	}
}

func (m *metrics) record(r Run) {
	m.runs.WithLabelValues(r.Job, string(r.Status)).Inc()
	if r.Status == StatusSkipped {
		return
	}
	m.duration.WithLabelValues(r.Job).Observe(r.Ended.Sub(r.Started).Seconds())
	if r.Status == StatusOK {
		m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.Ended.UnixNano()) / 1e9)
	}
}
