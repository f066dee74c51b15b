// Package ui is portrait's built-in status page: one HTML page with vanilla
// JavaScript, embedded in the binary (no build step, no CDN), served at /ui,
// that polls /ui/status.json every few seconds and draws live charts of
// throughput, lag, freshness and drift, with the newest snapshot, the last
// job runs and the conditions that are firing.
//
// The handler builds status.json from a StatusSource, which the process
// that mounts the page implements from its components (speed layer,
// landing, scheduler, reconciler). The page keeps the history for its
// charts in the browser, so the server holds no state. The package exports
// no metrics.
package ui

import (
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

//go:embed page.html
var page []byte

// Status is one reading of the pipeline's health: the body of
// /ui/status.json. Times are UTC; a zero time means unknown.
type Status struct {
	Now time.Time `json:"now"`
	// Throughput is events per second over the source's recent window.
	Throughput Throughput `json:"throughput"`
	// Lag is records behind per consumer group member and partition.
	Lag []PartitionLag `json:"lag"`
	// SpeedWatermark is the newest event time the speed layer applied;
	// LandingWatermark the landing watermark.
	SpeedWatermark   time.Time `json:"speed_watermark"`
	LandingWatermark time.Time `json:"landing_watermark"`
	// FreshnessSeconds is Now minus SpeedWatermark (filled in by the
	// handler when the source leaves it 0 and the watermark is known).
	FreshnessSeconds float64 `json:"freshness_seconds"`
	// FreshnessTargetSeconds is the freshness objective (default 60).
	FreshnessTargetSeconds float64     `json:"freshness_target_seconds"`
	Snapshot               *Snapshot   `json:"snapshot,omitempty"`
	Drift                  []TagDrift  `json:"drift"`
	Jobs                   []JobRun    `json:"jobs"`
	Firing                 []Condition `json:"firing"`
}

// Throughput is events per second.
type Throughput struct {
	Consumed float64 `json:"consumed"`
	Applied  float64 `json:"applied"`
	Landed   float64 `json:"landed"`
	DLQ      float64 `json:"dlq"`
}

// PartitionLag is one partition's consumer lag.
type PartitionLag struct {
	Group     string `json:"group"`
	Partition int32  `json:"partition"`
	Records   int64  `json:"records"`
}

// Snapshot is the newest committed batch snapshot.
type Snapshot struct {
	Cutoff time.Time `json:"cutoff"`
	Users  int64     `json:"users"`
	// AgeSeconds is Now minus Cutoff (filled in by the handler).
	AgeSeconds float64 `json:"age_seconds"`
}

// TagDrift is the last reconcile's result for one tag.
type TagDrift struct {
	Tag       string `json:"tag"`
	Compared  int64  `json:"compared"`
	Different int64  `json:"different"`
	// Share is (different)/compared, filled in by the handler.
	Share float64 `json:"share"`
}

// JobRun is the last run of one job.
type JobRun struct {
	Job     string    `json:"job"`
	Status  string    `json:"status"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Rows    int64     `json:"rows"`
	Error   string    `json:"error,omitempty"`
}

// Condition is something wrong right now, named like the alert that pages
// for it (dashboards/alerts.rules.yml), with its runbook anchor.
type Condition struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Runbook  string `json:"runbook,omitempty"`
}

// StatusSource reports the pipeline's current health.
type StatusSource interface {
	Status(r *http.Request) (Status, error)
}

// StatusFunc adapts a function to StatusSource.
type StatusFunc func(r *http.Request) (Status, error)

// Status calls f.
func (f StatusFunc) Status(r *http.Request) (Status, error) { return f(r) }

// NewHandler serves the page at /ui (and /ui/) and its data at
// /ui/status.json. now is the clock for derived fields (nil: time.Now).
func NewHandler(src StatusSource, now func() time.Time, log *slog.Logger) http.Handler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	servePage := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(page)
	}
	mux.HandleFunc("GET /ui", servePage)
	mux.HandleFunc("GET /ui/{$}", servePage)
	mux.HandleFunc("GET /ui/status.json", func(w http.ResponseWriter, r *http.Request) {
		st, err := src.Status(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			log.Warn("building status", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "reading status: " + err.Error()})
			return
		}
		derive(&st, now())
		if err := json.NewEncoder(w).Encode(st); err != nil {
			log.Debug("writing status", "err", err)
		}
	})
	return mux
}

// derive fills the fields computed from others, and makes nil lists empty
// so the page can iterate them.
func derive(st *Status, now time.Time) {
	if st.Now.IsZero() {
		st.Now = now.UTC()
	}
	if st.FreshnessTargetSeconds == 0 {
		st.FreshnessTargetSeconds = 60
	}
	if st.FreshnessSeconds == 0 && !st.SpeedWatermark.IsZero() {
		st.FreshnessSeconds = st.Now.Sub(st.SpeedWatermark).Seconds()
	}
	if st.Snapshot != nil && st.Snapshot.AgeSeconds == 0 && !st.Snapshot.Cutoff.IsZero() {
		st.Snapshot.AgeSeconds = st.Now.Sub(st.Snapshot.Cutoff).Seconds()
	}
	for i := range st.Drift {
		if d := &st.Drift[i]; d.Compared > 0 && d.Share == 0 {
			d.Share = float64(d.Different) / float64(d.Compared)
		}
	}
	if st.Lag == nil {
		st.Lag = []PartitionLag{}
	}
	if st.Drift == nil {
		st.Drift = []TagDrift{}
	}
	if st.Jobs == nil {
		st.Jobs = []JobRun{}
	}
	if st.Firing == nil {
		st.Firing = []Condition{}
	}
}
