package kafka

import (
	"strconv"
	"sync"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Lag keeps a consumer's per-partition lag gauge (records between the next
// offset to consume and the partition's high-water mark) the way every
// events consumer exports it: one series per owned partition, created on
// assignment, kept current while consuming, removed when the partition is
// revoked. The component registers the gauge vector (one label,
// "partition"); Lag only keeps its series.
type Lag struct {
	vec *prometheus.GaugeVec

	mu    sync.Mutex
	owned map[int32]bool // partitions with a series
}

// NewLag keeps the series of vec, whose one label is the partition.
func NewLag(vec *prometheus.GaugeVec) *Lag {
	return &Lag{vec: vec, owned: map[int32]bool{}}
}

// Keep removes the series of the partitions not in keep (the claims of a
// new session): call it at the start of Setup.
func (l *Lag) Keep(keep map[int32]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.owned {
		if !keep[p] {
			l.vec.DeleteLabelValues(partitionLabel(p))
			delete(l.owned, p)
		}
	}
}

// Assign creates p's series, set from the partition's newest offset when
// client can tell it (else left as it was), for a consumer starting at
// next: call it in Setup for every claim.
func (l *Lag) Assign(client sarama.Client, topic string, p int32, next int64) {
	g := l.Partition(p)
	if newest, err := client.GetOffset(topic, p, sarama.OffsetNewest); err == nil {
		g.Set(newest, next)
	}
}

// Partition is p's series, created if need be.
func (l *Lag) Partition(p int32) LagGauge {
	l.mu.Lock()
	l.owned[p] = true
	l.mu.Unlock()
	return LagGauge{g: l.vec.WithLabelValues(partitionLabel(p))}
}

// LagGauge is the lag series of one partition.
type LagGauge struct{ g prometheus.Gauge }

// Set sets the lag of a consumer at next on a partition whose high-water
// mark is hwm (never below 0) and returns hwm - next.
func (g LagGauge) Set(hwm, next int64) int64 {
	lag := hwm - next
	g.g.Set(float64(max(lag, 0)))
	return lag
}

func partitionLabel(p int32) string { return strconv.Itoa(int(p)) }
