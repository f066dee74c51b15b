package serving

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portrait-dev/portrait/schemas"
)

const benchUsers = 1_000_000

// memSource is a plain in-memory source of int64-keyed profiles, the shape
// the speed layer's live view has.
type memSource struct {
	profiles map[int64][]any
	hash     string
}

func (m *memSource) Lookup(key any) (schemas.Profile, bool) {
	k, ok := key.(int64)
	if !ok {
		return schemas.Profile{}, false
	}
	v, ok := m.profiles[k]
	return schemas.Profile{Key: k, Values: v}, ok
}
func (m *memSource) Watermark() schemas.Timestamp        { return 1512298798000 }
func (m *memSource) AsOf() schemas.Timestamp             { return 1512298800000 }
func (m *memSource) Snapshot() (schemas.Timestamp, bool) { return 1512259200000, true }
func (m *memSource) CatalogHash() string                 { return m.hash }
func (m *memSource) Ready() bool                         { return true }

var bigSource = sync.OnceValue(func() *memSource {
	c := schemas.MustLoad(taobao)
	r := rand.New(rand.NewPCG(1, 2))
	// Values are drawn from a small pool of boxed values so building a
	// million users allocates only their slices.
	pool := make([][]any, len(c.Tags))
	for i, t := range c.Tags {
		for j := range 64 {
			var v any
			switch t.Type {
			case schemas.TypeInt64:
				v = int64(j * 1000)
			case schemas.TypeFloat64:
				v = float64(j) * 1.5
			case schemas.TypeBool:
				v = j%2 == 0
			case schemas.TypeTimestamp:
				v = schemas.Timestamp(1511658000000 + int64(j)*3600_000)
			case schemas.TypeString:
				v = fmt.Sprint("v", j)
			}
			if t.Nullable && j%8 == 0 {
				v = nil
			}
			pool[i] = append(pool[i], v)
		}
	}
	m := &memSource{profiles: make(map[int64][]any, benchUsers), hash: c.Hash}
	backing := make([]any, benchUsers*len(c.Tags))
	for u := range benchUsers {
		vals := backing[u*len(c.Tags) : (u+1)*len(c.Tags) : (u+1)*len(c.Tags)]
		for i := range vals {
			vals[i] = pool[i][r.IntN(64)]
		}
		m.profiles[int64(u+1)] = vals
	}
	return m
})

// nullWriter is a ResponseWriter that keeps only the status code.
type nullWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *nullWriter) Header() http.Header { return w.h }
func (w *nullWriter) WriteHeader(c int)   { w.code = c }
func (w *nullWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

func benchHandler(b *testing.B) http.Handler {
	b.Helper()
	c := schemas.MustLoad(taobao)
	src := bigSource()
	h, err := NewHandler(c, src, Config{}, prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func reportLatencies(b *testing.B, lat []time.Duration, elapsed time.Duration, perOp int) {
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat)*perOp)/elapsed.Seconds(), "lookups/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkGet serves GET /v1/profiles/{id} for random users of a
// million-user source, one request at a time, through the whole handler
// (routing, parsing, lookup, encoding, metrics).
func BenchmarkGet(b *testing.B) {
	h := benchHandler(b)
	r := rand.New(rand.NewPCG(3, 4))
	reqs := make([]*http.Request, 4096)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/v1/profiles/%d", 1+r.IntN(benchUsers)), nil)
	}
	w := &nullWriter{h: http.Header{}}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		clear(w.h)
		t0 := time.Now()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		lat[i] = time.Since(t0)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	reportLatencies(b, lat, time.Since(start), 1)
}

// BenchmarkGetParallel is BenchmarkGet from GOMAXPROCS goroutines.
func BenchmarkGetParallel(b *testing.B) {
	h := benchHandler(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var seed uint64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		seed++
		r := rand.New(rand.NewPCG(seed, 5))
		mu.Unlock()
		reqs := make([]*http.Request, 1024)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/v1/profiles/%d", 1+r.IntN(benchUsers)), nil)
		}
		w := &nullWriter{h: http.Header{}}
		for i := 0; pb.Next(); i++ {
			clear(w.h)
			h.ServeHTTP(w, reqs[i%len(reqs)])
			if w.code != http.StatusOK {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
}

// BenchmarkBatchGet100 serves batch gets of 100 random users.
func BenchmarkBatchGet100(b *testing.B) {
	h := benchHandler(b)
	r := rand.New(rand.NewPCG(6, 7))
	bodies := make([][]byte, 256)
	for i := range bodies {
		var buf bytes.Buffer
		buf.WriteString(`{"keys":[`)
		for j := range 100 {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprint(&buf, 1+r.IntN(benchUsers))
		}
		buf.WriteString("]}")
		bodies[i] = buf.Bytes()
	}
	w := &nullWriter{h: http.Header{}}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		req := httptest.NewRequest("POST", "/v1/profiles:batchGet", bytes.NewReader(bodies[i%len(bodies)]))
		clear(w.h)
		t0 := time.Now()
		h.ServeHTTP(w, req)
		lat[i] = time.Since(t0)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	reportLatencies(b, lat, time.Since(start), 100)
}
