package serving

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

const taobao = "../schemas/catalogs/taobao.yaml"

// fakeSource is an in-memory ProfileSource.
type fakeSource struct {
	profiles    map[any]schemas.Profile
	watermark   schemas.Timestamp
	asOf        schemas.Timestamp
	snapshot    schemas.Timestamp
	hasSnapshot bool
	hash        string
	ready       atomic.Bool
}

func (f *fakeSource) Lookup(key any) (schemas.Profile, bool) {
	p, ok := f.profiles[key]
	return p, ok
}
func (f *fakeSource) Watermark() schemas.Timestamp { return f.watermark }
func (f *fakeSource) AsOf() schemas.Timestamp      { return f.asOf }
func (f *fakeSource) Snapshot() (schemas.Timestamp, bool) {
	return f.snapshot, f.hasSnapshot
}
func (f *fakeSource) CatalogHash() string { return f.hash }
func (f *fakeSource) Ready() bool         { return f.ready.Load() }

func ts(s string) schemas.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return schemas.TimestampOf(t)
}

// taobaoSource holds users 1 and 2 of the taobao catalog.
func taobaoSource(c *schemas.Catalog) *fakeSource {
	// pv_24h buys_7d items_seen_7d top_category_7d last_buy_cat first_seen buyer_7d window_shopper carts_24h last_seen
	f := &fakeSource{
		profiles: map[any]schemas.Profile{
			int64(1): {Key: int64(1), Values: []any{int64(25), int64(0), int64(9), int64(2520377), nil,
				ts("2017-11-25T00:01:10Z"), false, true, int64(2), schemas.Timestamp(1511658000123)}},
			int64(2): {Key: int64(2), Values: []any{int64(0), int64(0), int64(0), nil, nil, nil, false, false, int64(0), nil}},
		},
		watermark: ts("2017-12-03T10:59:58Z"), asOf: ts("2017-12-03T11:00:00Z"),
		snapshot: ts("2017-12-03T00:00:00Z"), hasSnapshot: true, hash: c.Hash,
	}
	f.ready.Store(true)
	return f
}

func newTestHandler(t *testing.T, c *schemas.Catalog, src ProfileSource, cfg Config) (http.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := NewHandler(c, src, cfg, reg, nil)
	require.NoError(t, err)
	return h, reg
}

func do(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestGetGolden(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, _ := newTestHandler(t, c, taobaoSource(c), Config{})
	rec := do(h, "GET", "/v1/profiles/1", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	got := strings.ReplaceAll(rec.Body.String(), c.Hash, "HASH")
	golden := "testdata/get_profile.golden.json"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

func TestStatusCodes(t *testing.T) {
	c := schemas.MustLoad(taobao)
	src := taobaoSource(c)
	h, reg := newTestHandler(t, c, src, Config{MaxBodyBytes: 200, MaxBatchKeys: 3})
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantBody                 string // exact, without the trailing newline; "" skips
	}{
		{"get empty profile", "GET", "/v1/profiles/2", "", 200,
			`{"key":2,"tags":{"pv_24h":0,"buys_7d":0,"items_seen_7d":0,"top_category_7d":null,"last_buy_cat":null,"first_seen":null,"buyer_7d":false,"window_shopper":false,"carts_24h":0,"last_seen":null},"as_of":"2017-12-03T11:00:00Z","watermark":"2017-12-03T10:59:58Z","snapshot":"2017-12-03T00:00:00Z","catalog":"` + c.Hash + `"}`},
		{"unknown user", "GET", "/v1/profiles/3", "", 404, `{"error":"no profile for user_id 3"}`},
		{"non-numeric id", "GET", "/v1/profiles/abc", "", 400, `{"error":"user_id \"abc\" is not an int64"}`},
		{"id overflow", "GET", "/v1/profiles/99999999999999999999", "", 400, `{"error":"user_id \"99999999999999999999\" is not an int64"}`},
		{"wrong method", "DELETE", "/v1/profiles/1", "", 405, ""},
		{"batch", "POST", "/v1/profiles:batchGet", `{"keys":[2,"2",7]}`, 200, ""},
		{"batch empty", "POST", "/v1/profiles:batchGet", `{"keys":[]}`, 200, `{"profiles":[],"missing":[]}`},
		{"batch missing only", "POST", "/v1/profiles:batchGet", `{"keys":[7,8]}`, 200, `{"profiles":[],"missing":[7,8]}`},
		{"batch too many keys", "POST", "/v1/profiles:batchGet", `{"keys":[1,2,3,4]}`, 400, `{"error":"4 keys, at most 3 per request"}`},
		{"batch bad key", "POST", "/v1/profiles:batchGet", `{"keys":[1,"x"]}`, 400, `{"error":"keys[1]: user_id \"x\" is not an int64"}`},
		{"batch float key", "POST", "/v1/profiles:batchGet", `{"keys":[1.5]}`, 400, `{"error":"keys[0]: user_id \"1.5\" is not an int64"}`},
		{"batch not json", "POST", "/v1/profiles:batchGet", `{keys`, 400, ""},
		{"batch no keys", "POST", "/v1/profiles:batchGet", `{}`, 400, `{"error":"malformed body: want {\"keys\": [...]}"}`},
		{"batch unknown field", "POST", "/v1/profiles:batchGet", `{"keys":[1],"ids":[2]}`, 400, `{"error":"malformed body: json: unknown field \"ids\""}`},
		{"batch trailing data", "POST", "/v1/profiles:batchGet", `{"keys":[1]} {}`, 400, `{"error":"malformed body: data after the JSON object"}`},
		{"batch too large", "POST", "/v1/profiles:batchGet", `{"keys":[` + strings.Repeat("1,", 150) + `1]}`, 413, `{"error":"request body over 200 bytes"}`},
		{"healthz", "GET", "/healthz", "", 200, `{"status":"ok"}`},
		{"readyz", "GET", "/readyz", "", 200, `{"status":"ready"}`},
		{"metrics", "GET", "/metrics", "", 200, ""},
		{"unknown path", "GET", "/v2/x", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, tt.method, tt.path, tt.body)
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantBody != "" {
				require.Equal(t, tt.wantBody+"\n", rec.Body.String())
			}
		})
	}

	// Not ready: lookups and readyz answer 503, healthz stays 200.
	src.ready.Store(false)
	for path, want := range map[string]int{"/v1/profiles/1": 503, "/readyz": 503, "/healthz": 200} {
		require.Equal(t, want, do(h, "GET", path, "").Code, path)
	}
	require.Equal(t, 503, do(h, "POST", "/v1/profiles:batchGet", `{"keys":[1]}`).Code)

	require.Equal(t, 1.0, counterValue(t, reg, "get", "200"))
	require.Equal(t, 1.0, counterValue(t, reg, "get", "404"))
	require.Equal(t, 2.0, counterValue(t, reg, "get", "400"))
	require.Equal(t, 1.0, counterValue(t, reg, "get", "503"))
	require.Equal(t, 1.0, counterValue(t, reg, "batch_get", "413"))
	require.Equal(t, []string{"batch_get", "get"}, histogramEndpoints(t, reg))
}

// counterValue reads portrait_lookup_requests_total{endpoint,code}.
func counterValue(t *testing.T, reg *prometheus.Registry, endpoint, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "portrait_lookup_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// histogramEndpoints lists the endpoints with a latency histogram.
func histogramEndpoints(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var eps []string
	for _, mf := range mfs {
		if mf.GetName() != "portrait_lookup_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			require.NotZero(t, m.GetHistogram().GetSampleCount())
			eps = append(eps, m.GetLabel()[0].GetValue())
		}
	}
	return eps
}

func TestBatchGet(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, _ := newTestHandler(t, c, taobaoSource(c), Config{})
	rec := do(h, "POST", "/v1/profiles:batchGet", `{"keys":[2,"1",7,2]}`)
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	require.True(t, strings.HasPrefix(body, `{"profiles":[{"key":2,`), body)
	require.Contains(t, body, `},{"key":1,"tags":{"pv_24h":25,`)
	require.True(t, strings.HasSuffix(body, `],"missing":[7]}`+"\n"), body)
	require.Equal(t, 2, strings.Count(body, `"as_of":"2017-12-03T11:00:00Z"`))
}

func TestStringKeys(t *testing.T) {
	c, err := schemas.Parse([]byte(`
name: s
events:
  key: uid
  time: ts
  fields: {uid: string, ts: timestamp, price: float64}
bucket: 1h
tags:
  spend: {agg: sum, of: price}
`))
	require.NoError(t, err)
	src := &fakeSource{profiles: map[any]schemas.Profile{"a/b é": {Key: "a/b é", Values: []any{12.5}}}, hash: c.Hash}
	src.ready.Store(true)
	h, _ := newTestHandler(t, c, src, Config{})
	rec := do(h, "GET", "/v1/profiles/a%2Fb%20%C3%A9", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `{"key":"a/b é","tags":{"spend":12.5},"as_of":"1970-01-01T00:00:00Z","watermark":"1970-01-01T00:00:00Z","snapshot":null,`)
	rec = do(h, "POST", "/v1/profiles:batchGet", `{"keys":[12]}`)
	require.Equal(t, 400, rec.Code)
	require.Equal(t, `{"error":"keys[0]: uid must be a string, got 12"}`+"\n", rec.Body.String())
}

func TestAuth(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, _ := newTestHandler(t, c, taobaoSource(c), Config{Token: "s3cret"})
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/v1/profiles/1", "", 401},
		{"/v1/profiles/1", "Bearer wrong", 401},
		{"/v1/profiles/1", "Bearer s3cre", 401},
		{"/v1/profiles/1", "Basic s3cret", 401},
		{"/v1/profiles/1", "s3cret", 401},
		{"/v1/profiles/1", "Bearer s3cret", 200},
		{"/v1/profiles/9", "Bearer s3cret", 404},
		{"/metrics", "", 401},
		{"/metrics", "Bearer s3cret", 200},
		{"/healthz", "", 200},
		{"/readyz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.auth, func(t *testing.T) {
			rec := do(h, "GET", tt.path, "", "Authorization", tt.auth)
			require.Equal(t, tt.want, rec.Code)
			if tt.want == 401 {
				require.Equal(t, `Bearer realm="portrait"`, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	rec := do(h, "POST", "/v1/profiles:batchGet", `{"keys":[1]}`)
	require.Equal(t, 401, rec.Code)

	// Without a token nothing asks for one.
	open, _ := newTestHandler(t, c, taobaoSource(c), Config{})
	require.Equal(t, 200, do(open, "GET", "/v1/profiles/1", "").Code)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{MaxBodyBytes: -1}, "serving.max_body_bytes: -1 must be at least 1"},
		{Config{MaxBatchKeys: -2}, "serving.max_batch_keys: -2 must be at least 1"},
		{Config{Token: "a b"}, "serving.token: must not contain white space"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := NewHandler(schemas.MustLoad(taobao), &fakeSource{}, tt.cfg, nil, nil)
			if tt.want == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.want)
			}
		})
	}
}

func TestClient(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, _ := newTestHandler(t, c, taobaoSource(c), Config{Token: "tok"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()

	cl := &Client{Base: srv.URL, Token: "tok"}
	p, err := cl.Get(ctx, "1")
	require.NoError(t, err)
	require.Equal(t, "1", fmt.Sprint(p.Key))
	require.Len(t, p.Tags, len(c.Tags))
	for i, tag := range p.Tags {
		require.Equal(t, c.Tags[i].Name, tag.Name)
	}
	v, ok := p.Tags.Get("first_seen")
	require.True(t, ok)
	require.Equal(t, "2017-11-25T00:01:10Z", v)
	v, _ = p.Tags.Get("last_seen")
	require.Equal(t, "2017-11-26T01:00:00.123Z", v)
	v, _ = p.Tags.Get("last_buy_cat")
	require.Nil(t, v)
	require.Equal(t, time.Date(2017, 12, 3, 11, 0, 0, 0, time.UTC), p.AsOf)
	require.NotNil(t, p.Snapshot)
	require.Equal(t, c.Hash, p.Catalog)
	tagsJSON, err := p.Tags.MarshalJSON()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(tagsJSON), `{"pv_24h":25,"buys_7d":0,`), string(tagsJSON))

	_, err = cl.Get(ctx, "404")
	require.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	_, err = cl.Get(ctx, "x")
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.Status)
	require.Equal(t, `user_id "x" is not an int64`, apiErr.Message)

	res, err := cl.BatchGet(ctx, []any{int64(1), "2", int64(5)})
	require.NoError(t, err)
	require.Len(t, res.Profiles, 2)
	require.Equal(t, "[5]", fmt.Sprint(res.Missing))

	_, err = (&Client{Base: strings.TrimPrefix(srv.URL, "http://")}).Get(ctx, "1")
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 401, apiErr.Status)
	require.False(t, errors.Is(err, ErrNotFound))
}

func TestServeOverHTTP(t *testing.T) {
	c := schemas.MustLoad(taobao)
	h, _ := newTestHandler(t, c, taobaoSource(c), Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/profiles:batchGet", "application/json", strings.NewReader(`{"keys":[`+strings.Repeat("1,", 600000)+`1]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
}
