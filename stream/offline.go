package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/stream/incremental"
	"github.com/portrait-dev/portrait/stream/state"
)

// ErrStateLocked is returned by OpenState when another process (a running
// speed layer) has the state store open: Pebble allows one opener.
var ErrStateLocked = errors.New("state store is open in another process")

// OpenState opens the state store of a speed layer that is not running
// and loads every partition stored in it, so that a reconcile and a
// repair can run without Kafka (portrait reconcile --state). Of cfg it
// needs Catalog, StateDir and Grace (the running layer's); with
// Kafka.Brokers and Kafka.DLQTopic set, RefreshDriftMarks also reads the
// dead-letter topic. Close it when done: repairs are written at once.
func OpenState(cfg Config, logger *slog.Logger) (*Speed, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("speed state: catalog required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("speed state: state_dir required")
	}
	if t := cfg.Catalog.KeyField().Type; t != schemas.TypeInt64 && t != schemas.TypeString {
		return nil, fmt.Errorf("speed state: key field %s is %s; the speed layer needs int64 or string keys", cfg.Catalog.KeyField().Name, t)
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	x, err := incremental.New(cfg.Catalog, cfg.Grace)
	if err != nil {
		return nil, fmt.Errorf("speed state: grace: %w", err)
	}
	store, err := state.Open(cfg.StateDir, cfg.Catalog.Hash, logger)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: %s (a speed process runs? reconcile through its API instead): %w", ErrStateLocked, cfg.StateDir, err)
		}
		return nil, err
	}
	m := newMetrics(prometheus.NewRegistry())
	s := &Speed{cfg: cfg, log: logger, m: m, x: x, store: store, eng: newEngine(x, store, m)}
	parts, err := store.Partitions()
	if err == nil {
		for _, p := range parts {
			if _, err = s.eng.load(p); err != nil {
				break
			}
		}
	}
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("speed state %s: %w", cfg.StateDir, err)
	}
	return s, nil
}
