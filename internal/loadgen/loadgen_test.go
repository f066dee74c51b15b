package loadgen

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIssueOpenLoop checks the pacer: every request is issued once, in
// order, never before its scheduled time, and its reported lateness is
// exactly issue time minus schedule.
func TestIssueOpenLoop(t *testing.T) {
	const rate, total = 20_000, 2_000 // 100 ms of schedule
	issued := make([]time.Time, total)
	due := make(chan int, total)
	began := time.Now()
	late := Issue(context.Background(), began, rate, total, issued, due)
	next := 0
	for i := range due {
		require.Equal(t, next, i, "issue order")
		next++
		at := began.Add(time.Duration(i) * time.Second / rate)
		require.False(t, issued[i].Before(at), "request %d issued before its schedule", i)
		require.Equal(t, issued[i].Sub(at), late[i], "request %d lateness", i)
	}
	require.Equal(t, total, next)
	require.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond-time.Second/rate)
}

// TestRunAgainstServer runs a short load over real connections against a
// server that answers 200, 404 or 500 by id, and checks every request is
// counted once with its answer.
func TestRunAgainstServer(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v1/profiles/"))
		require.NoError(t, err)
		switch id % 3 {
		case 0:
			w.WriteHeader(http.StatusInternalServerError)
		case 1:
			http.NotFound(w, r)
		default:
			_, _ = w.Write([]byte(`{"key":` + strconv.Itoa(id) + `}`))
		}
	}))
	defer srv.Close()
	o := Options{Addr: srv.Listener.Addr().String(), Rate: 2000, Duration: 250 * time.Millisecond, Users: 3, Conns: 4, Seed: 1}
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.Len(t, res.Latency, 500)
	require.Len(t, res.Late, 500)
	require.Equal(t, int64(500), served.Load())
	for i, l := range res.Latency {
		require.Positive(t, l, "request %d", i)
	}
	// Ids 1..3 uniformly: about a third answer 500.
	require.InDelta(t, 500/3, res.Bad, 60)
}

func TestReadResponse(t *testing.T) {
	for _, c := range []struct {
		name, in string
		code     int
		err      string
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200, ""},
		{"case", "HTTP/1.1 404 Not Found\r\ncontent-LENGTH:  3 \r\n\r\nabc", 404, ""},
		{"no length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "without Content-Length"},
		{"bad status", "HTTX 200\r\n\r\n", 0, "bad status line"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, "EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(c.in))
			code, err := readResponse(r)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.code, code)
			_, err = r.ReadByte()
			require.Error(t, err, "the whole body was read")
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	in := Result{Latency: []time.Duration{1, 2000, 3e9}, Late: []time.Duration{0, 5}, Bad: 2}
	var b strings.Builder
	require.NoError(t, in.Encode(&b))
	out, err := Decode(strings.NewReader(b.String()))
	require.NoError(t, err)
	require.Equal(t, in, out)
	_, err = Decode(strings.NewReader(b.String()[:30]))
	require.ErrorContains(t, err, "reading the latencies")
}
