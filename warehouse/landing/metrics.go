package landing

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/kafka"
)

type metrics struct {
	consumed     prometheus.Counter
	skipped      prometheus.Counter
	rows         prometheus.Counter
	files        prometheus.Counter
	bytes        prometheus.Counter
	dlq          *prometheus.CounterVec
	watermark    prometheus.Gauge
	closed       prometheus.Counter
	reopened     prometheus.Counter
	loaded       prometheus.Counter
	loadErrors   prometheus.Counter
	reloadQueue  prometheus.Gauge
	quarantined  prometheus.Counter
	flushSeconds prometheus.Histogram
	lag          *kafka.Lag
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		consumed: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_records_consumed_total",
			Help: "Records read from the events topic."}),
		skipped: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_records_skipped_total",
			Help: "Records read again after a restart and dropped because a committed file already holds them."}),
		rows: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_rows_total",
			Help: "Event rows written to warehouse files."}),
		files: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_files_total",
			Help: "Warehouse files committed."}),
		bytes: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_written_bytes_total",
			Help: "Bytes of warehouse files committed."}),
		dlq: f.NewCounterVec(prometheus.CounterOpts{Name: "portrait_landing_dlq_records_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		watermark: f.NewGauge(prometheus.GaugeOpts{Name: "portrait_landing_watermark_seconds",
			Help: "The landing watermark (unix seconds): the least event time landed over the partitions that are not idle."}),
		closed: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_hours_closed_total",
			Help: "Event hours closed with _SUCCESS for the first time."}),
		reopened: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_hours_reopened_total",
			Help: "Closed event hours that got stragglers and were closed again."}),
		loaded: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_hours_loaded_total",
			Help: "Event hours loaded into ClickHouse."}),
		loadErrors: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_load_errors_total",
			Help: "Failed attempts to load an hour into ClickHouse (retried)."}),
		reloadQueue: f.NewGauge(prometheus.GaugeOpts{Name: "portrait_landing_reload_queue_hours",
			Help: "Hours waiting to be loaded into ClickHouse."}),
		quarantined: f.NewCounter(prometheus.CounterOpts{Name: "portrait_landing_files_quarantined_total",
			Help: "Warehouse files found corrupt while loading and moved to quarantine."}),
		flushSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "portrait_landing_flush_duration_seconds",
			Help: "Time to commit one partition's buffered records to files.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		lag: kafka.NewLag(f.NewGaugeVec(prometheus.GaugeOpts{Name: "portrait_landing_consumer_lag_records",
			Help: "Records between the next offset to land and the partition's high-water mark, per owned partition (set on assignment, removed on revocation)."},
			[]string{"partition"})),
	}
	for _, r := range dlq.Reasons {
		m.dlq.WithLabelValues(r)
	}
	return m
}
