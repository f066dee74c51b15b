package jobs

import (
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
			Help: "Unix time at which the job's last successful attempt ended.",
		}, []string{"job"}),
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
