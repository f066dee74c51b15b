package serving

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portrait-dev/portrait/schemas"
)

// ProfileSource is the merged view the API serves.
type ProfileSource interface {
	// Lookup returns the live profile of key (int64 or string, the
	// catalog's key type).
	Lookup(key any) (schemas.Profile, bool)
	// Watermark is the newest event time applied.
	Watermark() schemas.Timestamp
	// AsOf is the end of the bucket holding the watermark: the instant the
	// live values are as of.
	AsOf() schemas.Timestamp
	// Snapshot is the batch snapshot the lifetime tags rest on, if any.
	Snapshot() (schemas.Timestamp, bool)
	// CatalogHash identifies the catalog the values were computed with.
	CatalogHash() string
	// Ready reports whether the source has caught up enough to serve.
	Ready() bool
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatchKeys = 1000
)

// Config configures the lookup API.
type Config struct {
	// Token, when set, is the bearer token every request but the health
	// checks must carry.
	Token string `yaml:"token"`
	// MaxBodyBytes bounds a request body (413 beyond; default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBatchKeys bounds the keys of one batch get (default 1,000).
	MaxBatchKeys int `yaml:"max_batch_keys"`
}

// ApplyDefaults fills the fields left at zero.
func (c *Config) ApplyDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBatchKeys == 0 {
		c.MaxBatchKeys = DefaultMaxBatchKeys
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("serving.max_body_bytes: %d must be at least 1", c.MaxBodyBytes)
	}
	if c.MaxBatchKeys < 1 {
		return fmt.Errorf("serving.max_batch_keys: %d must be at least 1", c.MaxBatchKeys)
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return errors.New("serving.token: must not contain white space")
	}
	return nil
}

type metrics struct {
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
	// series are the endpoints' series, resolved at start: resolving
	// labels on every request (hashing and validating them) cost more
	// than the rest of the request's bookkeeping.
	series map[string]*endpointSeries
}

// endpointSeries are one endpoint's duration histogram and request
// counters by status code.
type endpointSeries struct {
	duration prometheus.Observer
	codes    map[int]prometheus.Counter
}

// lookupCodes are the HTTP status codes each lookup endpoint answers
// with; newMetrics creates their series at start, so that dashboards and
// alerts see zeros before the first request.
var lookupCodes = map[string][]int{
	"get":       {http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable},
	"batch_get": {http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable},
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := newMetricVecs(reg)
	m.series = make(map[string]*endpointSeries, len(lookupCodes))
	for endpoint, codes := range lookupCodes {
		s := &endpointSeries{duration: m.duration.WithLabelValues(endpoint), codes: make(map[int]prometheus.Counter, len(codes))}
		for _, code := range codes {
			s.codes[code] = m.requests.WithLabelValues(endpoint, strconv.Itoa(code))
		}
		m.series[endpoint] = s
	}
	return m
}

func newMetricVecs(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portrait_lookup_duration_seconds",
			Help:    "Time to answer a profile lookup, by endpoint (get, batch_get).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"endpoint"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_lookup_requests_total",
			Help: "Profile lookup requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
	}
}

// api serves lookups from one source.
type api struct {
	c       *schemas.Catalog
	src     ProfileSource
	cfg     Config
	m       *metrics
	log     *slog.Logger
	token   [sha256.Size]byte
	bufPool sync.Pool
}

// NewHandler builds the lookup API over src for catalog c. Metrics are
// registered on reg and /metrics serves reg; a nil reg serves no metrics.
func NewHandler(c *schemas.Catalog, src ProfileSource, cfg Config, reg *prometheus.Registry, log *slog.Logger) (http.Handler, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var registerer prometheus.Registerer = prometheus.NewRegistry()
	if reg != nil {
		registerer = reg
	}
	a := &api{c: c, src: src, cfg: cfg, m: newMetrics(registerer), log: log}
	a.bufPool.New = func() any { b := make([]byte, 0, 1024); return &b }
	if cfg.Token != "" {
		a.token = sha256.Sum256([]byte(cfg.Token))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/profiles/{id}", a.get)
	mux.HandleFunc("POST /v1/profiles:batchGet", a.batchGet)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.src.Ready() {
			writeError(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	if cfg.Token == "" {
		return mux, nil
	}
	return a.auth(mux), nil
}

// auth requires the bearer token on everything but the health checks.
func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		// Hashing first makes the comparison constant-time in the length
		// of the token too.
		sum := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portrait"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) observe(endpoint string, start time.Time, code int) {
	s := a.m.series[endpoint]
	s.duration.Observe(time.Since(start).Seconds())
	if c := s.codes[code]; c != nil {
		c.Inc()
	} else { // a code not created at start
		a.m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	}
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := a.serveGet(w, r.PathValue("id"))
	a.observe("get", start, code)
}

func (a *api) serveGet(w http.ResponseWriter, id string) int {
	if !a.src.Ready() {
		return writeError(w, http.StatusServiceUnavailable, "profiles are not ready yet")
	}
	key, err := parseKey(a.c, id)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	p, ok := a.src.Lookup(key)
	if !ok {
		return writeError(w, http.StatusNotFound, "no profile for "+a.c.KeyField().Name+" "+id)
	}
	bp := a.bufPool.Get().(*[]byte)
	b := appendProfile((*bp)[:0], a.c, &p, a.provenance())
	code := writeJSON(w, http.StatusOK, b)
	*bp = b
	a.bufPool.Put(bp)
	return code
}

// provenance is the part of a profile that is the same for every user.
type provenance struct {
	asOf, watermark schemas.Timestamp
	snapshot        schemas.Timestamp
	hasSnapshot     bool
	catalog         string
}

func (a *api) provenance() provenance {
	p := provenance{asOf: a.src.AsOf(), watermark: a.src.Watermark(), catalog: a.src.CatalogHash()}
	p.snapshot, p.hasSnapshot = a.src.Snapshot()
	return p
}

type batchRequest struct {
	Keys []json.RawMessage `json:"keys"`
}

func (a *api) batchGet(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := a.serveBatch(w, r)
	a.observe("batch_get", start, code)
}

func (a *api) serveBatch(w http.ResponseWriter, r *http.Request) int {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", a.cfg.MaxBodyBytes))
		}
		return writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
	}
	if !a.src.Ready() {
		return writeError(w, http.StatusServiceUnavailable, "profiles are not ready yet")
	}
	var req batchRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return writeError(w, http.StatusBadRequest, "malformed body: "+err.Error())
	}
	if dec.More() {
		return writeError(w, http.StatusBadRequest, "malformed body: data after the JSON object")
	}
	if req.Keys == nil {
		return writeError(w, http.StatusBadRequest, `malformed body: want {"keys": [...]}`)
	}
	if len(req.Keys) > a.cfg.MaxBatchKeys {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("%d keys, at most %d per request", len(req.Keys), a.cfg.MaxBatchKeys))
	}
	keys := make([]any, 0, len(req.Keys))
	seen := make(map[any]struct{}, len(req.Keys))
	for i, raw := range req.Keys {
		k, err := parseJSONKey(a.c, raw)
		if err != nil {
			return writeError(w, http.StatusBadRequest, fmt.Sprintf("keys[%d]: %v", i, err))
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		keys = append(keys, k)
	}
	prov := a.provenance()
	b := make([]byte, 0, 64+len(keys)*256)
	b = append(b, `{"profiles":[`...)
	var missing []any
	n := 0
	for _, k := range keys {
		p, ok := a.src.Lookup(k)
		if !ok {
			missing = append(missing, k)
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendProfile(b, a.c, &p, prov)
	}
	b = append(b, `],"missing":[`...)
	for i, k := range missing {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(b, k)
	}
	b = append(b, "]}"...)
	return writeJSON(w, http.StatusOK, b)
}

// parseKey reads a key from its text form (a URL path segment).
func parseKey(c *schemas.Catalog, s string) (any, error) {
	f := c.KeyField()
	if f.Type == schemas.TypeInt64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not an int64", f.Name, s)
		}
		return n, nil
	}
	if s == "" {
		return nil, fmt.Errorf("empty %s", f.Name)
	}
	return s, nil
}

// parseJSONKey reads a key from a JSON number or string.
func parseJSONKey(c *schemas.Catalog, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return parseKey(c, s)
	}
	if c.KeyField().Type == schemas.TypeInt64 {
		return parseKey(c, string(raw))
	}
	return nil, fmt.Errorf("%s must be a string, got %s", c.KeyField().Name, raw)
}

func writeJSON(w http.ResponseWriter, code int, b []byte) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
	return code
}

func writeError(w http.ResponseWriter, code int, msg string) int {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return writeJSON(w, code, b)
}
