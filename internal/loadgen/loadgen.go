// Package loadgen drives an open-loop load of profile lookups
// (GET /v1/profiles/{id}) against a lookup API over HTTP/1.1 keep-alive
// connections, as a client on another machine would, and measures each
// request's latency. `portrait bench` runs it in a child process
// (`portrait loadgen`) so that the client's own work and garbage do not
// share a runtime with the server it measures.
//
// Requests are issued on a fixed schedule whatever the answers do: a
// pacer wakes about every millisecond (the resolution of Go's timers)
// and hands every request that is due to the connection workers at once,
// so arrivals come in bursts. A request is timed from the moment it is
// issued, so queueing behind a slow answer counts against every request
// it delays (no coordinated omission); how late the pacer issued
// requests against the schedule is reported apart. The client speaks
// just enough HTTP/1.1 (a fixed request, status line, Content-Length) to
// cost little CPU beside the server.
package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// Options are a load's shape.
type Options struct {
	Addr     string        // host:port of the lookup API
	Rate     int           // requests per second
	Duration time.Duration // how long to issue requests
	Users    int           // ids are drawn uniformly from 1..Users
	Conns    int           // connections, each with one request in flight
	Seed     uint64
}

// Result is what a load measured, one entry per request in issue order.
type Result struct {
	Latency []time.Duration // from issue to the whole answer read
	Late    []time.Duration // issue time minus scheduled time
	// Bad counts answers other than 200 and 404 and failed requests.
	Bad int
}

// Run issues Rate×Duration requests and waits for every answer. A
// connection that fails is reopened; its requests count as bad.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Rate <= 0 || o.Duration <= 0 || o.Users <= 0 || o.Conns <= 0 {
		return Result{}, errors.New("loadgen: rate, duration, users and conns must be positive")
	}
	total := int(int64(o.Rate) * int64(o.Duration) / int64(time.Second))
	res := Result{Latency: make([]time.Duration, total)}
	issued := make([]time.Time, total)
	bad := make([]bool, total)
	due := make(chan int, total)
	var wg sync.WaitGroup
	var dialErr error
	var errOnce sync.Once
	for w := range o.Conns {
		r := rand.New(rand.NewPCG(o.Seed, uint64(w)))
		c := &conn{addr: o.Addr}
		if err := c.dial(); err != nil {
			return Result{}, err
		}
		wg.Go(func() {
			defer c.close()
			for i := range due {
				code, err := c.get(1 + r.IntN(o.Users))
				res.Latency[i] = time.Since(issued[i])
				if err != nil {
					bad[i] = true
					c.close()
					if err := c.dial(); err != nil {
						errOnce.Do(func() { dialErr = err })
					}
					continue
				}
				bad[i] = code != 200 && code != 404
			}
		})
	}
	res.Late = Issue(ctx, time.Now(), o.Rate, total, issued, due)
	wg.Wait()
	for _, b := range bad {
		if b {
			res.Bad++
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, dialErr
}

// Issue sends request i to due once began + i/rate has passed, in bursts
// of all requests due at each wake-up, stamping issued[i] just before. It
// returns how late each request was issued against its schedule. It
// stops early, closing due, when ctx is done.
func Issue(ctx context.Context, began time.Time, rate, total int, issued []time.Time, due chan<- int) []time.Duration {
	defer close(due)
	late := make([]time.Duration, total)
	for i := 0; i < total; {
		time.Sleep(time.Millisecond)
		if ctx.Err() != nil {
			return late[:i]
		}
		now := time.Now()
		for ; i < total; i++ {
			at := began.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if at.After(now) {
				break
			}
			issued[i], late[i] = now, now.Sub(at)
			due <- i
		}
	}
	return late
}

// conn is one keep-alive connection to the API.
type conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	req  []byte
}

func (c *conn) dial() error {
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.c = nc
	if c.r == nil {
		c.r = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.r.Reset(nc)
	}
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
	}
}

// get asks for user id and reads the whole answer; it returns the
// status code.
func (c *conn) get(id int) (int, error) {
	c.req = append(c.req[:0], "GET /v1/profiles/"...)
	c.req = strconv.AppendInt(c.req, int64(id), 10)
	c.req = append(c.req, " HTTP/1.1\r\nHost: portrait\r\n\r\n"...)
	if _, err := c.c.Write(c.req); err != nil {
		return 0, err
	}
	return readResponse(c.r)
}

// readResponse reads one HTTP/1.1 answer with a Content-Length body and
// returns its status code.
func readResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return 0, fmt.Errorf("loadgen: bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("loadgen: bad status line %q", line)
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the blank line ending the header
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && equalFold(line[:len(cl)], cl) {
			v := trimSpace(line[len(cl):])
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, fmt.Errorf("loadgen: bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("loadgen: answer without Content-Length")
	}
	if _, err := r.Discard(length); err != nil {
		return 0, err
	}
	return code, nil
}

func equalFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Encode writes r for Decode (little-endian int64s: the bad count, the
// number of requests, the latencies, then the lateness of each; fewer
// lateness entries than requests when the load was stopped early).
func (r Result) Encode(w io.Writer) error {
	vals := make([]int64, 0, 3+len(r.Latency)+len(r.Late))
	vals = append(vals, int64(r.Bad), int64(len(r.Latency)), int64(len(r.Late)))
	for _, d := range r.Latency {
		vals = append(vals, int64(d))
	}
	for _, d := range r.Late {
		vals = append(vals, int64(d))
	}
	return binary.Write(w, binary.LittleEndian, vals)
}

// Decode reads a Result written by Encode.
func Decode(rd io.Reader) (Result, error) {
	var head [3]int64
	if err := binary.Read(rd, binary.LittleEndian, &head); err != nil {
		return Result{}, fmt.Errorf("loadgen: reading the result: %w", err)
	}
	if head[1] < 0 || head[2] < 0 || head[1] > 1<<30 || head[2] > 1<<30 {
		return Result{}, fmt.Errorf("loadgen: result of %d/%d requests", head[1], head[2])
	}
	lat := make([]time.Duration, head[1])
	late := make([]time.Duration, head[2])
	if err := binary.Read(rd, binary.LittleEndian, lat); err != nil {
		return Result{}, fmt.Errorf("loadgen: reading the latencies: %w", err)
	}
	if err := binary.Read(rd, binary.LittleEndian, late); err != nil {
		return Result{}, fmt.Errorf("loadgen: reading the lateness: %w", err)
	}
	return Result{Latency: lat, Late: late, Bad: int(head[0])}, nil
}
