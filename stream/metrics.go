package stream

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/portrait-dev/portrait/internal/dlq"
	"github.com/portrait-dev/portrait/internal/kafka"
)

// metrics are the speed layer's Prometheus metrics (see the package doc).
type metrics struct {
	consumed          prometheus.Counter
	applied           prometheus.Counter
	late              prometheus.Counter
	duplicates        prometheus.Counter
	dlq               *prometheus.CounterVec
	checkpointSeconds prometheus.Histogram
	checkpointUsers   prometheus.Counter
	checkpointBytes   prometheus.Histogram
	stateBytes        prometheus.Gauge
	users             prometheus.Gauge
	watermark         prometheus.Gauge
	lag               *kafka.Lag
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		consumed: f.NewCounter(prometheus.CounterOpts{
			Name: "portrait_speed_events_consumed_total",
			Help: "Records read from the events topic.",
		}),
		applied: f.NewCounter(prometheus.CounterOpts{
			Name: "portrait_speed_events_applied_total",
			Help: "Events folded into user state.",
		}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "portrait_speed_events_late_total",
			Help: "Events older than the kept buckets, left to the batch layer.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "portrait_speed_events_duplicate_total",
			Help: "Events dropped because their id was already applied.",
		}),
		dlq: f.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_speed_events_dlq_total",
			Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		checkpointSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "portrait_speed_checkpoint_duration_seconds",
			Help:    "Time to encode and sync one checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		checkpointUsers: f.NewCounter(prometheus.CounterOpts{
			Name: "portrait_speed_checkpoint_users_total",
			Help: "User states written by checkpoints.",
		}),
		checkpointBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "portrait_speed_checkpoint_size_bytes",
			Help:    "Bytes written by one checkpoint (the committed batch).",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 12), // 1 KiB … 4 GiB
		}),
		stateBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "portrait_speed_state_bytes",
			Help: "Disk space of the state store (Pebble tables, WAL and other files), as of the last checkpoint.",
		}),
		users: f.NewGauge(prometheus.GaugeOpts{
			Name: "portrait_speed_state_users",
			Help: "Users held in memory for the owned partitions.",
		}),
		watermark: f.NewGauge(prometheus.GaugeOpts{
			Name: "portrait_speed_watermark_seconds",
			Help: "Newest event time applied, unix seconds.",
		}),
		lag: kafka.NewLag(f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portrait_speed_consumer_lag_records",
			Help: "Records between the next offset to apply and the partition's high-water mark, per owned partition (set on assignment, removed on revocation).",
		}, []string{"partition"})),
	}
	for _, r := range dlq.Reasons {
		m.dlq.WithLabelValues(r)
	}
	return m
}
